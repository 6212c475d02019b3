"""vif choices and the etcd value, without Neutron's database."""

from __future__ import annotations

import unittest

from neutron_lib.api.definitions import portbindings

from networking_vpp.common import model
from networking_vpp.server import binding

PORT = {
    "id": "0123456789abcdef-port",
    "network_id": "net-1",
    "mac_address": "FA:16:3E:00:00:01",
    "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.5"}],
    "security_groups": ["sg-b", "sg-a"],
    "allowed_address_pairs": [{"ip_address": "10.0.0.0/24", "mac_address": "FA:16:3E:00:00:02"}],
    "port_security_enabled": True,
    "device_owner": "compute:nova",
    "device_id": "vm",
    "admin_state_up": True,
}
VLAN = {"id": "seg", "network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 100}
POLICY = binding.VifPolicy(socket_dir="/run/vhu")


class TestVifPolicy(unittest.TestCase):
    def test_vif_types(self):
        self.assertEqual("vhostuser", POLICY.vif_type(PORT, "h"))
        self.assertEqual("tap", POLICY.vif_type(dict(PORT, device_owner="network:dhcp"), "h"))
        tap_host = binding.VifPolicy(socket_dir="/d", tap_hosts=frozenset({"h"}))
        self.assertEqual("tap", tap_host.vif_type(PORT, "h"))
        self.assertEqual("vhostuser", tap_host.vif_type(PORT, "other"))

    def test_vhostuser_details(self):
        details = POLICY.vif_details("vhostuser", PORT["id"])
        self.assertEqual("/run/vhu/vhu0123456789a", details[portbindings.VHOST_USER_SOCKET])
        # By default QEMU serves the socket (so VPP reconnects after a restart).
        self.assertEqual("server", details[portbindings.VHOST_USER_MODE])
        vpp_server = binding.VifPolicy(socket_dir="/d", vpp_vhostuser_role="server")
        self.assertEqual(
            "client", vpp_server.vif_details("vhostuser", "x")[portbindings.VHOST_USER_MODE]
        )

    def test_segment_problem(self):
        self.assertIsNone(binding.segment_problem(VLAN))
        self.assertIn("not supported", binding.segment_problem(dict(VLAN, network_type="vxlan")))
        self.assertIn(
            "no physical network", binding.segment_problem(dict(VLAN, physical_network=None))
        )


class TestPortValue(unittest.TestCase):
    def _value(self, port=PORT, segment=VLAN, mtu=1500, vif="vhostuser") -> model.PortBinding:
        details = POLICY.vif_details(vif, port["id"])
        return binding.port_value(port, segment, mtu, vif, details, "b-1", "server")

    def test_round_trips_through_the_schema(self):
        value = self._value()
        self.assertEqual(value, model.decode(model.PortBinding, "k", model.encode(value)))
        self.assertEqual("fa:16:3e:00:00:01", value.mac_address)
        self.assertEqual(("sg-a", "sg-b"), value.security_groups)
        self.assertEqual("fa:16:3e:00:00:02", value.allowed_address_pairs[0].mac_address)

    def test_vpp_role_follows_the_bound_vhostuser_mode(self):
        # Nova configured QEMU from the vif_details it bound with: a port bound
        # before the default role changed keeps its role until it is rebound.
        for qemu, vpp in (("client", "server"), ("server", "client")):
            details = dict(POLICY.vif_details("vhostuser", PORT["id"]), vhostuser_mode=qemu)
            value = binding.port_value(PORT, VLAN, 1500, "vhostuser", details, "b", "client")
            self.assertEqual(vpp, value.vhostuser.mode)

    def test_flat_has_no_segmentation_id(self):
        flat = {"id": "s", "network_type": "flat", "physical_network": "p", "segmentation_id": None}
        self.assertIsNone(self._value(segment=flat).segmentation_id)

    def test_tap(self):
        value = self._value(vif="tap")
        self.assertEqual(model.Tap("tap0123456789a"), value.tap)
        self.assertIsNone(value.vhostuser)

    def test_invalid_values_are_refused_with_reason(self):
        with self.assertRaisesRegex(binding.UnservablePort, "mtu 0"):
            self._value(mtu=0)
        with self.assertRaisesRegex(binding.UnservablePort, "not supported"):
            self._value(segment=dict(VLAN, network_type="vxlan"))
        with self.assertRaisesRegex(binding.UnservablePort, "not ours"):
            binding.port_value(PORT, VLAN, 1500, "ovs", {}, "b", "server")
