"""Batches: many requests in flight on vpp_papi's socket, replies matched by context.

The adapter's batch sends changes without waiting and checks their replies at
its end (or when a call inside needs a reply's content); VPP serves them in
order and goes on past a failure, which the batch reports by message and
VPP's error name. A port is programmed in a few batches, its filters' replies
in before it is set admin-up.
"""

from __future__ import annotations

import pytest

from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppBatchError
from networking_vpp.testing.vpp import errors as vpp_errors

from .conftest import UPLINK1, HostRig, binding


@pytest.fixture
def vpp(rig: HostRig):
    adapter = rig.adapter("batch-test")
    adapter.connect()
    yield adapter
    adapter.disconnect()


def uplink(rig: HostRig) -> int:
    """The uplink NIC, up (a sub-interface cannot go up while its NIC is down)."""
    itf = rig.vpp.interface(UPLINK1)
    assert itf is not None
    rig.look.set_admin_up(itf.sw_if_index, True)
    return itf.sw_if_index


def test_a_batch_keeps_the_order_of_its_calls_and_waits_once(rig: HostRig, vpp) -> None:
    sub = vpp.create_vlan_subif(uplink(rig), 100, "first")
    done: list[str] = []
    calls = vpp.calls
    with vpp.batch():
        for tag in ("a", "b", "c"):
            vpp.set_tag(sub, tag)
        vpp.set_mtu(sub, 1400, then=lambda: done.append("mtu"))
        vpp.set_admin_up(sub, True, then=lambda: done.append("up"))
        assert done == []  # sent, not waited for
    assert done == ["mtu", "up"]  # in the order sent, once the replies are in
    itf = vpp.get_interface(sub)
    assert itf is not None
    assert (itf.tag, itf.mtu, itf.admin_up) == ("c", 1400, True)  # the last tag won
    assert vpp.calls == calls + 5 + 1


def test_a_failed_call_is_named_at_the_end_and_those_behind_it_are_done(rig: HostRig, vpp) -> None:
    sub = vpp.create_vlan_subif(uplink(rig), 100, "sub")
    done: list[str] = []
    with pytest.raises(VppBatchError) as err:
        with vpp.batch():
            vpp.set_mtu(sub, 1400, then=lambda: done.append("mtu"))
            vpp.set_admin_up(999, True, then=lambda: done.append("no such"))
            vpp.set_tag(sub, "behind")
            vpp.set_admin_up(998, True)
    assert err.value.message == "sw_interface_set_flags"
    assert err.value.name == "INVALID_SW_IF_INDEX"
    assert str(err.value).startswith("sw_interface_set_flags failed: INVALID_SW_IF_INDEX")
    assert "also failed: sw_interface_set_flags (INVALID_SW_IF_INDEX)" in str(err.value)
    assert len(err.value.failures) == 2
    assert done == ["mtu"]
    itf = vpp.get_interface(sub)
    assert itf is not None and itf.tag == "behind"  # VPP went on past the failure
    vpp.ping()  # the connection is in step


def test_a_call_whose_reply_is_needed_waits_for_those_before_it(rig: HostRig, vpp) -> None:
    nic = uplink(rig)
    made: list[int] = []
    with pytest.raises(VppBatchError) as err:
        with vpp.batch():
            vpp.set_admin_up(999, True)
            made.append(vpp.create_vlan_subif(nic, 100, "sub"))  # its index, at once
    # the earlier failure is the batch's, said at its end; the create's value was given
    assert err.value.message == "sw_interface_set_flags"
    assert len(made) == 1 and rig.vpp.interface(made[0]) is not None
    with pytest.raises(VppBatchError) as err:
        with vpp.batch():
            vpp.set_admin_up(999, True)
            vpp.create_vlan_subif(nic, 100, "again")  # its own failure: said with the other
    assert [m for m, _ in err.value.failures] == ["sw_interface_set_flags", "create_vlan_subif"]
    with vpp.batch():
        sub = vpp.create_vlan_subif(nic, 200, "other")
        vpp.set_admin_up(sub, True)
        itf = vpp.get_interface(sub)  # a dump in the batch, behind the change
    assert itf is not None and itf.admin_up and itf.tag == "other"


def test_an_exception_inside_a_batch_leaves_the_connection_in_step(rig: HostRig, vpp) -> None:
    sub = vpp.create_vlan_subif(uplink(rig), 100, "sub")
    with pytest.raises(RuntimeError):
        with vpp.batch():
            vpp.set_tag(sub, "sent")
            vpp.set_admin_up(999, True)
            raise RuntimeError("the agent's own bug")
    itf = vpp.get_interface(sub)
    assert itf is not None and itf.tag == "sent"
    assert vpp.dump_interfaces(sub)[0].sw_if_index == sub


def test_a_port_whose_filter_fails_is_not_set_up(rig: HostRig) -> None:
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.vpp.fail_next(
        1, retval=vpp_errors.INVALID_VALUE, message="acl_interface_set_etype_whitelist"
    )
    flags_before = rig.vpp.calls["sw_interface_set_flags"]
    rig.put(binding("p1", port_security_enabled=True, security_groups=("sg1",)))
    rig.wait_state("p1", "active", timeout=15)
    assert agent.queue.failures(("port", "p1")) == 0  # retried, then done
    itf = rig.vpp.interface(agent.inventory.ports["p1"].sw_if_index)
    assert itf is not None and itf.admin_up
    # Admin-up was sent once, by the pass that found every filter in place.
    port_ups = rig.vpp.calls["sw_interface_set_flags"] - flags_before
    uplinks_up = 2  # the uplink and its VLAN sub-interface, made by the first pass
    assert port_ups == uplinks_up + 1
    assert any(tag.startswith(t.PORT_TAG) for tag in rig.tags())
