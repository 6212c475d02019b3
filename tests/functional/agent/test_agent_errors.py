"""Errors that retry and are heard (issue 14 item 4).

A failing VPP call is retried with backoff and, after a few failures, reported
in the port's state by VPP's error name; a network error is retried when its
cause can have cleared; the summary keeps being published, naming the keys
that keep failing.
"""

from __future__ import annotations

from networking_vpp.agent.agent import REPORT_AFTER_FAILURES
from networking_vpp.common import model
from networking_vpp.testing.vpp import errors as vpp_errors
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, HostRig, binding


def summary(rig: HostRig) -> model.HostSummary | None:
    kv = rig.etcd.get(KEYS.summary(rig.host))
    return None if kv is None else model.decode(model.HostSummary, kv.key, kv.value)


def test_a_failing_vpp_call_is_reported_by_its_error_name_then_recovers(rig: HostRig) -> None:
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("p1"))
    rig.wait_state("p1")
    failures = REPORT_AFTER_FAILURES + 2
    rig.vpp.fail_next(
        failures, retval=vpp_errors.INVALID_ARGUMENT, message="create_vhost_user_if_v2"
    )
    rig.put(binding("p2", mac_address="fa:16:3e:00:00:02"))

    state = rig.wait_state("p2", "error")
    assert "create_vhost_user_if_v2" in state.reason
    assert "INVALID_ARGUMENT" in state.reason
    assert str(vpp_errors.INVALID_ARGUMENT) not in state.reason  # a name, not a number
    assert agent.queue.failures(("port", "p2")) >= REPORT_AFTER_FAILURES

    # Still retried: once VPP takes the call, the port is programmed and active.
    rig.wait_state("p2", "active", timeout=15)
    assert rig.vpp.calls["create_vhost_user_if_v2"] == 1 + failures + 1
    assert agent.wait_converged(10)


def test_the_summary_is_published_while_a_key_keeps_failing_and_names_it(
    rig: HostRig,
) -> None:
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("p1"))
    rig.wait_state("p1")
    wait_for(lambda: summary(rig), what="first summary")
    rig.vpp.fail_next(10_000, retval=vpp_errors.UNSPECIFIED, message="create_vhost_user_if_v2")
    rig.put(binding("p2", mac_address="fa:16:3e:00:00:02"))

    got = wait_for(
        lambda: (s := summary(rig)) is not None and s.desired == 2 and s,
        what="a summary counting p2 while it keeps failing",
    )
    # It fails for ever; after a few tries its port is reported in error.
    got = wait_for(
        lambda: (s := summary(rig)) is not None and "port:p2" in s.failing and s.errors and s,
        what="the summary naming the failing key and its port in error",
    )
    assert got.errors == ("p2",)
    assert "port:p1" not in got.failing

    rig.delete("p2")  # the port goes: nothing fails any more
    wait_for(
        lambda: (s := summary(rig)) is not None and not s.failing and s.desired == 1,
        what="the summary without failing keys",
    )
    assert agent.queue.failures(("port", "p2")) == 0


def test_a_port_waiting_for_a_vlan_in_use_is_programmed_once_the_other_network_goes(
    rig: HostRig,
) -> None:
    rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("a1", network_id="net-a", segmentation_id=100))
    rig.wait_state("a1")
    rig.put(binding("b1", network_id="net-b", segmentation_id=100, mac_address="fa:16:3e:00:00:02"))
    state = rig.wait_state("b1", "error")
    assert "already carries network net-a" in state.reason

    rig.delete("a1")  # net-a's last port goes: VLAN 100 is free
    rig.wait_state("b1", "active")
