"""Shared rig for the driver's unit tests on Neutron's ML2 plugin test base.

In-memory SQLite, no etcd, no threads: the host cache is filled directly and
the driver's etcd services are never started.
"""

from __future__ import annotations

from neutron.tests.unit.plugins.ml2 import test_plugin
from neutron_lib.plugins import directory
from oslo_config import cfg

from networking_vpp.server import config as server_config
from networking_vpp.server.hosts import HostCache
from networking_vpp.server.journal import models  # noqa: F401  (tables before the SQL fixture)

SOCKET_DIR = "/run/vpp-test/vhostuser"


class AllHostsAlive(HostCache):
    """Every host has a live agent serving every physnet (Neutron's generic tests)."""

    def is_alive(self, host: str) -> bool:
        return bool(host)

    def physnets(self, host: str) -> frozenset[str]:
        return _Everything()


class _Everything(frozenset):  # type: ignore[type-arg]
    def __contains__(self, item: object) -> bool:
        return True


class VppTestCase(test_plugin.Ml2PluginV2TestCase):
    """ML2 with ``vpp`` as the only mechanism driver and VLAN project networks."""

    _mechanism_drivers = ["vpp"]
    all_hosts_alive = True

    def setUp(self) -> None:
        server_config.register_opts(cfg.CONF)
        # The driver binds flat and VLAN only; Neutron's default project type is 'local'.
        cfg.CONF.set_override("project_network_types", ["vlan"], group="ml2")
        cfg.CONF.set_override("start_services", False, group="ml2_vpp")
        cfg.CONF.set_override("vhostuser_socket_dir", SOCKET_DIR, group="ml2_vpp")
        super().setUp()
        self.mech = self.plugin_mech_driver("vpp")
        self.mech.hosts = AllHostsAlive() if self.all_hosts_alive else HostCache()
        self.mech.hosts.on_load({}, 0)  # tests fill it directly: read, as far as binds go

    @staticmethod
    def plugin_mech_driver(name: str):
        plugin = directory.get_plugin()
        return plugin.mechanism_manager.mech_drivers[name].obj
