"""The emulator's af_packet against kernel devices, in-memory and real (veth pairs).

What a real VPP 26.06 did (real-vpp-facts #3): af_packet on a missing device
fails; when the device goes, the interface stays link-up with no event and its
socket is dead, also for a device made again under the same name; the
interface's admin state is mirrored onto the device (admin down, or a delete,
takes the device down).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pyroute2
import pytest

from networking_vpp.testing.vpp import Frame, VppEmulator
from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.kernel import MemoryLinks, NetlinkLinks
from networking_vpp.testing.vpp.socket_server import serve

MAC_A, MAC_B = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b"
ICMP = dict(proto=1, icmp_type=8, icmp_code=0, src_ip="10.0.0.1", dst_ip="10.0.0.2")


class Kernel:
    """Makes and deletes devices the emulator's kernel has, and reads their state."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.links = MemoryLinks() if mode == "memory" else NetlinkLinks()
        self.vpp = VppEmulator(kernel=self.links)
        self.server = serve(self.vpp)  # its API socket
        self.made: set[str] = set()
        self.suffix = uuid.uuid4().hex[:6]  # other tests' devices share the root namespace

    def name(self, base: str) -> str:
        return f"t{base}{self.suffix}"

    def make(self, name: str) -> None:
        if self.mode == "memory":
            self.vpp.add_kernel_interface(name)
        else:
            with pyroute2.IPRoute() as ipr:  # a veth pair whose other end nobody uses
                ipr.link("add", ifname=name, kind="veth", peer="p" + name[1:])
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        self.made.add(name)

    def delete(self, name: str) -> None:
        if self.mode == "memory":
            self.vpp.remove_kernel_interface(name)
        else:
            with pyroute2.IPRoute() as ipr:
                ipr.link("del", index=ipr.link_lookup(ifname=name)[0])

    def set_up(self, name: str, up: bool) -> None:
        if self.mode == "memory":
            index = self.links.ifindex(name)
            assert index is not None
            self.links.set_admin(index, up)
        else:
            with pyroute2.IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up" if up else "down")

    def cleanup(self) -> None:
        self.server.close()
        self.vpp.close()  # af_packet on real devices reads frames: end that
        if self.mode == "netlink":
            with pyroute2.IPRoute() as ipr:
                for name in self.made:
                    for index in ipr.link_lookup(ifname=name):
                        ipr.link("del", index=index)


@pytest.fixture(params=["memory", "netlink"])
def kernel(request) -> Iterator[Kernel]:
    if request.param == "netlink" and os.geteuid() != 0:
        pytest.skip("makes veth pairs")
    k = Kernel(request.param)
    try:
        yield k
    finally:
        k.cleanup()


@pytest.fixture
def api(kernel):
    return kernel.server.connect("test").api


def attach(api, name: str) -> int:
    reply = api.af_packet_create_v3(mode=1, host_if_name=name, use_random_hw_addr=True, flags=3)
    assert reply.retval == 0
    api.sw_interface_set_flags(sw_if_index=reply.sw_if_index, flags=1)
    api.sw_interface_set_l2_bridge(rx_sw_if_index=reply.sw_if_index, bd_id=1)
    return int(reply.sw_if_index)


def flags(api, sw_if_index: int) -> int:
    return int(api.sw_interface_dump(sw_if_index=sw_if_index)[0].flags)


def test_attaching_a_missing_device_fails(kernel, api):
    reply = api.af_packet_create_v3(mode=1, host_if_name=kernel.name("none"), flags=3)
    assert (reply.retval, reply.sw_if_index) == (e.INVALID_INTERFACE, 0)


def test_a_deleted_device_leaves_the_interface_up_and_black_holed(kernel, api):
    a, b = kernel.name("a"), kernel.name("b")
    kernel.make(a)
    kernel.make(b)
    port_a, port_b = attach(api, a), attach(api, b)
    frame = Frame(src_mac=MAC_A, dst_mac=MAC_B, **ICMP)
    back = Frame(src_mac=MAC_B, dst_mac=MAC_A, **ICMP)
    assert kernel.vpp.passes(frame, port_a, port_b) and kernel.vpp.passes(back, port_b, port_a)
    kernel.delete(b)
    assert flags(api, port_b) == 3  # admin up, link up: VPP does not follow the kernel
    assert not kernel.vpp.passes(frame, port_a, port_b)  # its socket is dead
    assert not kernel.vpp.passes(back, port_b, port_a)
    kernel.make(b)  # the same name again (a DHCP agent restart): still dead
    assert not kernel.vpp.passes(frame, port_a, port_b)
    assert not kernel.vpp.passes(back, port_b, port_a)
    # Re-attaching heals it.
    assert api.af_packet_delete(host_if_name=b).retval == 0
    port_b = attach(api, b)
    assert kernel.vpp.passes(frame, port_a, port_b) and kernel.vpp.passes(back, port_b, port_a)


def test_no_event_when_the_device_goes(kernel):
    name = kernel.name("a")
    kernel.make(name)
    client = kernel.server.connect("watcher")
    seen = []
    client.register_event_callback(lambda _name, msg: seen.append(msg))
    attach(client.api, name)
    client.api.want_interface_events(enable_disable=1, pid=1)
    kernel.delete(name)
    kernel.make(name)
    client.api.control_ping()  # its reply comes after any event
    assert seen == []


def test_admin_state_is_mirrored_onto_the_device(kernel, api):
    name = kernel.name("a")
    kernel.make(name)
    kernel.set_up(name, False)
    sw = api.af_packet_create_v3(mode=1, host_if_name=name, flags=3).sw_if_index
    assert kernel.links.admin_up(name) is False  # creating it does not touch the device
    api.sw_interface_set_flags(sw_if_index=sw, flags=1)
    assert kernel.links.admin_up(name) is True
    api.sw_interface_set_flags(sw_if_index=sw, flags=0)
    assert kernel.links.admin_up(name) is False
    api.sw_interface_set_flags(sw_if_index=sw, flags=1)
    assert api.af_packet_delete(host_if_name=name).retval == 0
    assert kernel.links.admin_up(name) is False  # deleted: the device is left down


def test_admin_state_of_a_dead_interface_leaves_a_new_device_alone(kernel, api):
    name = kernel.name("a")
    kernel.make(name)
    sw = attach(api, name)
    kernel.delete(name)
    kernel.make(name)
    api.sw_interface_set_flags(sw_if_index=sw, flags=0)
    assert kernel.links.admin_up(name) is True  # bound to the old device, not this one
