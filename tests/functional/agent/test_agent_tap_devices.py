"""Tap ports whose kernel device comes and goes: real veth pairs, the emulator
attached to the host's real devices, the agent watching netlink (root only).

What a real VPP does (real-vpp-facts #3), and the emulator with it: af_packet
fails on a missing device; a deleted device leaves the VPP interface link-up
with no event and black-holed, also for a device made again under its name;
the interface's admin state is mirrored onto the device.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pyroute2
import pytest

from networking_vpp.agent.taps import TapWatch
from networking_vpp.testing.vpp import Frame, VppEmulator
from networking_vpp.testing.vpp.kernel import NetlinkLinks
from networking_vpp.testing.wait import wait_for

from .conftest import UPLINK1, UPLINK2, HostRig, binding

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes veth pairs")

MAC_A, MAC_B = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b"
ICMP = dict(proto=1, icmp_type=8, icmp_code=0, src_ip="10.0.0.1", dst_ip="10.0.0.2")


class Devices:
    """Veth pairs this test makes in the root namespace, all deleted at the end."""

    def __init__(self) -> None:
        self.made: set[str] = set()

    def make(self, name: str) -> None:
        with pyroute2.IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer="v" + name[3:])
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        self.made.add(name)

    def delete(self, name: str) -> None:
        with pyroute2.IPRoute() as ipr:
            ipr.link("del", index=ipr.link_lookup(ifname=name)[0])

    def cleanup(self) -> None:
        with pyroute2.IPRoute() as ipr:
            for name in self.made:
                for index in ipr.link_lookup(ifname=name):
                    ipr.link("del", index=index)


@pytest.fixture
def devices() -> Iterator[Devices]:
    d = Devices()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def rig(etcd) -> Iterator[HostRig]:
    """A host whose emulated VPP attaches to the kernel's real devices."""
    r = HostRig(etcd)
    r.vpp = VppEmulator(random_bd_ids=True, kernel=NetlinkLinks())
    r.vpp.add_hardware_interface(UPLINK1, "52:54:00:00:08:00")
    r.vpp.add_hardware_interface(UPLINK2, "52:54:00:00:09:00")
    yield r
    r.close()


def tap_port(mac: str = MAC_A):
    port_id = str(uuid.uuid4())  # a fresh device name: other tests share the namespace
    return binding(port_id, binding_type="tap", tap=None, mac_address=mac)


def af_packets(rig) -> dict[str, int]:
    return {a.host_if_name: a.sw_if_index for a in rig.look.dump_af_packet()}


def test_binding_before_device_waits_then_attaches(rig, devices):
    rig.start_agent(watch_tap_devices=True)
    port = tap_port()
    rig.put(port)
    state = rig.wait_state(port.port_id, status="down")
    assert state.reason == f"tap device {port.tap.ifname} not present"
    assert port.tap.ifname not in af_packets(rig)
    devices.make(port.tap.ifname)  # the DHCP agent plugs it: no resync, no retry needed
    state = rig.wait_state(port.port_id)
    assert state.programmed.interface == f"host-{port.tap.ifname}"
    assert af_packets(rig)[port.tap.ifname] == state.programmed.sw_if_index


def test_device_deleted_then_recreated_is_reattached(rig, devices):
    rig.start_agent(watch_tap_devices=True)
    a, b = tap_port(MAC_A), tap_port(MAC_B)
    for port in (a, b):
        devices.make(port.tap.ifname)
        rig.put(port)
    one = rig.wait_state(a.port_id).programmed
    two = rig.wait_state(b.port_id).programmed
    frame = Frame(src_mac=MAC_A, dst_mac=MAC_B, **ICMP)
    assert rig.vpp.passes(frame, one.sw_if_index, two.sw_if_index)
    devices.delete(b.tap.ifname)
    state = rig.wait_state(b.port_id, status="down")  # VPP alone would say link-up
    assert "not present" in state.reason
    wait_for(lambda: b.tap.ifname not in af_packets(rig), what="stale af_packet deleted")
    devices.make(b.tap.ifname)  # the DHCP agent restarted
    two = rig.wait_state(b.port_id).programmed
    assert af_packets(rig)[b.tap.ifname] == two.sw_if_index
    assert rig.vpp.passes(frame, one.sw_if_index, two.sw_if_index)
    assert rig.vpp.passes(frame.reply(), two.sw_if_index, one.sw_if_index)


def test_device_recreated_before_the_agent_looks_is_reattached(rig, devices):
    agent = rig.start_agent(watch_tap_devices=True)
    a, b = tap_port(MAC_A), tap_port(MAC_B)
    for port in (a, b):
        devices.make(port.tap.ifname)
        rig.put(port)
    one = rig.wait_state(a.port_id).programmed
    rig.wait_state(b.port_id)
    assert agent.wait_converged(10)
    devices.delete(b.tap.ifname)
    devices.make(b.tap.ifname)  # same name, new ifindex: the old socket is dead
    frame = Frame(src_mac=MAC_A, dst_mac=MAC_B, **ICMP)

    def healed() -> bool:
        state = rig.state(b.port_id)
        return (
            state is not None
            and state.status == "active"
            and rig.vpp.passes(frame, one.sw_if_index, state.programmed.sw_if_index)
        )

    wait_for(healed, what="re-attached to the new device")


def test_admin_down_is_mirrored_onto_the_device(rig, devices):
    rig.start_agent(watch_tap_devices=True)
    port = tap_port()
    devices.make(port.tap.ifname)
    rig.put(port)
    rig.wait_state(port.port_id)
    kernel = NetlinkLinks()
    assert kernel.admin_up(port.tap.ifname)
    rig.put(binding(port.port_id, binding_type="tap", tap=None, admin_state_up=False))
    wait_for(lambda: kernel.admin_up(port.tap.ifname) is False, what="device taken down")
    rig.put(binding(port.port_id, binding_type="tap", tap=None, admin_state_up=True))
    wait_for(lambda: kernel.admin_up(port.tap.ifname), what="device up again")
    rig.delete(port.port_id)  # removed: VPP leaves the device down
    wait_for(lambda: kernel.admin_up(port.tap.ifname) is False, what="device down")


def test_stopping_the_agent_ends_its_watch(rig):
    agent = rig.start_agent(watch_tap_devices=True)
    assert any(th.name == f"tap-watch-{rig.host}" for th in threading.enumerate())
    rig.stop_agents()
    assert not any(th.name == f"tap-watch-{rig.host}" for th in threading.enumerate())
    del agent


def test_a_watch_reports_only_its_own_ports_devices(devices):
    seen: list[str] = []
    changed = threading.Event()

    def on_change(port_id: str) -> None:
        seen.append(port_id)
        changed.set()

    watch = TapWatch(on_change, lambda: None)
    mine, other = tap_port(), tap_port()  # another agent's port in this process
    watch.watch(mine.port_id, mine.tap.ifname)
    watch.start()
    try:
        devices.make(other.tap.ifname)
        devices.make(mine.tap.ifname)
        assert changed.wait(5)
        watch.forget(mine.port_id)
        devices.delete(mine.tap.ifname)  # forgotten: not reported
        devices.delete(other.tap.ifname)
    finally:
        watch.stop()
    assert set(seen) == {mine.port_id}
