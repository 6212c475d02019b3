"""The state watcher: agents' reports in etcd -> port status and agent rows in Neutron.

Elected (role ``state``): one in the whole cloud watches ``/state/``.

* ``/state/<host>/ports/<port_id>`` about the binding the port has *now* (its
  binding id and host) drives the port's status as ML2/OVS's L2 agent RPCs do
  (:class:`PortReports`): ``active`` completes the port's provisioning block
  (Neutron's L2 agent entity), so the port goes ACTIVE and Nova gets
  ``network-vif-plugged``, and brings back a port that was reported down;
  ``down`` (admin down, VM gone) sets an ACTIVE port DOWN; ``error`` is logged
  and the port stays DOWN. A report about an earlier binding (another binding
  id, another host) is stale and ignored, even when the rebind races it.
* A report from a live-migration destination (a host and binding id in
  ``vpp_port_destinations``) tells Nova ``network-vif-plugged`` for that host,
  once, as ML2/OVS does when a device comes up on a host the port is not bound
  to yet; the port itself stays as it is until Nova activates the binding.
* ``/state/<host>/alive`` and ``physnets/*`` become the host's "VPP agent" row
  (:mod:`networking_vpp.server.agents`).

A full load (start, new term, or etcd compaction) re-evaluates every report, so
ports reported while no state watcher was running still complete, and so do
ports whose completion a dying watcher left half done. Between loads, the
leader publishes again, on every heartbeat, the completions it owes
(:meth:`StateHandler.recheck`).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import socket
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2, provisioning_blocks
from neutron.db.models import provisioning_block as pb_model
from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.callbacks import events, registry, resources
from neutron_lib.db import api as db_api
from neutron_lib.db import standard_attr
from neutron_lib.plugins import directory

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.election import Election
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher
from networking_vpp.server import agents as agents_mod
from networking_vpp.server.journal import models

LOG = logging.getLogger(__name__)

ROLE = "state"
#: The entity of the provisioning block a bound port carries until its host
#: reports it: Neutron's L2 agent entity, as ML2/OVS's. ML2 tells Nova about a
#: port completed while ``migrating_to`` is set only when that entity completed
#: it (``Ml2Plugin._port_provisioned``).
PROVISIONING_ENTITY = provisioning_blocks.L2_AGENT_ENTITY
#: The entity this driver used before; ports bound then may still carry it.
LEGACY_ENTITY = "VPP"
_OUR_ENTITIES = (PROVISIONING_ENTITY, LEGACY_ENTITY)
_CHUNK = 500

Report = tuple[str, str, model.PortState]  # (host, port_id, state)


@dataclasses.dataclass(frozen=True, slots=True)
class PortRow:
    """What the state watcher needs to know of a port in Neutron's DB."""

    status: str
    admin_up: bool
    blocked: bool  # our provisioning block is on it
    updated_at: float  # when the port row last changed (epoch seconds; 0 if unknown)


def _blocked(ctx: n_context.Context, port_id: str) -> bool:
    """Whether any provisioning block is on the port (in a transaction of its own)."""
    return bool(provisioning_blocks.is_object_blocked(ctx, port_id, resources.PORT))


def _epoch(value: datetime.datetime | None) -> float:
    if value is None:
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)  # Neutron stores naive UTC
    return value.timestamp()


