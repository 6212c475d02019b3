"""Tenant isolation on the wire: no frame a VM sends reaches another network,
whatever tags it carries (issue 16).

Two hosts, each the real agent on an emulated VPP, whose physnet1 uplinks share
one wire (``networking_vpp.testing.wire``). physnet1 carries a flat network
(net-d, the uplink's main interface) beside VLAN networks: net-a (VLAN 100) on
both hosts, net-b (VLAN 200) on compute-2 only. A VM's own tags are dropped at
its port, as on an OVS access port; the uplinks send nothing but their own
encapsulation, and take nothing else from the wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from networking_vpp.agent.vpp import types as t
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.vpp import Frame
from networking_vpp.testing.vpp import errors as vpp_errors
from networking_vpp.testing.wait import wait_for
from networking_vpp.testing.wire import Wire

from .conftest import UPLINK1, HostRig, binding, mark

BCAST = "ff:ff:ff:ff:ff:ff"
QINQ, DOT1Q, Q9100 = 0x88A8, 0x8100, 0x9100
PORTS = {
    # port: (host, network, type, VLAN, MAC)
    "a1": ("compute-1", "net-a", "vlan", 100, "fa:16:3e:00:16:a1"),
    "a1b": ("compute-1", "net-a", "vlan", 100, "fa:16:3e:00:16:ab"),
    "d1": ("compute-1", "net-d", "flat", None, "fa:16:3e:00:16:d1"),
    "a2": ("compute-2", "net-a", "vlan", 100, "fa:16:3e:00:16:a2"),
    "d2": ("compute-2", "net-d", "flat", None, "fa:16:3e:00:16:d2"),
    "b2": ("compute-2", "net-b", "vlan", 200, "fa:16:3e:00:16:b2"),
}
# Tag stacks a VM may put on its frames: (VLAN ids, TPIDs)
STACKS = [
    ((7,), ()),
    ((100,), ()),
    ((200,), ()),
    ((0,), ()),
    ((7,), (QINQ,)),
    ((100,), (QINQ,)),
    ((7,), (Q9100,)),
    ((100, 7), ()),
    ((200, 7), (QINQ, DOT1Q)),
    ((0, 0), (DOT1Q, QINQ)),
    ((1, 2, 3), ()),
    ((1, 2, 3, 4), ()),
]


class Cloud:
    """Two hosts on one wire, with the ports of ``PORTS`` bound and active."""

    def __init__(self, etcd: EtcdClient) -> None:
        self.hosts = {h: HostRig(etcd, h) for h in ("compute-1", "compute-2")}
        for rig in self.hosts.values():
            rig.vpp.auto_connect_vms = True
            rig.start_agent()
        self.wire = Wire({h: (rig.vpp, UPLINK1) for h, rig in self.hosts.items()})
        for port, (host, net, kind, vlan, mac) in PORTS.items():
            self.hosts[host].put(
                binding(
                    port,
                    network_id=net,
                    network_type=kind,
                    segmentation_id=vlan,
                    mac_address=mac,
                )
            )
        for port, (host, *_) in PORTS.items():
            self.hosts[host].wait_state(port)
        for rig in self.hosts.values():
            assert rig.agents[0].wait_converged(10)
        self.index = {
            port: self.hosts[host].agents[0].inventory.ports[port].sw_if_index
            for port, (host, *_) in PORTS.items()
        }
        self.name = {
            (host, self.hosts[host].agents[0].inventory.ports[port].name): port
            for port, (host, *_) in PORTS.items()
        }

    def send(self, port: str, vlans: tuple[int, ...] = (), tpids: tuple[int, ...] = ()) -> set:
        """The ports a broadcast from ``port`` reaches (with the tags they get)."""
        host = PORTS[port][0]
        frame = Frame(src_mac=PORTS[port][4], dst_mac=BCAST, vlans=vlans, tpids=tpids)
        return {self.name[d.where] for d in self.wire.send(host, frame, self.index[port])}

    def inject(self, vlans=(), tpids=(), hosts=()) -> set:
        """The ports a broadcast from the wire reaches."""
        frame = Frame(src_mac="52:54:00:99:99:99", dst_mac=BCAST, vlans=vlans, tpids=tpids)
        return {self.name[d.where] for d in self.wire.inject(frame, hosts)}

    def stop(self) -> None:
        for rig in self.hosts.values():
            rig.close()


@pytest.fixture
def cloud(etcd: EtcdClient) -> Iterator[Cloud]:
    c = Cloud(etcd)
    try:
        yield c
    finally:
        c.stop()


def test_untagged_frames_reach_their_network_on_every_host(cloud):
    assert cloud.send("a1") == {"a1b", "a2"}
    assert cloud.send("a2") == {"a1", "a1b"}
    assert cloud.send("d1") == {"d2"}
    assert cloud.send("b2") == set()
    assert cloud.inject() == {"d1", "d2"}
    assert cloud.inject((100,)) == {"a1", "a1b", "a2"}
    assert cloud.inject((200,)) == {"b2"}


@pytest.mark.parametrize(("vlans", "tpids"), STACKS)
def test_a_vlan_network_vm_s_tagged_frames_reach_no_port(cloud, vlans, tpids):
    # Not the flat network elsewhere (the exact-match VLAN 100 sub-interface does
    # not take 100/7), nor net-b, nor net-a: an access port drops them.
    assert cloud.send("a1", vlans, tpids) == set()
    assert cloud.send("a2", vlans, tpids) == set()


@pytest.mark.parametrize(("vlans", "tpids"), STACKS)
def test_a_flat_network_vm_s_tagged_frames_reach_no_port(cloud, vlans, tpids):
    # Not net-a (VLAN 100), nor net-b (VLAN 200, which compute-1 does not have).
    assert cloud.send("d1", vlans, tpids) == set()
    assert cloud.send("d2", vlans, tpids) == set()


@pytest.mark.parametrize(
    ("vlans", "tpids"),
    [s for s in STACKS if s not in (((100,), ()), ((200,), ()))] + [((300,), ())],
)
def test_frames_from_the_wire_with_a_stack_no_network_owns_reach_no_port(cloud, vlans, tpids):
    assert cloud.inject(vlans, tpids) == set()


def test_a_vlan_this_host_does_not_serve_goes_nowhere_here(cloud):
    assert cloud.inject((200,), hosts=("compute-1",)) == set()


def test_an_agent_restart_changes_nothing_in_vpp(cloud):
    rig = cloud.hosts["compute-1"]
    rig.stop_agents()
    before = rig.vpp.mutations
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    wait_for(lambda: rig.state("a1") is not None, what="a1 reported")
    assert rig.vpp.mutations == before
    assert cloud.send("a1", (7,)) == set() and cloud.send("a1") == {"a1b", "a2"}


def test_an_older_agent_s_uplinks_get_their_filters_once(etcd):
    """Sub-interfaces made before egress filtering (no ``:efp`` in the tag) and
    ports without guards are finished by the new agent; then nothing more."""
    rig = HostRig(etcd)
    rig.vpp.auto_connect_vms = True
    look = rig.look
    uplink = {i.name: i for i in look.dump_interfaces()}[UPLINK1].sw_if_index
    old = look.create_vlan_subif(uplink, 100, t.UPLINK_TAG + "100")  # no host id either
    look.set_vlan_pop1(old)
    look.set_admin_up(uplink, True)
    look.set_admin_up(old, True)
    look.set_bridge(old, look.create_bridge_domain(t.NETWORK_TAG + "net-a"))
    try:
        # The port was there before the upgrade: in etcd before the new agent starts
        # (put after the start, it may come after the first load, which collects
        # the old sub-interface as unused: a new one then gets made).
        rig.put(binding("p1", port_security_enabled=True, security_groups=("g",)))
        rig.start_agent()
        rig.wait_state("p1")
        assert rig.agents[0].wait_converged(10)
        sub = rig.vpp.interface(old)
        assert sub.efp and sub.tag == mark(t.UPLINK_TAG + "100" + t.EFP_MARK)
        assert rig.vpp.interface(uplink).efp
        assert mark(t.GUARD_TAG) in rig.tags()
        rig.stop_agents()
        before = rig.vpp.mutations
        rig.start_agent()
        assert rig.agents[0].wait_converged(10)
        wait_for(lambda: rig.state("p1") is not None, what="p1 reported")
        assert rig.vpp.mutations == before  # the whitelist too is read back
    finally:
        rig.close()


def test_a_filter_that_fails_is_never_said_on_and_is_put_on_at_the_retry(rig: HostRig) -> None:
    """Calls go out in batches, and VPP goes on past a failed one: a VLAN
    sub-interface's egress filter (or an uplink's) that VPP refuses must not
    be followed by admin-up nor by the tag that says it is on; the retry
    finishes the job, with one sub-interface per VLAN."""
    rig.vpp.auto_connect_vms = True
    agent = rig.start_agent()
    rig.vpp.fail_next(1, retval=vpp_errors.UNSPECIFIED, message="l2_interface_efp_filter")
    rig.put(binding("p1"))  # the uplink's filter fails first
    rig.wait_state("p1", timeout=15)
    rig.vpp.fail_next(1, retval=vpp_errors.UNSPECIFIED, message="l2_interface_efp_filter")
    rig.put(binding("p2", network_id="net-b", segmentation_id=200, mac_address="fa:16:3e:00:00:02"))
    rig.wait_state("p2", timeout=15)
    assert agent.wait_converged(10)
    uplink = rig.vpp.interface(UPLINK1)
    assert uplink is not None and uplink.efp
    subs = [
        i
        for i in rig.look.dump_interfaces()
        if i.sup_sw_if_index == uplink.sw_if_index != i.sw_if_index
    ]
    vlans = sorted(i.vlan for i in subs if i.sub_id != t.GUARD_SUB_ID)
    assert vlans == [100, 200]
    for itf in subs:
        emulated = rig.vpp.interface(itf.sw_if_index)
        assert emulated is not None and emulated.efp or itf.sub_id == t.GUARD_SUB_ID
        if itf.sub_id != t.GUARD_SUB_ID:
            assert itf.tag == mark(t.UPLINK_TAG + str(itf.vlan) + t.EFP_MARK)
            assert itf.admin_up
