"""Whose objects are these? Tags carry the host, and untagged leftovers are adopted.

* Two agents pointed at one VPP by mistake: the second neither adopts nor
  removes the first's objects, and says why (real-vpp-facts #10: it used to
  adopt and remove them).
* A VPP programmed by an older agent (tags without a host id): adopted and
  re-tagged once, one mutating call per object (bridge domains, which VPP
  cannot re-tag, are moved to a tagged one); a restart then makes no call.
* Objects a crash left untagged between their create and their tag (af_packet
  interfaces, VLAN sub-interfaces, guards) are adopted at the next start:
  tagged, not made twice, and removed with their port.
"""

from __future__ import annotations

import logging

import pytest

from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, UPLINK1, HostRig, binding, mark
from .test_agent_secgroups import put_group, vm


def snapshot(rig: HostRig) -> dict[str, object]:
    """Every object of VPP's, with what identifies and binds it."""
    look = rig.look
    return {
        "interfaces": sorted((i.sw_if_index, i.tag, i.admin_up) for i in look.dump_interfaces()),
        "bds": sorted(
            (b.bd_id, b.tag, tuple(sorted(b.members))) for b in look.dump_bridge_domains()
        ),
        "acls": sorted((a.acl_index, a.tag, a.rules) for a in look.dump_acls()),
        "macips": sorted((m.acl_index, m.tag) for m in look.dump_macips()),
        "lists": look.dump_interface_acls(),
    }


def of_host(snap: dict[str, object], host: str) -> dict[str, list[object]]:
    """The rows of a snapshot whose tag is ``host``'s."""
    suffix = "@" + t.host_id(host)
    return {
        key: [row for row in snap.get(key, []) if row[1].endswith(suffix)]  # type: ignore[attr-defined,index]
        for key in ("interfaces", "bds", "acls", "macips")
    }


def all_tags(rig: HostRig) -> set[str]:
    look = rig.look
    return rig.tags() | {a.tag for a in look.dump_acls()} | {m.tag for m in look.dump_macips()}


def test_a_second_agent_on_the_same_vpp_leaves_the_first_one_s_objects_alone(
    rig: HostRig, etcd, caplog: pytest.LogCaptureFixture
) -> None:
    rig.vpp.auto_connect_vms = True
    put_group(etcd, "web", *())
    first = rig.start_agent()
    rig.put(vm("web", ["web"]))
    rig.put(binding("p2", mac_address="fa:16:3e:00:00:02"))
    rig.wait_state("web")
    rig.wait_state("p2")
    assert first.wait_converged(10)
    before = snapshot(rig)
    ours = {tag for tag in all_tags(rig) if tag.startswith(t.TAG_PREFIX)}
    assert ours and all(tag.endswith("@" + t.host_id("compute-1")) for tag in ours)

    # compute-2's agent, wrongly pointed at compute-1's VPP, with a port of its
    # own (on the other physnet: the uplink guard of physnet1 is compute-1's).
    caplog.set_level(logging.INFO)
    rig.put(binding("q1", network_id="net-q", physnet="physnet2"), host="compute-2")
    second = rig.start_agent(host="compute-2")
    assert second.wait_converged(10)
    assert set(second.inventory.ports) == {"q1"}
    assert not set(second.inventory.networks) & {"net-a"}
    assert not second.secgroups.inv.acls  # compute-1's essentials and groups: not its
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        f"another networking-vpp host (id {t.host_id('compute-1')})" in m
        and "not touching them; two agents on one VPP?" in m
        and rig.socket in m
        for m in errors
    ), errors
    # compute-1's objects are as they were; compute-2's carry its own id.
    assert of_host(snapshot(rig), "compute-1") == of_host(before, "compute-1")
    assert mark(t.PORT_TAG + "q1", "compute-2") in rig.tags()
    assert rig.state("web").status == "active"

    # compute-2's agent restarts with its binding gone: its own port goes, and
    # still nothing of compute-1's.
    rig.stop_agents()
    etcd.delete(KEYS.port("compute-2", "q1"))
    second = rig.start_agent(host="compute-2")
    assert second.wait_converged(10)
    wait_for(lambda: mark(t.PORT_TAG + "q1", "compute-2") not in rig.tags(), 10, "q1 removed")
    assert of_host(snapshot(rig), "compute-1") == of_host(before, "compute-1")
    assert of_host(snapshot(rig), "compute-2") == of_host({}, "compute-2")


