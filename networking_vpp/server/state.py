"""The state watcher: agents' reports in etcd -> port status and agent rows in Neutron.

Elected (role ``state``): one in the whole cloud watches ``/state/``.

* ``/state/<host>/ports/<port_id>`` with status ``active``, the binding id the
  port has *now* and ``host`` = the port's current binding host completes the
  port's ``VPP`` provisioning block (outside any transaction), so the port goes
  ACTIVE and Nova gets ``network-vif-plugged``. A report about an earlier
  binding (another binding id, another host) is stale and ignored; an ``error``
  report is logged and the port stays DOWN.
* A report from a live-migration destination (a host and binding id in
  ``vpp_port_destinations``) tells Nova ``network-vif-plugged`` for that host,
  once, as ML2/OVS does when a device comes up on a host the port is not bound
  to yet; the port itself stays as it is until Nova activates the binding.
* ``/state/<host>/alive`` and ``physnets/*`` become the host's "VPP agent" row
  (:mod:`networking_vpp.server.agents`).

A full load (start, new term, or etcd compaction) re-evaluates every report, so
ports reported while no state watcher was running still complete, and so do
ports whose completion a dying watcher left half done (see ``PortReports._lookup``).
Between loads, the leader re-checks on every heartbeat the ports that are
reported but still not ACTIVE (:meth:`StateHandler.recheck`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2, provisioning_blocks
from neutron.db.models import provisioning_block as pb_model
from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.callbacks import resources
from neutron_lib.db import api as db_api

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.election import Election
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher
from networking_vpp.server import agents as agents_mod
from networking_vpp.server.journal import models

LOG = logging.getLogger(__name__)

ROLE = "state"
PROVISIONING_ENTITY = "VPP"
_CHUNK = 500

Report = tuple[str, str, model.PortState]  # (host, port_id, state)


def _up_not_active() -> tuple[Any, ...]:
    """Where-clauses for ports that are admin-up but not ACTIVE."""
    return (
        models_v2.Port.admin_state_up.is_(True),
        models_v2.Port.status != n_const.PORT_STATUS_ACTIVE,
    )


class PortReports:
    """Decides which agent reports complete which ports' provisioning."""

    def __init__(self) -> None:
        self.completed = 0
        self.stale = 0
        self.errors = 0
        self.destinations_plugged = 0
        #: (port id, host, binding id) of destinations Nova has been told about
        self._plugged: set[tuple[str, str, str]] = set()

    def evaluate(self, reports: Iterable[Report]) -> list[str]:
        """Complete provisioning for every current, active report; returns those port ids."""
        by_port: dict[str, list[tuple[str, model.PortState]]] = {}
        for host, port_id, state in reports:
            by_port.setdefault(port_id, []).append((host, state))
        if not by_port:
            return []
        bindings, waiting, destinations = self._lookup(sorted(by_port))
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
                    continue
                if port_id not in waiting:
                    continue  # already complete (e.g. the agent re-reported after a restart)
                self._complete(port_id, host)
                done.append(port_id)
        return done

    @staticmethod
    def not_active() -> set[str]:
        """Ports we bind that are up but not ACTIVE (usually few: those being plugged)."""
        ctx = n_context.get_admin_context()
        with db_api.CONTEXT_READER.using(ctx):
            return set(
                ctx.session.execute(
                    sa.select(models_v2.Port.id)
                    .join(models.VppPortBinding, models.VppPortBinding.port_id == models_v2.Port.id)
                    .where(*_up_not_active())
                ).scalars()
            )

    def _destination_plugged(self, port_id: str, host: str, binding_id: str) -> None:
        """Tell Nova the port is wired on its live-migration destination (once)."""
        if (port_id, host, binding_id) in self._plugged:
            return
        from neutron.plugins.ml2 import db as ml2_db
        from neutron_lib.plugins import directory

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

    def _complete(self, port_id: str, host: str) -> None:
        ctx = n_context.get_admin_context()
        try:
            provisioning_blocks.provisioning_complete(
                ctx, port_id, resources.PORT, PROVISIONING_ENTITY
            )
        except Exception:  # noqa: BLE001 - one bad port must not stop the others
            LOG.exception("provisioning_complete failed for port %s", port_id)
            return
        self.completed += 1
        LOG.info("port %s is programmed on %s: provisioning complete", port_id, host)

    @staticmethod
    def _lookup(
        port_ids: list[str],
    ) -> tuple[dict[str, tuple[str, str]], set[str], dict[tuple[str, str], str]]:
        """Current (host, binding_id) per port, the ports still waiting for us, and
        the binding id of each (port, destination host).

        A port waits while our provisioning block is on it, and also when it is
        up but not ACTIVE with no block left. Neutron removes the block and sets the
        status in two steps; if the process dies between them, the port stays DOWN with
        nothing to complete. ``provisioning_complete`` on a port without the block
        publishes the completion again (its subscribers must be idempotent),
        which finishes the job.
        """
        ctx = n_context.get_admin_context()
        bindings: dict[str, tuple[str, str]] = {}
        waiting: set[str] = set()
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
                waiting.update(
                    ctx.session.execute(
                        sa.select(models_v2.Port.id)
                        .join(
                            pb_model.ProvisioningBlock,
                            pb_model.ProvisioningBlock.standard_attr_id
                            == models_v2.Port.standard_attr_id,
                        )
                        .where(
                            models_v2.Port.id.in_(chunk),
                            pb_model.ProvisioningBlock.entity == PROVISIONING_ENTITY,
                        )
                    ).scalars()
                )
                waiting.update(
                    ctx.session.execute(
                        sa.select(models_v2.Port.id).where(
                            models_v2.Port.id.in_(chunk), *_up_not_active()
                        )
                    ).scalars()
                )
        return bindings, waiting, destinations


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
        self.ports.evaluate(reports)

    def on_events(self, events: Iterable[Event]) -> None:
        """Apply changes in order; port reports of the batch are evaluated together."""
        reports: list[Report] = []
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
                    self.reports[(host, parsed.name)] = obj
                reports.append((host, parsed.name, obj))
        for host, new in changed_agents.items():
            info = self.alive.get(host)
            if info is not None:
                self._report_agent(host, info, start=new)
        self.ports.evaluate(reports)

    def recheck(self) -> list[str]:
        """Complete ports that are reported but still not ACTIVE; returns those port ids.

        Completion is best effort inside Neutron: a subscriber of
        PROVISIONING_COMPLETE that fails is only logged, and the port stays
        DOWN with its report already handled. The leader calls this
        periodically, so no such port waits for the next full load.
        """
        stuck = self.ports.not_active()
        with self._lock:
            reports = [
                (host, port_id, state)
                for (host, port_id), state in self.reports.items()
                if port_id in stuck and state.status == "active"  # errors: logged once
            ]
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
