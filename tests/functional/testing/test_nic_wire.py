"""An emulated NIC whose cable is a real device (``add_hardware_interface(wire=...)``).

The dev cloud joins its hosts' uplinks, and the L3 tour's gateway, on veths:
a VM on a tap port reaches a namespace on the NIC's wire, two emulated VPPs
carry a VLAN network across their wire (tagged there), and a NIC carries
frames again after VPP restarts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from networking_vpp.testing.netns import Namespaces, ping
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.kernel import NetlinkLinks
from networking_vpp.testing.vpp.socket_server import serve

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes namespaces")

NIC = "GigabitEthernet0/8/0"
BD = 7
POP_1 = 3  # L2_VTR_POP_1


def program(vpp: VppEmulator, tap: str, vlan: int | None) -> None:
    """A tap port and the NIC (or its VLAN sub-interface, tag popped) in one bridge domain."""
    server = serve(vpp)
    try:
        _program(vpp, server.connect("test").api, tap, vlan)
    finally:
        server.close()


def _program(vpp: VppEmulator, api: Any, tap: str, vlan: int | None) -> None:
    port = api.af_packet_create_v3(mode=1, host_if_name=tap, use_random_hw_addr=True, flags=3)
    nic = vpp.state.by_name[NIC].sw_if_index
    members = [port.sw_if_index, nic]
    ups = [port.sw_if_index, nic]
    if vlan is not None:
        sub = api.create_vlan_subif(sw_if_index=nic, vlan_id=vlan).sw_if_index
        ups.append(sub)
        members[1] = sub
    for sw in ups:
        assert api.sw_interface_set_flags(sw_if_index=sw, flags=1).retval == 0
    if vlan is not None:
        api.l2_interface_vlan_tag_rewrite(sw_if_index=members[1], vtr_op=POP_1, push_dot1q=1)
    for sw in members:
        assert api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=BD).retval == 0


@pytest.fixture
def ns() -> Iterator[Namespaces]:
    with Namespaces("nicw") as made:
        yield made


def test_a_vm_reaches_a_namespace_on_the_nics_wire(ns: Namespaces) -> None:
    host, vm, outside = ns.add("host"), ns.add("vm"), ns.add("out")
    ns.veth(host, "tapvm", vm, "eth0")
    ns.ip(vm, "addr", "add", "10.8.0.1/24", "dev", "eth0")
    ns.veth(host, "wire0", outside, "eth0")
    ns.ip(outside, "addr", "add", "10.8.0.2/24", "dev", "eth0")
    ns.ip(host, "link", "set", "wire0", "up")
    vpp = VppEmulator(kernel=NetlinkLinks(netns=host))
    try:
        vpp.add_hardware_interface(NIC, "52:54:00:00:08:00", wire="wire0")
        program(vpp, "tapvm", None)
        assert ping(vm, "10.8.0.2")
        assert ping(outside, "10.8.0.1")
        vpp.restart()  # a new VPP: the NIC's socket is opened again
        program(vpp, "tapvm", None)
        assert ping(vm, "10.8.0.2")
    finally:
        vpp.close()


def test_two_vpps_carry_a_vlan_network_across_their_wire(ns: Namespaces) -> None:
    host, vm1, vm2, tap = ns.add("host"), ns.add("vm1"), ns.add("vm2"), ns.add("tap")
    ns.veth(host, "tap1", vm1, "eth0")
    ns.veth(host, "tap2", vm2, "eth0")
    ns.ip(vm1, "addr", "add", "10.8.1.1/24", "dev", "eth0")
    ns.ip(vm2, "addr", "add", "10.8.1.2/24", "dev", "eth0")
    # The wire: host A's cable -- a bridge in namespace "tap" -- host B's cable.
    ns.veth(host, "wireA", tap, "pa")
    ns.veth(host, "wireB", tap, "pb")
    ns.ip(tap, "link", "add", "wbr", "type", "bridge")
    for dev in ("pa", "pb"):
        ns.ip(tap, "link", "set", dev, "master", "wbr")
    ns.ip(tap, "link", "set", "wbr", "up")
    ns.ip(host, "link", "set", "wireA", "up")
    ns.ip(host, "link", "set", "wireB", "up")
    a = VppEmulator(kernel=NetlinkLinks(netns=host))
    b = VppEmulator(kernel=NetlinkLinks(netns=host))
    try:
        a.add_hardware_interface(NIC, "52:54:00:00:0a:00", wire="wireA")
        b.add_hardware_interface(NIC, "52:54:00:00:0b:00", wire="wireB")
        program(a, "tap1", 120)
        program(b, "tap2", 120)
        assert ping(vm1, "10.8.1.2")
        nic_a = a.state.by_name[NIC].sw_if_index
        assert a.frames is not None and a.frames.counters(nic_a).tx > 0
    finally:
        a.close()
        b.close()


def test_a_wire_needs_real_devices() -> None:
    with pytest.raises(ValueError, match="real devices"):
        VppEmulator().add_hardware_interface(NIC, "52:54:00:00:08:00", "x")
