"""The dev cloud runs as production should: etcd auth on, one identity per host.

Neutron's API is the server identity (neutron.conf), each fake host's agent its own,
and ``networking-vpp etcd-setup`` run again on the cloud finds nothing to change.
"""

from __future__ import annotations

import configparser
import subprocess
import sys

import pytest

from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdAuthError, EtcdClient, EtcdSettings
from networking_vpp.testing.devcloud import etcd_auth

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

KEYS = keys.KeySpace()


def test_neutron_and_each_agent_have_their_own_identity(devcloud, client, make_port, vlan_net):
    port = make_port(vlan_net, "compute-1")
    client.wait_port(port.id, "ACTIVE", timeout=60)  # the server and compute-1 at work

    neutron_conf = configparser.ConfigParser(interpolation=None)
    neutron_conf.read(devcloud.layout.etc / "neutron.conf")
    assert neutron_conf["etcd"]["username"] == etcd_auth.SERVER

    anonymous = EtcdClient(EtcdSettings(devcloud.etcd_endpoints, timeout=2.0))
    compute2 = EtcdClient(devcloud.etcd_settings("compute-2"))
    try:
        with pytest.raises(EtcdAuthError):
            anonymous.get(KEYS.port("compute-1", port.id))
        with pytest.raises(EtcdAuthError):
            compute2.get(KEYS.port("compute-1", port.id))
        with pytest.raises(EtcdAuthError):
            compute2.put(KEYS.port_state("compute-1", port.id), "forged")
        assert compute2.get(KEYS.alive("compute-2")) is not None  # its own
    finally:
        anonymous.close()
        compute2.close()


def test_etcd_setup_again_changes_nothing(devcloud):
    argv = [sys.executable, "-m", "networking_vpp.cli.main", "etcd-setup", "--dry-run"]
    argv += ["--output", str(etcd_auth.directory(devcloud.layout))]
    for endpoint in devcloud.etcd_endpoints:
        argv += ["--etcd-endpoint", endpoint]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no change" in result.stdout