class PortReports:
    """Turns agents' reports into port status, as ML2 does with its L2 agents' RPCs.

    For a report about the port's current binding (host and binding id):

    * ``active``, the port blocked by us: complete provisioning (see
      :meth:`_complete`); the port goes ACTIVE and Nova hears network-vif-plugged.
    * ``active``, the port admin-up, DOWN and not blocked: the port comes back
      (admin up again, its VM reconnected) when the report is *news* the port
      has not heard: a report that just turned active (an event), or one written
      after the port row last changed (a full load, which has no history); and
      when its completion is *owed* (below). Anything else DOWN was set so by
      someone else (another component, a rebind still to bind...) and stays so.
    * ``down`` (admin down, VM gone), the port ACTIVE: the port goes DOWN, as
      ML2/OVS's update_device_down; Nova hears network-vif-unplugged.
    * ``error``: logged; the port stays DOWN.

    A completion is *owed* from the moment this watcher removed a port's block
    (or published its completion again) until it sees the port ACTIVE; if the
    port is not ACTIVE right after the publish (a PROVISIONING_COMPLETE
    subscriber failed: Neutron only logs it), the heartbeat's
    :meth:`StateHandler.recheck` publishes it again, and nothing else: a port
    once seen ACTIVE and then set DOWN by anyone is not ours to bring back.
    Owed completions live in memory; a new leader's full load finds a port
    whose completion its predecessor left half done as a report newer than the
    port row (the block's removal does not touch the port row).
    """

    def __init__(self) -> None:
        self.completed = 0
        self.stale = 0
        self.errors = 0
        self.downs = 0
        self.destinations_plugged = 0
        #: (port id, host, binding id) of destinations Nova has been told about
        self._plugged: set[tuple[str, str, str]] = set()
        #: port id -> (host, binding id) whose completion we published, port not yet ACTIVE
        self._owed: dict[str, tuple[str, str]] = {}
        self._owed_lock = threading.Lock()

    def owed(self) -> dict[str, tuple[str, str]]:
        """Ports whose completion we published and have not seen take effect."""
        with self._owed_lock:
            return dict(self._owed)

    def forget(self, port_ids: Iterable[str]) -> None:
        """These ports' completions are owed no more (their reports are gone)."""
        with self._owed_lock:
            for port_id in port_ids:
                self._owed.pop(port_id, None)

    def evaluate(
        self,
        reports: Iterable[Report],
        *,
        fresh: Collection[tuple[str, str]] = (),
        load: bool = False,
    ) -> list[str]:
        """Apply reports (see the class); returns the ports whose completion was published.

        ``fresh``: (host, port id) of reports that just turned active; ``load``:
        the reports are a full load's (news when newer than the port row).
        """
        by_port: dict[str, list[tuple[str, model.PortState]]] = {}
        for host, port_id, state in reports:
            by_port.setdefault(port_id, []).append((host, state))
        if not by_port:
            return []
        bindings, ports, destinations = self._lookup(sorted(by_port))
        # Forget destinations that are gone (activated or aborted): bounded memory.
        self._plugged = {
            p
            for p in self._plugged
            if p[0] not in by_port or destinations.get((p[0], p[1])) == p[2]
        }
        done = []
        for port_id, candidates in by_port.items():
            current = bindings.get(port_id)
            for host, state in candidates:
                if destinations.get((port_id, host)) == state.binding_id:
                    if state.status == "active":
                        self._destination_plugged(port_id, host, state.binding_id)
                    continue
                if current is None or current != (host, state.binding_id):
                    self.stale += 1
                    LOG.debug(
                        "stale report for port %s from %s (binding %s; current %s)",
                        port_id,
                        host,
                        state.binding_id,
                        current,
                    )
                    continue
                port = ports.get(port_id)
                if port is None:
                    continue  # deleted since
                if state.status == "active":
                    if self._comes_up(port_id, host, state, port, fresh, load) and self._complete(
                        port_id, host, state.binding_id
                    ):
                        done.append(port_id)
                    continue
                self.forget([port_id])
                if state.status == "error":
                    self.errors += 1
                    LOG.error(
                        "vpp-agent on %s could not program port %s (binding %s): %s; "
                        "the port stays DOWN",
                        host,
                        port_id,
                        state.binding_id,
                        state.reason or "no reason given",
                    )
                elif port.status == n_const.PORT_STATUS_ACTIVE:
                    self._set_down(port_id, host, state.reason)
        return done

    def _comes_up(
        self,
        port_id: str,
        host: str,
        state: model.PortState,
        port: PortRow,
        fresh: Collection[tuple[str, str]],
        load: bool,
    ) -> bool:
        """Whether a current active report is to (re)complete the port."""
        if port.blocked:
            return True
        if port.status == n_const.PORT_STATUS_ACTIVE:
            self.forget([port_id])  # done: whatever happens next is not ours to undo
            return False
        if not port.admin_up:
            return False  # ML2 keeps it DOWN; the agent reports it again once it is up
        with self._owed_lock:
            owed = self._owed.get(port_id) == (host, state.binding_id)
        if owed or (host, port_id) in fresh or (load and state.reported_at > port.updated_at):
            return True
        LOG.debug("port %s was set %s after its report: left so", port_id, port.status)
        return False

    def _destination_plugged(self, port_id: str, host: str, binding_id: str) -> None:
        """Tell Nova the port is wired on its live-migration destination (once)."""
        if (port_id, host, binding_id) in self._plugged:
            return
        from neutron.plugins.ml2 import db as ml2_db

        notifier = getattr(directory.get_plugin(), "nova_notifier", None)
        ctx = n_context.get_admin_context()
        try:
            port = ml2_db.get_port(ctx, port_id)
            if port is None:
                return
            if notifier is not None:
                notifier.notify_port_active_direct(port)
        except Exception:  # noqa: BLE001 - one bad port must not stop the others
            LOG.exception("telling Nova port %s is plugged on %s failed", port_id, host)
            return
        self._plugged.add((port_id, host, binding_id))
        self.destinations_plugged += 1
        LOG.info("port %s is programmed on its destination %s: told Nova", port_id, host)

    def _complete(self, port_id: str, host: str, binding_id: str) -> bool:
        """Complete provisioning of the port's binding ``binding_id`` on ``host``.

        Check and removal are one transaction holding the port's binding row
        (which a rebind locks too, in its precommit, before it adds its block):
        the block removed is the reported binding's, never a later one's.
        ``provisioning_complete`` would remove whatever block of our entity is
        there when it runs, so it is not used. The completion is published
        after the commit, when no block is left, as Neutron does; a rebind
        committing in between adds a block, and ML2 then leaves the port DOWN.
        """
        ctx = n_context.get_admin_context()
        try:
            if not _remove_block(ctx, port_id, host, binding_id):
                self.stale += 1
                LOG.info("port %s was rebound while its report was read: not completed", port_id)
                return False
            if _blocked(ctx, port_id):
                LOG.debug("port %s: our block is gone, another remains", port_id)
                self.completed += 1
                return False
            registry.publish(
                resources.PORT,
                provisioning_blocks.PROVISIONING_COMPLETE,
                PROVISIONING_ENTITY,
                payload=events.DBEventPayload(ctx, resource_id=port_id),
            )
            status = _status(ctx, port_id)
        except Exception:  # noqa: BLE001 - one bad port must not stop the others
            LOG.exception("completing provisioning failed for port %s", port_id)
            return False
        with self._owed_lock:
            if status in (n_const.PORT_STATUS_ACTIVE, None):
                self._owed.pop(port_id, None)
            else:
                self._owed[port_id] = (host, binding_id)
        self.completed += 1
        LOG.info("port %s is programmed on %s: provisioning complete (%s)", port_id, host, status)
        return True

    def _set_down(self, port_id: str, host: str, reason: str) -> None:
        ctx = n_context.get_admin_context()
        try:
            directory.get_plugin().update_port_status(ctx, port_id, n_const.PORT_STATUS_DOWN, host)
        except Exception:  # noqa: BLE001 - one bad port must not stop the others
            LOG.exception("setting port %s DOWN failed", port_id)
            return
        self.downs += 1
        LOG.info("port %s is down on %s (%s): DOWN", port_id, host, reason or "no reason given")

    @staticmethod
    def _lookup(
        port_ids: list[str],
    ) -> tuple[dict[str, tuple[str, str]], dict[str, PortRow], dict[tuple[str, str], str]]:
        """Current (host, binding_id) per port, the ports as Neutron has them, and
        the binding id of each (port, destination host)."""
        ctx = n_context.get_admin_context()
        bindings: dict[str, tuple[str, str]] = {}
        ports: dict[str, PortRow] = {}
        destinations: dict[tuple[str, str], str] = {}
        with db_api.CONTEXT_READER.using(ctx):
            for start in range(0, len(port_ids), _CHUNK):
                chunk = port_ids[start : start + _CHUNK]
                for r in ctx.session.execute(
                    sa.select(
                        models.VppPortBinding.port_id,
                        models.VppPortBinding.host,
                        models.VppPortBinding.binding_id,
                    ).where(models.VppPortBinding.port_id.in_(chunk))
                ):
                    bindings[r.port_id] = (r.host, r.binding_id)
                for r in ctx.session.execute(
                    sa.select(
                        models.VppPortDestination.port_id,
                        models.VppPortDestination.host,
                        models.VppPortDestination.binding_id,
                    ).where(models.VppPortDestination.port_id.in_(chunk))
                ):
                    destinations[(r.port_id, r.host)] = r.binding_id
                blocked = set(
                    ctx.session.execute(
                        sa.select(models_v2.Port.id)
                        .join(
                            pb_model.ProvisioningBlock,
                            pb_model.ProvisioningBlock.standard_attr_id
                            == models_v2.Port.standard_attr_id,
                        )
                        .where(
                            models_v2.Port.id.in_(chunk),
                            pb_model.ProvisioningBlock.entity.in_(_OUR_ENTITIES),
                        )
                    ).scalars()
                )
                for r in ctx.session.execute(
                    sa.select(
                        models_v2.Port.id,
                        models_v2.Port.status,
                        models_v2.Port.admin_state_up,
                        standard_attr.StandardAttribute.updated_at,
                    )
                    .join(
                        standard_attr.StandardAttribute,
                        standard_attr.StandardAttribute.id == models_v2.Port.standard_attr_id,
                    )
                    .where(models_v2.Port.id.in_(chunk))
                ):
                    ports[r.id] = PortRow(
                        r.status, bool(r.admin_state_up), r.id in blocked, _epoch(r.updated_at)
                    )
        return bindings, ports, destinations


