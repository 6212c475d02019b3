"""Per-host health from etcd alone: what is desired, what the agent reports, where they differ.

Inputs, all read at one etcd revision:

* ``/nodes/<host>/ports/*``: the desired bindings (and their binding ids);
* ``/state/<host>/alive``: the agent's leased liveness key, present while the agent
  is connected to VPP and has resynced (the host takes ports; "DOWN" otherwise);
* ``/state/<host>/ports/*``: the agent's report on each port (active, down or error);
* ``/state/<host>/summary``: the agent's own account (desired, programmed, pending...).

The agent reports a port once it is programmed, ``active`` or ``down`` (admin
down, or for vhost-user its VM not connected: what the operator or Nova asked,
not a fault), or when it cannot be programmed; a desired port without a report
is therefore pending, and one that stays so is worth a look.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import KV, EtcdClient


@dataclasses.dataclass
class HostHealth:
    """One host, as etcd shows it."""

    host: str
    alive: bool = False
    agent_version: str | None = None
    desired: int = 0  # port bindings in etcd
    reported: int = 0  # port reports in etcd
    active: int = 0  # reports "active" for the binding etcd holds now
    summary: model.HostSummary | None = None
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    down: list[dict[str, str]] = dataclasses.field(default_factory=list)  # not faults
    no_report: list[str] = dataclasses.field(default_factory=list)
    stale_reports: list[dict[str, str]] = dataclasses.field(default_factory=list)
    orphan_reports: list[str] = dataclasses.field(default_factory=list)
    drift: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # worth knowing, not wrong
    bad_values: list[str] = dataclasses.field(default_factory=list)

    @property
    def programmed(self) -> int | None:
        """Ports with an interface in VPP, per the agent's summary."""
        return None if self.summary is None else self.summary.programmed

    @property
    def healthy(self) -> bool:
        """Alive (or idle), every desired port active or down, and no drift."""
        return (
            (self.alive or not self.desired)
            and not self.errors
            and not self.no_report
            and not self.stale_reports
            and not self.orphan_reports
            and not self.drift
            and not self.bad_values
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "host": self.host,
            "alive": self.alive,
            "agent_version": self.agent_version,
            "ports": {
                "desired": self.desired,
                "programmed": self.programmed,
                "reported": self.reported,
                "active": self.active,
                "down": len(self.down),
                "error": len(self.errors),
            },
            "errors": self.errors,
            "down": self.down,
            "no_report": self.no_report,
            "stale_reports": self.stale_reports,
            "orphan_reports": self.orphan_reports,
            "drift": self.drift,
            "notes": self.notes,
            "bad_values": self.bad_values,
            "summary": None if self.summary is None else model.as_plain(self.summary),
            "healthy": self.healthy,
        }


def collect(
    client: EtcdClient, keyspace: keys.KeySpace, host: str | None = None
) -> tuple[list[HostHealth], int]:
    """Every host (or one) at one etcd revision; returns ``(hosts, revision)``."""
    nodes_prefix = keyspace.nodes_prefix() if host is None else keyspace.host_prefix(host)
    state_prefix = keyspace.state_prefix() if host is None else keyspace.host_state_prefix(host)
    nodes, revision = client.get_prefix(nodes_prefix)
    state, _ = client.get_prefix(state_prefix, revision=revision)
    return assess(keyspace, nodes, state), revision


def assess(keyspace: keys.KeySpace, nodes: list[KV], state: list[KV]) -> list[HostHealth]:
    """The health of every host that has desired ports or reports anything (pure)."""
    hosts: dict[str, HostHealth] = {}
    desired: dict[str, dict[str, str]] = {}  # host -> port -> binding id
    reports: dict[str, dict[str, model.PortState]] = {}

    def host_of(name: str) -> HostHealth:
        return hosts.setdefault(name, HostHealth(name))

    for kv in nodes:
        try:
            name, port_id = keyspace.parse_port(kv.key)
        except keys.BadKey:
            continue  # routers, trunks...: not port bindings
        health = host_of(name)
        try:
            value = model.decode(model.PortBinding, kv.key, kv.value)
        except model.BadValue as exc:
            health.bad_values.append(str(exc))
            continue
        desired.setdefault(name, {})[port_id] = value.binding_id
    for kv in state:
        try:
            parsed = keyspace.parse_state(kv.key)
        except keys.BadKey:
            continue
        health = host_of(parsed.host)
        try:
            if parsed.kind == "alive":
                alive = model.decode(model.HostAlive, kv.key, kv.value)
                health.alive, health.agent_version = True, alive.agent_version
            elif parsed.kind == "summary":
                health.summary = model.decode(model.HostSummary, kv.key, kv.value)
            elif parsed.kind == "ports":
                report = model.decode(model.PortState, kv.key, kv.value)
                reports.setdefault(parsed.host, {})[parsed.name] = report
        except model.BadValue as exc:
            health.bad_values.append(str(exc))
    for name, health in hosts.items():
        _compare(health, desired.get(name, {}), reports.get(name, {}))
    return [hosts[name] for name in sorted(hosts)]


def _compare(
    health: HostHealth, desired: dict[str, str], reports: dict[str, model.PortState]
) -> None:
    health.desired, health.reported = len(desired), len(reports)
    for port_id, binding_id in sorted(desired.items()):
        report = reports.get(port_id)
        if report is None:
            health.no_report.append(port_id)
        elif report.binding_id != binding_id:
            health.stale_reports.append(
                {"port_id": port_id, "reported": report.binding_id, "desired": binding_id}
            )
        elif report.status == "error":
            health.errors.append(
                {"port_id": port_id, "binding_id": binding_id, "reason": report.reason}
            )
        elif report.status == "down":
            health.down.append(
                {"port_id": port_id, "binding_id": binding_id, "reason": report.reason}
            )
        else:
            health.active += 1
    health.orphan_reports = sorted(set(reports) - set(desired))
    health.drift = _drift(health, desired, reports)


def _drift(
    health: HostHealth, desired: dict[str, str], reports: dict[str, model.PortState]
) -> list[str]:
    """Where the agent's own account disagrees with etcd (or says VPP lags)."""
    out: list[str] = []
    if not health.alive:
        if desired:
            out.append(f"no live agent, {len(desired)} ports desired")
        return out
    summary = health.summary
    if summary is None:
        out.append("the agent has published no summary (busy, or older than this tool)")
        return out
    if summary.desired != len(desired):
        out.append(f"the agent sees {summary.desired} desired ports, etcd holds {len(desired)}")
    if summary.programmed != summary.desired:
        out.append(
            f"VPP has {summary.programmed} port interfaces for {summary.desired} desired ports"
        )
    if summary.pending:
        shown = ", ".join(summary.pending[:10]) + (" ..." if len(summary.pending) > 10 else "")
        out.append(f"{len(summary.pending)} ports pending in the agent: {shown}")
    if summary.failing:
        # The agent cannot converge these (a VPP call refused, say): said in its
        # log each time, and here, where an operator looks.
        shown = ", ".join(summary.failing[:10]) + (" ..." if len(summary.failing) > 10 else "")
        out.append(f"{len(summary.failing)} keys failing in the agent, retried: {shown}")
    in_error = sorted(p for p, r in reports.items() if r.status == "error")
    if sorted(summary.errors) != in_error:
        out.append(
            f"the agent counts ports in error {list(summary.errors)}, its reports say {in_error}"
        )
    if summary.rejected_values:
        # A count since the agent started: a value fixed since then still counts.
        health.notes.append(
            f"the agent has rejected {summary.rejected_values} invalid etcd values since it "
            "started (see its log)"
        )
    return out
