"""Ports queued together are programmed together: their requests in flight at once.

A cold start (or any burst of port keys) is worked on up to
``PORTS_IN_FLIGHT`` ports at a time (``PortReconciler.reconcile_many``): each
port's requests go out behind the others' and it waits only for its own
replies, so a round trip serves many ports. Each port still ends exactly as
alone (filters before admin-up, its guard, its bridge domain), and one port's
failure is its own.
"""

from __future__ import annotations

from networking_vpp.agent.vpp import types as t
from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.testing.vpp import errors as vpp_errors
from networking_vpp.testing.wait import wait_for

from .conftest import HostRig, binding

KEYS = k.KeySpace()
PORTS = 64


def secured(i: int, **over: object) -> model.PortBinding:
    """Port i, with port security and a security group."""
    fields: dict[str, object] = dict(
        mac_address=f"fa:16:3e:00:01:{i:02x}",
        fixed_ips=(model.FixedIp(f"10.0.0.{i + 10}", "subnet"),),
        security_groups=("default",),
        port_security_enabled=True,
    )
    fields.update(over)
    return binding(f"p{i}", **fields)


def put_group(rig: HostRig) -> None:
    rule = model.SecGroupRule(direction="ingress", ethertype="IPv4", remote_group_id="default")
    rig.etcd.put(KEYS.secgroup("default"), model.encode(model.SecurityGroup("default", (rule,))))


def all_active(rig: HostRig, ports: list[str]) -> bool:
    states = [rig.state(p) for p in ports]
    return all(s is not None and s.status == "active" for s in states)


def test_many_ports_share_their_round_trips_and_each_ends_as_alone(rig: HostRig) -> None:
    put_group(rig)
    ports = [f"p{i}" for i in range(PORTS)]
    for i in range(PORTS):
        rig.put(secured(i))
    agent = rig.start_agent(report_before_vm_connects=True)
    wait_for(lambda: all_active(rig, ports), timeout=30, what="every port active")
    assert agent.wait_converged(10)

    # Alone, a port never has more than one batch (a dozen requests) in flight.
    assert agent.vpp.most_in_flight > 4 * 12, agent.vpp.most_in_flight

    itfs = {i.sw_if_index: i for i in rig.look.dump_interfaces()}
    guards = {i.sup_sw_if_index for i in itfs.values() if i.sub_id == t.GUARD_SUB_ID}
    macips = {parsed[0] for m in rig.look.dump_macips() if (parsed := t.parse_tag(m.tag))}
    bds = {m: bd.bd_id for bd in rig.look.dump_bridge_domains() for m in bd.members}
    for port_id in ports:
        state = rig.state(port_id)
        assert state is not None and state.programmed is not None
        idx = state.programmed.sw_if_index
        itf = itfs[idx]
        assert itf.admin_up and itf.name == state.programmed.interface
        assert idx in guards, port_id
        assert bds.get(idx) == state.programmed.bridge_domain
        assert t.MACIP_TAG + port_id in macips, port_id


def test_a_port_failing_among_others_is_retried_alone_and_keeps_one_macip(
    rig: HostRig,
) -> None:
    put_group(rig)
    ports = [f"p{i}" for i in range(8)]
    for i in range(8):
        rig.put(secured(i))
    # The first create fails; the port's MACIP ACL went out before it.
    rig.vpp.fail_next(1, retval=vpp_errors.INVALID_ARGUMENT, message="create_vhost_user_if_v2")
    agent = rig.start_agent(report_before_vm_connects=True)
    wait_for(lambda: all_active(rig, ports), timeout=30, what="every port active")
    assert agent.wait_converged(10)
    assert rig.vpp.calls["create_vhost_user_if_v2"] == len(ports) + 1
    assert len(rig.look.dump_macips()) == len(ports)


def test_a_port_whose_create_failed_leaves_no_macip_when_deleted(rig: HostRig) -> None:
    put_group(rig)
    rig.vpp.fail_next(10_000, retval=vpp_errors.INVALID_ARGUMENT, message="create_vhost_user_if_v2")
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.put(secured(1))
    rig.wait_state("p1", "error", timeout=15)
    assert len(rig.look.dump_macips()) == 1  # made in flight with the failed create
    rig.delete("p1")
    wait_for(lambda: rig.state("p1") is None, timeout=10, what="the port's state gone")
    assert agent.wait_converged(10)
    assert rig.look.dump_macips() == []


def test_a_port_leaving_a_network_another_port_is_joining_leaves_it_be(rig: HostRig) -> None:
    # A is the network's last member; B joins it and A leaves in one
    # reconcile_many, B first: when A's removal looks, B is not a member yet.
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("a", mac_address="fa:16:3e:00:02:01"))
    rig.wait_state("a")
    bd = rig.look.dump_bridge_domains()
    made = rig.vpp.calls["bridge_domain_add_del_v2"]
    with agent.vpp.exclusive():  # the worker waits at its next VPP call
        rig.put(binding("c", network_id="net-c", segmentation_id=300))
        wait_for(lambda: agent.queue.ready() == 0, timeout=10, what="c taken")
        rig.put(binding("b", mac_address="fa:16:3e:00:02:02"))
        rig.delete("a")
        wait_for(lambda: agent.queue.ready() == 2, timeout=10, what="b and a queued")
    rig.wait_state("b")
    wait_for(lambda: rig.state("a") is None, timeout=10, what="a's state gone")
    assert agent.wait_converged(10)
    # The network's bridge domain stayed (one more made: net-c's), with b in it
    assert rig.vpp.calls["bridge_domain_add_del_v2"] == made + 1
    b = rig.state("b")
    assert b is not None and b.programmed is not None
    assert b.programmed.bridge_domain in {d.bd_id for d in bd}
    assert agent.queue.failures(("port", "b")) == 0
