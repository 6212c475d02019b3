"""Model-based faults: random networks, ports, bindings and security groups, mixed with crashes.

A hypothesis state machine drives the fault cloud's real API (networks and
subnets; ports created, bound, rebound, unbound, updated and deleted; security
groups and rules, remote-group rules included, created and deleted) and, between
those, SIGKILLs and restarts an agent, crashes and restarts a VPP, or restarts
etcd (a member, the leader, or every member). It keeps a model of what each
answered request did. At the end of every example, desired must equal actual
everywhere (:meth:`FaultCloud.wait_converged`, and the API's ports as the model
says); over the whole run, committed journal writes are checked against etcd's
history. Used by ``tests/faults/test_model_based.py`` (a few short examples) and
``benchmarks/fault_soak.py`` (many long ones).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from networking_vpp.testing.faultcloud.history import OrderReport
from networking_vpp.testing.faultcloud.neutron_api import ApiError, NeutronApi, bound_host
from networking_vpp.testing.faultcloud.rig import FaultCloud

NETWORK_KINDS = {"vlan-physnet1": ("vlan", "physnet1"), "flat-physnet2": ("flat", "physnet2")}
RULE_KINDS = ("ssh-from-cidr", "icmp", "udp-range", "from-remote-group", "egress-tcp")


@dataclasses.dataclass
class NetM:
    ident: str
    kind: str


@dataclasses.dataclass
class PortM:
    ident: str
    network: str
    marker: str
    groups: tuple[str, ...]
    security: bool
    admin_up: bool = True
    host: str | None = None  # binding:host_id asked for
    bound: str | None = None  # bound by our driver there (the agent was alive)


@dataclasses.dataclass
class Totals:
    """Figures over every example of a run."""

    examples: int = 0
    api_ops: int = 0
    faults: dict[str, int] = dataclasses.field(default_factory=dict)
    converge: list[float] = dataclasses.field(default_factory=list)  # after the last step
    since_fault: list[float] = dataclasses.field(default_factory=list)  # last fault -> converged
    bound_at_end: list[int] = dataclasses.field(default_factory=list)


class CloudMachine(RuleBasedStateMachine):
    """One example: a random sequence of API operations and faults on the fault cloud."""

    rig: FaultCloud
    totals: Totals
    default_group: str
    counter = 0

    def __init__(self) -> None:
        super().__init__()
        api = self.rig.api
        assert api is not None, "FaultCloud not up"
        self.api: NeutronApi = api
        self.nets: dict[str, NetM] = {}
        self.ports: dict[str, PortM] = {}
        self.groups: dict[str, dict[str, str | None]] = {}  # sg -> rule id -> remote group
        self.last_fault = time.monotonic()
        self.totals.examples += 1

    # --- helpers --------------------------------------------------------------------------
    def _marker(self) -> str:
        CloudMachine.counter += 1
        return f"mb-{CloudMachine.counter:06d}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        self.totals.api_ops += 1
        return self.api.call(method, path, body)

    def _fault(self, name: str) -> None:
        self.totals.faults[name] = self.totals.faults.get(name, 0) + 1
        self.last_fault = time.monotonic()

    def _adopt(self, port: PortM, answer: dict[str, Any]) -> None:
        port.marker = answer["device_id"]
        port.host = answer.get("binding:host_id") or None
        port.bound = bound_host(answer)
        port.admin_up = answer["admin_state_up"]
        port.security = answer.get("port_security_enabled", True)
        port.groups = tuple(sorted(answer.get("security_groups") or ()))

    # --- networks -------------------------------------------------------------------------
    @initialize()
    def first_ports(self) -> None:
        """Every example starts with a network and a bound port on each host."""
        self.create_network("vlan-physnet1")
        net = next(iter(self.nets))
        for host in sorted(self.rig.hosts):
            marker = self._marker()
            body = {
                "network_id": net,
                "name": marker,
                "device_owner": "compute:nova",
                "device_id": marker,
                "binding:host_id": host,
                "security_groups": [self.default_group],
            }
            port = self._call("POST", "/ports", {"port": body})["port"]
            model = PortM(port["id"], net, marker, (), True)
            self._adopt(model, port)
            self.ports[model.ident] = model

    @precondition(lambda self: len(self.nets) < 3)
    @rule(kind=st.sampled_from(sorted(NETWORK_KINDS)))
    def create_network(self, kind: str) -> None:
        if kind.startswith("flat") and any(n.kind == kind for n in self.nets.values()):
            kind = "vlan-physnet1"  # one flat network per physnet (Neutron refuses a second)
        net_type, physnet = NETWORK_KINDS[kind]
        body = {
            "network": {
                "name": self._marker(),
                "provider:network_type": net_type,
                "provider:physical_network": physnet,
            }
        }
        net = self._call("POST", "/networks", body)["network"]
        self.nets[net["id"]] = NetM(net["id"], kind)
        cidr = f"10.{120 + CloudMachine.counter % 100}.{len(self.nets)}.0/24"
        self._call(
            "POST",
            "/subnets",
            {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}},
        )

    @precondition(lambda self: any(self._net_free(n) for n in self.nets))
    @rule(data=st.data())
    def delete_network(self, data: st.DataObject) -> None:
        net = data.draw(st.sampled_from(sorted(n for n in self.nets if self._net_free(n))))
        self._call("DELETE", f"/networks/{net}")
        del self.nets[net]

    def _net_free(self, net: str) -> bool:
        return all(p.network != net for p in self.ports.values())

    # --- security groups ------------------------------------------------------------------
    @precondition(lambda self: len(self.groups) < 3)
    @rule()
    def create_group(self) -> None:
        sg = self._call("POST", "/security-groups", {"security_group": {"name": self._marker()}})
        # Neutron gives a new group its two "egress anywhere" rules.
        self.groups[sg["security_group"]["id"]] = {
            r["id"]: None for r in sg["security_group"]["security_group_rules"]
        }

    @precondition(lambda self: bool(self.groups))
    @rule(data=st.data(), kind=st.sampled_from(RULE_KINDS))
    def add_rule(self, data: st.DataObject, kind: str) -> None:
        sg = data.draw(st.sampled_from(sorted(self.groups)))
        body: dict[str, Any] = {
            "security_group_id": sg,
            "direction": "ingress",
            "ethertype": "IPv4",
        }
        remote = None
        if kind == "ssh-from-cidr":
            n = data.draw(st.integers(0, 255))
            body.update(protocol="tcp", port_range_min=22, port_range_max=22)
            body["remote_ip_prefix"] = f"192.0.{n}.0/24"
        elif kind == "icmp":
            body.update(protocol="icmp")
        elif kind == "udp-range":
            low = data.draw(st.integers(1000, 2000))
            body.update(protocol="udp", port_range_min=low, port_range_max=low + 10)
        elif kind == "from-remote-group":
            remote = data.draw(st.sampled_from(sorted(self.groups) + [self.default_group]))
            body.update(protocol="tcp", port_range_min=80, port_range_max=80)
            body["remote_group_id"] = remote
        else:
            body.update(direction="egress", protocol="tcp", port_range_min=443, port_range_max=443)
        try:
            made = self._call("POST", "/security-group-rules", {"security_group_rule": body})
        except ApiError as exc:
            if exc.status == 409:  # the same rule twice: Neutron refuses duplicates
                return
            raise
        self.groups[sg][made["security_group_rule"]["id"]] = remote

    @precondition(lambda self: any(self.groups.values()))
    @rule(data=st.data())
    def delete_rule(self, data: st.DataObject) -> None:
        sg = data.draw(st.sampled_from(sorted(g for g, rules in self.groups.items() if rules)))
        rule_id = data.draw(st.sampled_from(sorted(self.groups[sg])))
        self._call("DELETE", f"/security-group-rules/{rule_id}")
        del self.groups[sg][rule_id]

    @precondition(lambda self: any(self._group_free(g) for g in self.groups))
    @rule(data=st.data())
    def delete_group(self, data: st.DataObject) -> None:
        sg = data.draw(st.sampled_from(sorted(g for g in self.groups if self._group_free(g))))
        self._call("DELETE", f"/security-groups/{sg}")
        del self.groups[sg]
        for rules in self.groups.values():  # rules naming it as remote group go with it
            for rule_id in [r for r, remote in rules.items() if remote == sg]:
                del rules[rule_id]

    def _group_free(self, sg: str) -> bool:
        return all(sg not in p.groups for p in self.ports.values())

    # --- ports ----------------------------------------------------------------------------
    @precondition(lambda self: bool(self.nets) and len(self.ports) < 6)
    @rule(data=st.data(), security=st.booleans())
    def create_port(self, data: st.DataObject, security: bool) -> None:
        net = data.draw(st.sampled_from(sorted(self.nets)))
        marker = self._marker()
        body: dict[str, Any] = {
            "network_id": net,
            "name": marker,
            "device_owner": "compute:nova",
            "device_id": marker,
            "port_security_enabled": security,
        }
        body["security_groups"] = self._draw_groups(data) if security else []
        port = self._call("POST", "/ports", {"port": body})["port"]
        model = PortM(port["id"], net, marker, (), security)
        self._adopt(model, port)
        self.ports[model.ident] = model

    def _draw_groups(self, data: st.DataObject) -> list[str]:
        choices = sorted(self.groups) + [self.default_group]
        return sorted(data.draw(st.sets(st.sampled_from(choices), min_size=1, max_size=2)))

    @precondition(lambda self: bool(self.ports))
    @rule(data=st.data())
    def bind(self, data: st.DataObject) -> None:
        port = self.ports[data.draw(st.sampled_from(sorted(self.ports)))]
        host = data.draw(st.sampled_from(sorted(self.rig.hosts)))
        self._update(port, {"binding:host_id": host})

    @precondition(lambda self: any(p.host for p in self.ports.values()))
    @rule(data=st.data())
    def unbind(self, data: st.DataObject) -> None:
        port = self.ports[
            data.draw(st.sampled_from(sorted(p for p in self.ports if self.ports[p].host)))
        ]
        self._update(port, {"binding:host_id": ""})

    @precondition(lambda self: bool(self.ports))
    @rule(data=st.data(), change=st.sampled_from(["marker", "admin", "groups", "security"]))
    def update_port(self, data: st.DataObject, change: str) -> None:
        port = self.ports[data.draw(st.sampled_from(sorted(self.ports)))]
        attrs: dict[str, Any] = {}
        if change == "admin":
            attrs["admin_state_up"] = not port.admin_up
        elif change == "groups" and port.security:
            attrs["security_groups"] = self._draw_groups(data)
        elif change == "security":
            attrs["port_security_enabled"] = not port.security
            # Port security off needs no groups; back on, the port gets groups again.
            attrs["security_groups"] = [] if port.security else self._draw_groups(data)
        self._update(port, attrs)

    def _update(self, port: PortM, attrs: dict[str, Any]) -> None:
        attrs["device_id"] = self._marker()
        answer = self._call("PUT", f"/ports/{port.ident}", {"port": attrs})["port"]
        self._adopt(port, answer)

    @precondition(lambda self: bool(self.ports))
    @rule(data=st.data())
    def delete_port(self, data: st.DataObject) -> None:
        port = data.draw(st.sampled_from(sorted(self.ports)))
        self._call("DELETE", f"/ports/{port}")
        del self.ports[port]

    # --- faults ---------------------------------------------------------------------------
    # Two fault rules among a dozen of API ones: faults come every few operations
    # (one rule per kind of fault would make them most of the steps).
    @rule(host=st.sampled_from(["compute-1", "compute-2"]), what=st.sampled_from(["agent", "vpp"]))
    def crash_host(self, host: str, what: str) -> None:
        if what == "agent":
            self.rig.restart_agent(host)
            self._fault("agent SIGKILL+start")
        else:
            self.rig.restart_vpp(host)
            self._fault("VPP crash+start")

    @rule(which=st.sampled_from(["member", "leader", "all"]))
    def restart_etcd(self, which: str) -> None:
        etcd = self.rig.etcd
        if which == "all":
            for i in range(etcd.size):
                etcd.kill(i)
            for i in range(etcd.size):
                etcd.restart(i, wait=False)
            etcd.wait_healthy()
        else:
            victim = etcd.leader_index() if which == "leader" else (etcd.leader_index() + 1) % 3
            etcd.kill(victim)
            etcd.restart(victim)
        self._fault(f"etcd {which} restart")

    # --- the end of an example ----------------------------------------------------------
    def teardown(self) -> None:
        """Desired equals actual everywhere; then remove what the example made."""
        try:
            converged = self.rig.wait_converged(120)
            self.totals.converge.append(converged.seconds)
            self.totals.since_fault.append(time.monotonic() - self.last_fault)
            self.totals.bound_at_end.append(converged.bound_ports)
            for port in self.ports.values():
                now = self.api.get_port(port.ident)
                assert now is not None, f"port {port.ident} vanished"
                assert (now["device_id"], bound_host(now)) == (port.marker, port.bound), (
                    f"port {port.ident}: {now['device_id']} bound {bound_host(now)}, "
                    f"model {port.marker} bound {port.bound}"
                )
        finally:
            for port_id in list(self.ports):
                self.api.delete_quietly("ports", port_id)
            for sg in list(self.groups):
                self.api.delete_quietly("security-groups", sg)
            for net in list(self.nets):
                self.api.delete_quietly("networks", net)


@dataclasses.dataclass
class ModelOutcome:
    """A run's totals and the journal's order check over all of it."""

    totals: Totals
    order: OrderReport
    repairs: int
    run: float

    def problems(self) -> list[str]:
        out = [f"lost: {x}" for x in self.order.lost]
        out += [f"reordered: {x}" for x in self.order.reordered]
        if self.repairs:
            out.append(f"the resync repaired {self.repairs} keys: journal writes were lost")
        return out

    def figures(self) -> str:
        t = self.totals
        faults = ", ".join(f"{n} {k}" for k, n in sorted(t.faults.items()))
        return (
            f"model-based: {t.examples} examples, {t.api_ops} API operations, faults: "
            f"{faults or 'none'}; bound ports at the examples' ends {t.bound_at_end}; "
            f"{self.order.summary()}; resync repairs {self.repairs}; converged at most "
            f"{max(t.converge, default=0.0):.1f} s after an example's last step "
            f"({max(t.since_fault, default=0.0):.1f} s after its last fault); "
            f"run {self.run:.0f} s"
        )


def run_model(rig: FaultCloud, examples: int, steps: int, shrink: bool = False) -> ModelOutcome:
    """Run the state machine; a failing example raises (hypothesis prints its steps)."""
    assert rig.api is not None
    rig.wait_converged(120)
    repairs_before = rig.resync_repairs()
    mark = rig.mark()
    defaults = rig.api.list("security-groups", name="default")
    if not defaults:  # made lazily by Neutron with the project's first network
        net = rig.api.create("networks", "network", name="mb-default-sg")
        rig.api.delete("networks", net["id"])
        defaults = rig.api.list("security-groups", name="default")
    CloudMachine.rig = rig
    CloudMachine.totals = totals = Totals()
    CloudMachine.default_group = defaults[0]["id"]
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    started = time.monotonic()
    run_state_machine_as_test(
        CloudMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            phases=phases,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        ),
    )
    rig.wait_converged(120)
    return ModelOutcome(
        totals,
        rig.check_window(mark),
        rig.resync_repairs() - repairs_before,
        time.monotonic() - started,
    )


__all__ = ["CloudMachine", "ModelOutcome", "Totals", "run_model"]