@db_api.retry_if_session_inactive()
def _remove_block(context: n_context.Context, port_id: str, host: str, binding_id: str) -> bool:
    """Remove our block if (host, binding_id) is still the port's binding; False if not."""
    with db_api.CONTEXT_WRITER.using(context):
        row = context.session.execute(
            sa.select(models.VppPortBinding.host, models.VppPortBinding.binding_id)
            .where(models.VppPortBinding.port_id == port_id)
            .with_for_update()
        ).one_or_none()
        if row is None or (row.host, row.binding_id) != (host, binding_id):
            return False
        # Not the ports row's lock: a rebind holds it before it locks ours.
        attr_id = context.session.execute(
            sa.select(models_v2.Port.standard_attr_id).where(models_v2.Port.id == port_id)
        ).scalar_one_or_none()
        if attr_id is None:
            return False
        context.session.execute(
            sa.delete(pb_model.ProvisioningBlock).where(
                pb_model.ProvisioningBlock.standard_attr_id == attr_id,
                pb_model.ProvisioningBlock.entity.in_(_OUR_ENTITIES),
            )
        )
        return True


def _status(ctx: n_context.Context, port_id: str) -> str | None:
    with db_api.CONTEXT_READER.using(ctx):
        return ctx.session.execute(
            sa.select(models_v2.Port.status).where(models_v2.Port.id == port_id)
        ).scalar_one_or_none()


