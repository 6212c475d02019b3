"""DHCP and router ports through the whole chain: Neutron, journal, etcd, agent, packet walk.

ML2 on Neutron's test base without the port_security extension (its default)
makes the ports; their journal rows go to a real etcd in order (what the
forwarder does); the real agent programs the emulated VPP; frames walk it.
A VM's DHCP DISCOVER must reach the DHCP port and the OFFER the VM, and a
router's RA must reach the VM, while the VM itself stays filtered.
"""

from __future__ import annotations

from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import provider_net as pnet
from neutron_lib.db import api as db_api

from networking_vpp.common.addresses import link_local
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.server.journal import models
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp import Frame
from tests.unit.server import base

from .conftest import HostRig

HOST = "compute-1"
BROADCAST = "ff:ff:ff:ff:ff:ff"
ALL_NODES_MAC, ALL_NODES = "33:33:00:00:00:01", "ff02::1"
UDP, ICMP6, IPV6 = 17, 58, 0x86DD
RA, ROUTER_LLA = 134, "fe80::1"


class TestTrustedPortsOnTheWalk(base.VppTestCase):
    etcd_server: EtcdServer

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.etcd_server = EtcdServer()
        cls.etcd_server.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.etcd_server.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.etcd = EtcdClient(self.etcd_server.settings())
        self.addCleanup(self.etcd.close)
        self.etcd.delete_prefix("")
        self.rig = HostRig(self.etcd, HOST)
        self.addCleanup(self.rig.close)
        self.rig.vpp.auto_connect_vms = True  # QEMU connects as soon as a socket exists
        attrs = {pnet.NETWORK_TYPE: "vlan", pnet.PHYSICAL_NETWORK: "physnet1"}
        net = self._make_network(
            self.fmt, "net", True, as_admin=True, arg_list=tuple(attrs), **attrs
        )
        self._make_subnet(self.fmt, net, "10.0.0.1", "10.0.0.0/24")
        self.net = net["network"]

    def _port(self, owner: str) -> dict:
        attrs = {portbindings.HOST_ID: HOST, "device_owner": owner, "device_id": "d1"}
        res = self._create_port(
            self.fmt, self.net["id"], arg_list=tuple(attrs), is_admin=True, **attrs
        )
        self.assertEqual(201, res.status_int, res.body)
        port = self.deserialize(self.fmt, res)["port"]
        if port[portbindings.VIF_TYPE] == portbindings.VIF_TYPE_TAP:
            # Neutron's agent made the device through our interface driver.
            self.rig.vpp.add_kernel_interface("tap" + port["id"][:11])
        return port

    def _forward_journal(self) -> None:
        """Write every journal row to etcd in order, as the forwarder does."""
        ctx = n_context.get_admin_context()
        with db_api.CONTEXT_READER.using(ctx):
            rows = ctx.session.query(models.VppJournal).order_by(models.VppJournal.id).all()
            ops = [(r.key, r.value) for r in rows]
        for key, value in ops:
            if value is None:
                self.etcd.delete(key)
            else:
                self.etcd.put(key, value)

    def _program(self, *ports: dict) -> dict[str, int]:
        """Journal to etcd, run the agent until every port is up; their sw_if_index."""
        self._forward_journal()
        # The agent's socket directory is the one the server binds with.
        agent = self.rig.start_agent(
            vhostuser_socket_dir=base.SOCKET_DIR, make_vhostuser_socket_dir=False
        )
        for port in ports:
            self.rig.wait_state(port["id"])
        self.assertTrue(agent.wait_converged(10))
        return {p["id"]: agent.inventory.ports[p["id"]].sw_if_index for p in ports}

    def _assert_unfiltered(self, sw_if_index: int) -> None:
        """VPP holds no ACL list and no MACIP on the interface (read back from VPP)."""
        self.assertFalse(any(self.rig.look.dump_interface_acls().get(sw_if_index, ())))
        self.assertNotIn(sw_if_index, self.rig.look.dump_interface_macips())

    @staticmethod
    def _ip(port: dict) -> str:
        return port["fixed_ips"][0]["ip_address"]

    def test_dhcp_discover_and_offer_pass_between_vm_and_dhcp_port(self):
        vm = self._port("compute:nova")
        dhcp = self._port(n_const.DEVICE_OWNER_DHCP)
        sw = self._program(vm, dhcp)
        self._assert_unfiltered(sw[dhcp["id"]])
        self.assertIn(sw[vm["id"]], self.rig.look.dump_interface_macips())
        vm_mac, dhcp_mac = vm["mac_address"], dhcp["mac_address"]
        discover = Frame(
            src_mac=vm_mac,
            dst_mac=BROADCAST,
            src_ip="0.0.0.0",
            dst_ip="255.255.255.255",
            proto=UDP,
            src_port=68,
            dst_port=67,
        )
        self.assertTrue(self.rig.vpp.passes(discover, sw[vm["id"]], sw[dhcp["id"]]))
        offer = Frame(
            src_mac=dhcp_mac,
            dst_mac=vm_mac,
            src_ip=self._ip(dhcp),
            dst_ip=self._ip(vm),
            proto=UDP,
            src_port=67,
            dst_port=68,
        )
        self.assertTrue(self.rig.vpp.passes(offer, sw[dhcp["id"]], sw[vm["id"]]))
        # The VM is still filtered: it may not answer as a DHCP server.
        rogue = Frame(
            src_mac=vm_mac,
            dst_mac=BROADCAST,
            src_ip=self._ip(vm),
            dst_ip="255.255.255.255",
            proto=UDP,
            src_port=67,
            dst_port=68,
        )
        self.assertFalse(self.rig.vpp.passes(rogue, sw[vm["id"]], sw[dhcp["id"]]))

    def test_router_advertisement_reaches_vms(self):
        vm = self._port("compute:nova")
        vm2 = self._port("compute:nova")
        router = self._port(n_const.DEVICE_OWNER_ROUTER_INTF)
        sw = self._program(vm, vm2, router)
        self._assert_unfiltered(sw[router["id"]])
        ra = Frame(
            src_mac=router["mac_address"],
            dst_mac=ALL_NODES_MAC,
            ethertype=IPV6,
            src_ip=ROUTER_LLA,
            dst_ip=ALL_NODES,
            proto=ICMP6,
            icmp_type=RA,
            icmp_code=0,
        )
        self.assertTrue(self.rig.vpp.passes(ra, sw[router["id"]], sw[vm["id"]]))
        # A VM sending RAs is a rogue router: still dropped.
        rogue = Frame(
            src_mac=vm["mac_address"],
            dst_mac=ALL_NODES_MAC,
            ethertype=IPV6,
            src_ip=link_local(vm["mac_address"]),  # its own address: MACIP lets it by
            dst_ip=ALL_NODES,
            proto=ICMP6,
            icmp_type=RA,
            icmp_code=0,
        )
        self.assertFalse(self.rig.vpp.passes(rogue, sw[vm["id"]], sw[vm2["id"]]))