def _old_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents from here on tag as agents before host ids did."""
    monkeypatch.setattr(t.Tags, "mark", lambda self, body: body)


def test_an_older_agent_s_objects_are_adopted_and_re_tagged_once(
    rig: HostRig, etcd, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.vpp.auto_connect_vms = True
    rig.vpp.add_kernel_interface("tapt1")
    put_group(etcd, "web", *())
    with monkeypatch.context() as patch:
        _old_agent(patch)
        old = rig.start_agent()
        rig.put(vm("web", ["web"]))
        rig.put(binding("t1", binding_type="tap", tap=None, mac_address="fa:16:3e:00:00:09"))
        rig.put(binding("f1", network_id="net-f", network_type="flat", segmentation_id=None))
        for p in ("web", "t1", "f1"):
            rig.wait_state(p)
        assert old.wait_converged(10)
        rig.stop_agents()
    legacy = snapshot(rig)
    tags = all_tags(rig)
    assert tags and all(t.parse_tag(tag) == (tag, None) for tag in tags if tag.startswith("net-"))
    look = rig.look
    n_interfaces = sum(1 for i in look.dump_interfaces() if i.tag)
    n_acls = len(look.dump_acls()) + len(look.dump_macips())
    bds = look.dump_bridge_domains()
    # A bridge domain cannot be re-tagged: a new one, its learn limit, each
    # member moved, the old one deleted.
    n_bd_calls = sum(3 + len(bd.members) for bd in bds)
    ports = {i.tag: i.sw_if_index for i in look.dump_interfaces() if i.tag.startswith(t.PORT_TAG)}

    calls = rig.vpp.mutations
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    assert rig.vpp.mutations - calls == n_interfaces + n_acls + n_bd_calls
    host = t.host_id("compute-1")
    assert all(tag.endswith("@" + host) for tag in all_tags(rig)), all_tags(rig)
    # The same interfaces and ACLs (not made again), now tagged with the host.
    now = {i.tag: i.sw_if_index for i in rig.look.dump_interfaces()}
    assert {tag: now[mark(tag)] for tag in ports} == ports
    assert sorted(a.acl_index for a in rig.look.dump_acls()) == [a[0] for a in legacy["acls"]]
    for p in ("web", "t1", "f1"):
        assert rig.state(p).status == "active"

    rig.stop_agents()
    calls = rig.vpp.mutations
    again = rig.start_agent()
    assert again.wait_converged(10)
    assert rig.vpp.mutations == calls  # a restart: nothing to do


def untag(look: VppAdapter, sw_if_index: int) -> int:
    """The interface as a crash between its create and its tag leaves it."""
    look._mutate("sw_interface_tag_add_del", is_add=False, sw_if_index=sw_if_index, tag="")
    return sw_if_index


def test_objects_left_untagged_by_a_crash_are_adopted(rig: HostRig) -> None:
    """af_packet and VLAN sub-interfaces are created, then tagged: a crash in
    between leaves them untagged. So may a guard be (an uplink's is tagged once
    its filter is on; a port's never is)."""
    rig.vpp.add_kernel_interface("tapt1")
    look = rig.look
    uplink = {i.name: i for i in look.dump_interfaces()}[UPLINK1].sw_if_index
    afp = untag(look, look.create_af_packet("tapt1", "to be removed"))
    port_guard = look.create_default_subif(afp, t.GUARD_SUB_ID)
    sub = untag(look, look.create_vlan_subif(uplink, 100, "to be removed"))
    uplink_guard = look.create_default_subif(uplink, t.GUARD_SUB_ID)
    assert not rig.tags()
    count = len(look.dump_interfaces())

    rig.put(binding("t1", binding_type="tap", tap=None))
    agent = rig.start_agent()
    rig.wait_state("t1")
    assert agent.wait_converged(10)
    itfs = {i.sw_if_index: i for i in rig.look.dump_interfaces()}
    assert len(itfs) == count  # nothing made twice
    assert itfs[afp].tag == mark(t.PORT_TAG + "t1")
    assert itfs[sub].tag == mark(t.UPLINK_TAG + "100" + t.EFP_MARK)
    assert itfs[uplink_guard].tag == mark(t.GUARD_TAG)
    assert itfs[sub].admin_up and rig.vpp.interface(sub).efp and rig.vpp.interface(uplink).efp
    assert not itfs[port_guard].admin_up  # the port's guard, as the agent makes it
    assert rig.state("t1").programmed.sw_if_index == afp

    rig.delete("t1")  # and nothing is left behind with the port
    wait_for(lambda: rig.state("t1") is None, 10, "t1 gone")
    assert agent.wait_converged(10)
    left = {i.sw_if_index for i in rig.look.dump_interfaces()}
    assert not left & {afp, port_guard, sub, uplink_guard}
    assert not rig.look.dump_af_packet() and not rig.look.dump_bridge_domains()