class StateHandler:
    """What the state watcher does with a snapshot or events (no etcd, no threads)."""

    def __init__(self, keyspace: keys.KeySpace, registry: agents_mod.AgentRegistry) -> None:
        self.keys = keyspace
        self.agents = registry
        self.ports = PortReports()
        self.alive: dict[str, model.HostAlive] = {}
        self.physnets: dict[str, dict[str, str]] = {}
        #: (host, port id) -> the report etcd holds, for :meth:`recheck`
        self.reports: dict[tuple[str, str], model.PortState] = {}
        self._lock = threading.Lock()

    def on_load(self, snapshot: Mapping[str, bytes], revision: int) -> None:
        """A full view of ``/state/``: replace everything, re-evaluate every report."""
        alive: dict[str, model.HostAlive] = {}
        physnets: dict[str, dict[str, str]] = {}
        reports: list[Report] = []
        for key, value in snapshot.items():
            item = self._decode(key, value)
            if item is None:
                continue
            parsed, obj = item
            if parsed.kind == "alive":
                alive[parsed.host] = obj
            elif parsed.kind == "physnets":
                physnets.setdefault(parsed.host, {})[parsed.name] = obj.interface
            else:
                reports.append((parsed.host, parsed.name, obj))
        with self._lock:
            self.alive, self.physnets = alive, physnets
            self.reports = {(host, port_id): state for host, port_id, state in reports}
        LOG.info(
            "state watcher: loaded revision %d: %d live agents, %d port reports",
            revision,
            len(alive),
            len(reports),
        )
        for host, info in sorted(alive.items()):
            self._report_agent(host, info, start=False)
        self.agents.mark_down(self.agents.known_hosts() - set(alive))
        self.ports.evaluate(reports, load=True)

    def on_events(self, events: Iterable[Event]) -> None:
        """Apply changes in order; port reports of the batch are evaluated together."""
        reports: list[Report] = []
        fresh: set[tuple[str, str]] = set()
        changed_agents: dict[str, bool] = {}  # host -> newly alive?
        for event in events:
            try:
                parsed = self.keys.parse_state(event.key)
            except keys.BadKey:
                continue
            host = parsed.host
            if event.kind == "delete":
                if parsed.kind == "alive":
                    with self._lock:
                        self.alive.pop(host, None)
                    changed_agents.pop(host, None)
                    self.agents.mark_down([host])
                elif parsed.kind == "physnets":
                    with self._lock:
                        self.physnets.get(host, {}).pop(parsed.name, None)
                    if host in self.alive:
                        changed_agents.setdefault(host, False)
                elif parsed.kind == "ports":
                    with self._lock:
                        self.reports.pop((host, parsed.name), None)
                continue
            item = self._decode(event.key, event.value)
            if item is None:
                continue
            _, obj = item
            if parsed.kind == "alive":
                with self._lock:
                    new = host not in self.alive
                    self.alive[host] = obj
                changed_agents[host] = changed_agents.get(host, False) or new
            elif parsed.kind == "physnets":
                with self._lock:
                    self.physnets.setdefault(host, {})[parsed.name] = obj.interface
                if host in self.alive:
                    changed_agents.setdefault(host, False)
            else:
                with self._lock:
                    before = self.reports.get((host, parsed.name))
                    self.reports[(host, parsed.name)] = obj
                if obj.status == "active" and (
                    before is None
                    or before.status != "active"
                    or before.binding_id != obj.binding_id
                ):
                    fresh.add((host, parsed.name))  # just came up: news for the port
                reports.append((host, parsed.name, obj))
        for host, new in changed_agents.items():
            info = self.alive.get(host)
            if info is not None:
                self._report_agent(host, info, start=new)
        self.ports.evaluate(reports, fresh=fresh)

    def recheck(self) -> list[str]:
        """Publish again the completions this watcher owes; returns those port ids.

        Completion is best effort inside Neutron: a subscriber of
        PROVISIONING_COMPLETE that fails is only logged, and the port stays
        DOWN with its report already handled. The leader calls this on every
        heartbeat for the ports whose block it removed and which it has not
        seen ACTIVE since (:class:`PortReports`), while their report is still
        active for the same binding. A port that was ACTIVE once, is admin
        down, was rebound, or that anyone else set DOWN is not touched.
        """
        owed = self.ports.owed()
        if not owed:
            return []
        with self._lock:
            reports = [
                (host, port_id, state)
                for (host, port_id), state in self.reports.items()
                if owed.get(port_id) == (host, state.binding_id) and state.status == "active"
            ]
        self.ports.forget(set(owed) - {port_id for _, port_id, _ in reports})
        return self.ports.evaluate(reports)

    def live_hosts(self) -> list[str]:
        """Hosts whose alive key exists now."""
        with self._lock:
            return list(self.alive)

    def _report_agent(self, host: str, info: model.HostAlive, start: bool) -> None:
        try:
            self.agents.report(host, self.physnets.get(host, {}), info.agent_version, start)
        except Exception:  # noqa: BLE001 - a DB error for one host must not stop the rest
            LOG.exception("could not record the VPP agent of %s", host)

    def _decode(self, key: str, value: bytes | None) -> tuple[keys.StateKey, Any] | None:
        try:
            parsed = self.keys.parse_state(key)
        except keys.BadKey:
            LOG.warning("state watcher: ignoring unknown key %s", key)
            return None
        schema: type | None = {
            "alive": model.HostAlive,
            "physnets": model.HostPhysnet,
            "ports": model.PortState,
        }.get(parsed.kind)
        if schema is None:
            return None  # e.g. the agent's summary: for operators, not for this watcher
        try:
            obj: Any = model.decode(schema, key, value)
        except model.BadValue as exc:
            LOG.error("state watcher: %s", exc)
            return None
        if parsed.kind == "ports" and obj.port_id != parsed.name:
            LOG.error("state watcher: %s reports on port %s; ignored", key, obj.port_id)
            return None
        return parsed, obj


