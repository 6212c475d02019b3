"""``networking-vpp resync`` and ``status`` as an operator runs them, on the dev cloud.

The CLI runs as its own process with the dev cloud's neutron.conf and
ml2_conf.ini: Neutron's MariaDB for the desired state, etcd from ``[etcd]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


def cli(devcloud, *args: str) -> tuple[int, str]:  # noqa: ANN001
    """Run ``networking-vpp`` with the dev cloud's configuration files."""
    etc = devcloud.layout.etc
    argv = [sys.executable, "-m", "networking_vpp.cli.main", args[0]]
    argv += ["--config-file", str(etc / "neutron.conf"), "--config-file", str(etc / "ml2_conf.ini")]
    result = subprocess.run(
        argv + list(args[1:]), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, result.stdout


def resync(devcloud, *args: str) -> tuple[int, dict[str, Any]]:  # noqa: ANN001
    code, out = cli(devcloud, "resync", *args)
    return code, json.loads(out)


def test_resync_repairs_etcd_from_mariadb(devcloud, client, make_port, vlan_net):
    p1 = make_port(vlan_net, "compute-1")
    p2 = make_port(vlan_net, "compute-2")
    client.wait_port(p1.id, "ACTIVE")
    client.wait_port(p2.id, "ACTIVE")
    k1, k2 = client.keys.port("compute-1", p1.id), client.keys.port("compute-2", p2.id)
    extra = client.keys.port("compute-2", "00000000-0000-0000-0000-00000000dead")
    good2 = client.etcd.get(k2).value
    client.etcd.delete(k1)
    client.etcd.put(k2, good2.replace(b'"admin_state_up":true', b'"admin_state_up":false'))
    client.etcd.put(extra, good2)

    code, dry = resync(devcloud, "--dry-run")
    assert code == 1  # differences found
    assert {p["key"]: p["reason"] for p in dry["put"]} == {k1: "missing", k2: "differs"}
    assert [d["key"] for d in dry["delete"]] == [extra]
    assert client.etcd.get(k1) is None  # nothing changed

    code, host_only = resync(devcloud, "--host", "compute-1")
    assert code == 0
    assert [p["key"] for p in host_only["put"]] == [k1] and host_only["delete"] == []
    assert client.etcd.get(k1) is not None and client.etcd.get(extra) is not None

    code, done = resync(devcloud)
    assert code == 0
    assert done["applied"] == 2 and done["problems"] == []
    assert client.etcd.get(k2).value == good2
    assert client.etcd.get(extra) is None
    code, again = resync(devcloud, "--dry-run")
    assert (code, again["put"], again["delete"]) == (0, [], [])


def test_status_shows_the_dev_cloud_hosts(devcloud, client, make_port, vlan_net):
    port = make_port(vlan_net, "compute-1")
    client.wait_port(port.id, "ACTIVE")
    code, out = cli(devcloud, "status", "--json")
    hosts = {h["host"]: h for h in json.loads(out)["hosts"]}
    assert code == 0
    assert hosts["compute-1"]["alive"] and hosts["compute-2"]["alive"]
    assert hosts["compute-1"]["ports"]["active"] >= 1
