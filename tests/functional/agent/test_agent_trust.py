"""The agent trusts no value blindly (issue 14 items 2 and 3), against a real etcd.

A value it cannot use (malformed, a newer major schema version, a socket or
tap device that is not the port's) never reaches VPP and never removes what is
programmed: the port keeps its last good state and is reported in error with
the reason, and the value is counted in the host's summary.
"""

from __future__ import annotations

import json

from networking_vpp.agent.vpp import types as t
from networking_vpp.common import model
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, SOCKET_DIR, binding, mark


def interfaces(rig) -> dict[str, t.Interface]:
    return {i.tag: i for i in rig.look.dump_interfaces() if i.tag}


def summary(rig) -> model.HostSummary:
    kv = rig.etcd.get(KEYS.summary(rig.host))
    return model.decode(model.HostSummary, kv.key, kv.value)


def newer_major(b: model.PortBinding) -> str:
    data = json.loads(model.encode(b))
    data.update(version=model.SCHEMA_VERSION + 1, binding_id="bind-v2", mtu={"l2": 1500})
    return json.dumps(data)


def test_a_bad_value_keeps_the_programmed_port_and_reports_why(rig, etcd):
    agent = rig.start_agent(report_before_vm_connects=True)
    good = binding("p1")
    rig.put(good)
    rig.wait_state("p1")
    assert agent.wait_converged(10)
    programmed = interfaces(rig)[mark(t.PORT_TAG + "p1")]
    calls = agent.vpp.mutations
    bad_values = [
        ("{not json", "bind-p1", "not JSON"),
        (newer_major(good), "bind-v2", f"schema version {model.SCHEMA_VERSION + 1}"),
        (
            model.encode(model.replace(good, vhostuser=model.VhostUser("/etc/shadow"))),
            "bind-p1",
            "'/etc/shadow' refused",
        ),
    ]
    for count, (raw, binding_id, reason) in enumerate(bad_values, start=1):
        etcd.put(KEYS.port(rig.host, "p1"), raw)
        state = wait_for(
            lambda r=reason: (s := rig.state("p1")) is not None and r in s.reason and s,
            what=f"p1 reported in error: {reason}",
        )
        assert state.status == "error" and state.binding_id == binding_id
        assert agent.wait_converged(10)
        assert agent.vpp.mutations == calls  # nothing reached VPP, nothing was removed
        assert interfaces(rig)[mark(t.PORT_TAG + "p1")] == programmed
        wait_for(lambda n=count: summary(rig).rejected_values == n, what="counted")
        assert summary(rig).errors == ("p1",)
    rig.put(model.replace(good, mtu=1400))  # a good value again: taken up
    wait_for(lambda: (s := rig.state("p1")) is not None and s.status == "active")
    assert interfaces(rig)[mark(t.PORT_TAG + "p1")].mtu == 1400


def test_a_socket_or_tap_device_that_is_not_the_ports_never_reaches_vpp(rig, etcd):
    agent = rig.start_agent(report_before_vm_connects=True)
    assert agent.wait_converged(10)
    calls = agent.vpp.mutations  # the agent's own settings (session reclassification)
    rig.put(binding("v1", vhostuser=model.VhostUser("/run/vpp/../../etc/vhuv1")))
    rig.put(binding("v2", vhostuser=model.VhostUser(f"{SOCKET_DIR}/vhuv1")))  # v1's
    rig.put(binding("t1", binding_type="tap", tap=model.Tap("eth0")))
    for port_id, name in (("v1", "/etc/vhuv1"), ("v2", "vhuv1"), ("t1", "eth0")):
        state = rig.wait_state(port_id, "error")
        assert name in state.reason and "refused" in state.reason
        assert state.binding_id == f"bind-{port_id}"
    assert agent.wait_converged(10)
    assert agent.vpp.mutations == calls
    assert not [tag for tag in interfaces(rig) if tag.startswith(t.PORT_TAG)]
    assert set(agent.cache.rejected) == {KEYS.port(rig.host, p) for p in ("v1", "v2", "t1")}


def test_a_restarted_agent_keeps_what_is_programmed_for_a_bad_value(rig, etcd):
    first = rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("p1"))
    rig.wait_state("p1")
    assert first.wait_converged(10)
    programmed = interfaces(rig)[mark(t.PORT_TAG + "p1")]
    rig.stop_agents()
    etcd.put(KEYS.port(rig.host, "p1"), newer_major(binding("p1")))
    second = rig.start_agent(report_before_vm_connects=True)
    state = rig.wait_state("p1", "error")
    assert "schema version" in state.reason
    assert second.wait_converged(10)
    assert second.vpp.mutations == 0  # it knows no good value, and removes nothing
    assert interfaces(rig)[mark(t.PORT_TAG + "p1")] == programmed
    etcd.delete(KEYS.port(rig.host, "p1"))  # a delete is the way to unbind
    wait_for(lambda: mark(t.PORT_TAG + "p1") not in interfaces(rig), what="port removed")
    wait_for(lambda: rig.state("p1") is None, what="report withdrawn")


def test_a_newer_servers_value_of_the_same_major_is_programmed(rig, etcd):
    agent = rig.start_agent(report_before_vm_connects=True)
    data = json.loads(model.encode(binding("p1")))
    data.update(qos_policy_id="q1")  # a field a newer minor release added
    data["vhostuser"].update(queues=2)
    etcd.put(KEYS.port(rig.host, "p1"), json.dumps(data))
    rig.wait_state("p1")
    assert not agent.cache.rejected