class StateWatcher:
    """The elected watcher of ``/state/``, with the agents' heartbeat loop."""

    def __init__(
        self,
        client: EtcdClient,
        keyspace: keys.KeySpace,
        *,
        identity: str | None = None,
        election_ttl: int = 5,
        registry: agents_mod.AgentRegistry | None = None,
    ) -> None:
        self.client = client
        self.keys = keyspace
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self.handler = StateHandler(keyspace, registry or agents_mod.AgentRegistry())
        self.election = Election(
            client,
            keyspace.election(ROLE),
            self.identity,
            ttl=election_ttl,
            on_elected=self._elected,
            on_lost=self._lost,
        )
        self._watcher: PrefixWatcher | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeats: threading.Thread | None = None

    def start(self) -> None:
        """Campaign; the watch runs only while leading."""
        self.election.start()
        if self._heartbeats is None:
            self._heartbeats = threading.Thread(
                target=self._heartbeat_loop, name="vpp-agent-heartbeats", daemon=True
            )
            self._heartbeats.start()

    def stop(self) -> None:
        """Stop watching and resign."""
        self._stop.set()
        self.election.stop()
        self._lost()

    @property
    def is_leader(self) -> bool:
        """True while this process runs the cloud's state watcher."""
        return self.election.is_leader

    def _elected(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = PrefixWatcher(
                    self.client,
                    self.keys.state_prefix(),
                    self.handler.on_load,
                    self.handler.on_events,
                    name="state-watcher",
                )
                self._watcher.start()

    def _lost(self) -> None:
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(agents_mod.heartbeat_interval()):
            if not self.is_leader:
                continue
            try:
                self.handler.agents.heartbeat(self.handler.live_hosts())
            except Exception:  # noqa: BLE001 - try again next interval
                LOG.exception("VPP agent heartbeat update failed")
            try:
                self.handler.recheck()
            except Exception:  # noqa: BLE001 - try again next interval
                LOG.exception("re-checking reported ports failed")
