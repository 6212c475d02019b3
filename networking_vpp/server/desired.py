"""What etcd should hold, recomputed from Neutron's database alone (the resync's input).

Port bindings: every port the journal remembers (``vpp_port_bindings``: host and
binding id, which exist nowhere else) gets the value the journal's own code
(:meth:`PortJournal.binding_value`) builds from the port as ML2 returns it now,
its bound segment and its network's MTU. Where that differs from the value the
journal last wrote, the journal's memory is stale (a path that changed the port
without a precommit): the fix goes through the journal (:meth:`refresh_port`),
so the forwarder writes it in order with everything else.

``/global/`` keys come from :mod:`networking_vpp.server.secgroups` when that
module provides ``desired_secgroup_state``; without it the resync leaves
``/global/`` alone rather than delete what it cannot recompute.

ML2 and the journal's memory are updated in the same transaction, so they
agree unless someone edited the database by hand; where they do not, the
resync follows the journal's memory and says so (``problems``): it repairs
etcd, it does not second-guess Neutron's bindings.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2, segments_db
from neutron.plugins.ml2 import models as ml2_models
from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from neutron_lib.db import api as db_api
from neutron_lib.plugins.ml2 import api

from networking_vpp.common import keys, model
from networking_vpp.server import binding
from networking_vpp.server.journal import api as journal_api
from networking_vpp.server.journal import models
from networking_vpp.server.journal.destinations import DestinationJournal
from networking_vpp.server.journal.ports import (
    DRIVER_NAME,
    PortJournal,
    PortNotServable,
    bound_segment,
    lock_binding,
)

LOG = logging.getLogger(__name__)

SECGROUPS_MODULE = "networking_vpp.server.secgroups"
_CHUNK = 500

# (admin context, port ids) -> the ports as ML2 returns them (plugin.get_ports).
PortSource = Callable[[Any, list[str]], list[dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Scope:
    """Keys the resync is authoritative for: those below ``prefix`` that ``owns`` accepts.

    Keys it does not own (an HA state written by keepalived, GPE entries written by
    agents, kinds no server module recomputes yet) are never touched.
    """

    name: str
    prefix: str
    owns: Callable[[str], bool]


@dataclasses.dataclass(frozen=True)
class StaleMemory:
    """A port whose recomputed value differs from the one the journal last wrote."""

    port_id: str
    host: str
    stored: str


@dataclasses.dataclass
class DesiredState:
    """Every owned key and its value, as the database says now."""

    values: dict[str, str] = dataclasses.field(default_factory=dict)
    stale_memory: dict[str, StaleMemory] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)


class DesiredStateBuilder:
    """Recomputes the journal's keys from Neutron's tables."""

    def __init__(self, keyspace: keys.KeySpace, journal: PortJournal, ports: PortSource) -> None:
        self.keys = keyspace
        self.journal = journal
        self._get_ports = ports
        # Live-migration destinations, as the journal computes them; with no host
        # cache a legacy destination is kept only where the journal put one.
        self.destinations = DestinationJournal(
            keyspace, binding.VifPolicy.from_conf(_ml2_vpp_conf()), lambda: None
        )

    # --- what is covered ------------------------------------------------------------
    def scopes(self, host: str | None = None) -> tuple[list[Scope], list[str]]:
        """The scopes a resync covers, and what it cannot cover (with why)."""
        scopes = [self._ports_scope(host)]
        not_covered: list[str] = []
        if host is not None:
            not_covered.append("/global/: shared by every host, only a full resync covers it")
        elif _secgroup_source() is None:
            not_covered.append(
                f"/global/secgroups, /global/remote_groups: {SECGROUPS_MODULE}"
                ".desired_secgroup_state is not available"
            )
        else:
            for kind, prefix in (
                ("secgroups", self.keys.secgroups_prefix()),
                ("remote_groups", self.keys.remote_groups_prefix()),
            ):
                scopes.append(Scope(kind, prefix, self._global_owner(kind)))
        return scopes, not_covered

    def _ports_scope(self, host: str | None) -> Scope:
        def owns(key: str) -> bool:
            try:
                key_host, _ = self.keys.parse_port(key)
            except keys.BadKey:
                return False
            return host is None or key_host == host

        prefix = self.keys.nodes_prefix() if host is None else self.keys.host_ports_prefix(host)
        return Scope("ports", prefix, owns)

    def _global_owner(self, kind: str) -> Callable[[str], bool]:
        def owns(key: str) -> bool:
            try:
                return self.keys.parse_global(key)[0] == kind
            except keys.BadKey:
                return False

        return owns

    # --- the computation -------------------------------------------------------------
    def compute(self, context: Any, host: str | None = None) -> DesiredState:
        """Everything in one read transaction: one consistent snapshot of the database."""
        state = DesiredState()
        scopes, _ = self.scopes(host)
        with db_api.CONTEXT_READER.using(context):
            self._ports(context, state, host=host)
            if any(s.name != "ports" for s in scopes):
                self._globals(context, state, scopes)
        return state

    def _ports(
        self,
        context: Any,
        state: DesiredState,
        host: str | None = None,
        port_ids: Iterable[str] | None = None,
    ) -> None:
        session = context.session
        query = sa.select(models.VppPortBinding)
        if host is not None:
            query = query.where(models.VppPortBinding.host == host)
        if port_ids is not None:
            query = query.where(models.VppPortBinding.port_id.in_(list(port_ids)))
        memory = {row.port_id: row for row in session.execute(query).scalars()}
        ids = sorted(set(memory) | self._bound_by_us(session, host, port_ids))
        ports: dict[str, dict[str, Any]] = {}
        levels: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            ports.update((p["id"], p) for p in self._get_ports(context, chunk))
            for lvl in session.execute(
                sa.select(ml2_models.PortBindingLevel)
                .where(ml2_models.PortBindingLevel.port_id.in_(chunk))
                .order_by(ml2_models.PortBindingLevel.level)
            ).scalars():
                levels.setdefault((lvl.port_id, lvl.host), []).append((lvl.driver, lvl.segment_id))
        mtus = self._mtus(session, {p["network_id"] for p in ports.values()})
        segments: dict[str, dict[str, Any] | None] = {}

        for port_id in ids:
            port = ports.get(port_id)
            row = memory.get(port_id)
            segment = ml2_host = None
            if port is not None:
                ml2_host = port.get(portbindings.HOST_ID) or None
                expanded = [
                    {
                        api.BOUND_DRIVER: driver,
                        api.BOUND_SEGMENT: self._segment(context, segments, segment_id),
                    }
                    for driver, segment_id in levels.get((port_id, ml2_host or ""), [])
                ]
                segment = bound_segment(port.get(portbindings.VIF_TYPE), ml2_host, expanded)
            if row is None:
                state.problems.append(
                    f"port {port_id} is bound by {DRIVER_NAME} on {ml2_host} but the journal "
                    "has no record of it: it reaches etcd at its next update or rebind"
                )
                continue
            key = self.keys.port(row.host, port_id)
            if port is None or segment is None or ml2_host != row.host:
                where = f"bound on {ml2_host}" if segment is not None else "not bound by us"
                state.problems.append(
                    f"port {port_id}: the journal has it on {row.host}, ML2 has it {where}; "
                    "keeping the journal's value"
                )
                state.values[key] = row.value
                continue
            try:
                value = self.journal.binding_value(
                    row.host,
                    port,
                    segment,
                    mtus.get(port["network_id"], 0),
                    port[portbindings.VIF_TYPE],
                    port.get(portbindings.VIF_DETAILS) or {},
                    row.binding_id,
                )
            except PortNotServable as exc:
                state.problems.append(f"port {port_id}: {exc}; keeping the journal's value")
                state.values[key] = row.value
                continue
            state.values[key] = value
            if value != row.value:
                state.stale_memory[key] = StaleMemory(port_id, row.host, row.value)
        self._destinations(session, state, memory)

    def _destinations(self, session: Any, state: DesiredState, memory: Mapping[str, Any]) -> None:
        """Live-migration destinations of the ports in ``memory``, from ML2's bindings.

        Their binding ids exist only in the journal's memory: a destination the
        journal has not recorded is a problem to report, not a key to invent
        (the journal writes it at the port's next update or binding change).
        """
        ids = sorted(memory)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = {
                (r.port_id, r.host): r
                for r in session.execute(
                    sa.select(models.VppPortDestination).where(
                        models.VppPortDestination.port_id.in_(chunk)
                    )
                ).scalars()
            }
            for port_id in sorted(self.destinations.candidates(session, chunk)):
                row = memory[port_id]
                active = state.values.get(self.keys.port(row.host, port_id), row.value)
                known = {host for (pid, host) in rows if pid == port_id}
                wanted = self.destinations.wanted(session, port_id, row.host, active, known)
                for host, value in wanted.items():
                    dest = rows.get((port_id, host))
                    if dest is None:
                        state.problems.append(
                            f"port {port_id} is prepared on {host} by ML2 but the journal "
                            "has no record of it: it reaches etcd at the port's next update"
                        )
                        continue
                    state.values[self.keys.port(host, port_id)] = model.encode(
                        model.replace(value, binding_id=dest.binding_id)
                    )

    @staticmethod
    def _bound_by_us(session: Any, host: str | None, port_ids: Iterable[str] | None) -> set[str]:
        """Ports whose active binding has a level by our driver (journaled or not)."""
        binding, level = ml2_models.PortBinding, ml2_models.PortBindingLevel
        query = (
            sa.select(level.port_id)
            .join(binding, sa.and_(binding.port_id == level.port_id, binding.host == level.host))
            .where(level.driver == DRIVER_NAME, binding.status == n_const.ACTIVE)
        )
        if host is not None:
            query = query.where(binding.host == host)
        if port_ids is not None:
            query = query.where(level.port_id.in_(list(port_ids)))
        return set(session.execute(query).scalars())

    @staticmethod
    def _mtus(session: Any, network_ids: set[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        ids = sorted(network_ids)
        for start in range(0, len(ids), _CHUNK):
            for net_id, mtu in session.execute(
                sa.select(models_v2.Network.id, models_v2.Network.mtu).where(
                    models_v2.Network.id.in_(ids[start : start + _CHUNK])
                )
            ):
                out[net_id] = int(mtu or 0)  # as PortJournal reads it
        return out

    @staticmethod
    def _segment(
        context: Any, cache: dict[str, dict[str, Any] | None], segment_id: str | None
    ) -> dict[str, Any] | None:
        # The lookup ML2's PortContext falls back on to expand a binding level.
        if segment_id is None:
            return None
        if segment_id not in cache:
            cache[segment_id] = segments_db.get_segment_by_id(context, segment_id)
        return cache[segment_id]

    def _globals(self, context: Any, state: DesiredState, scopes: list[Scope]) -> None:
        source = _secgroup_source()
        if source is None:
            return
        owners = [s for s in scopes if s.name != "ports"]
        # It reads the configured prefix unless told ours (tests use several).
        if "keyspace" in inspect.signature(source).parameters:
            computed = source(context, keyspace=self.keys)
        else:
            computed = source(context)
        for key, value in computed.items():
            if any(key.startswith(s.prefix) and s.owns(key) for s in owners):
                state.values[key] = value
            else:
                state.problems.append(f"{SECGROUPS_MODULE} computed {key}, not a key it owns")

    # --- repairing the journal's memory --------------------------------------------------
    def refresh_port(self, context: Any, port_id: str, seen: str) -> bool:
        """Journal the recomputed value of a port whose stored value was ``seen``.

        Returns False (and writes nothing) if a Neutron transaction changed the port's
        row since: its own journal row then carries the newer value.
        """
        with db_api.CONTEXT_WRITER.using(context):
            session = context.session
            # The same lock the journal's precommits take: a port update either
            # committed before (and changed the row: we back off) or waits for us.
            row = lock_binding(session, port_id)
            if row is None or row.value != seen:
                return False
            # Recompute under the lock, so the value reflects every commit before it.
            state = DesiredState()
            self._ports(context, state, port_ids=[port_id])
            key = self.keys.port(row.host, port_id)
            value = state.values.get(key)
            if key not in state.stale_memory or value is None:
                return False
            row.value = value
            journal_api.record(session, key, value)
        LOG.warning(
            "resync: the journal's last value of %s was stale; journaled the value "
            "recomputed from the database",
            key,
        )
        return True


def _ml2_vpp_conf() -> Any:
    from oslo_config import cfg

    from networking_vpp.server import config as server_config

    server_config.register_opts(cfg.CONF)
    return cfg.CONF.ml2_vpp


def _secgroup_source() -> Callable[..., Mapping[str, str]] | None:
    """``secgroups.desired_secgroup_state`` if that module exists and provides it."""
    module = sys.modules.get(SECGROUPS_MODULE)
    if module is None:
        if importlib.util.find_spec(SECGROUPS_MODULE) is None:
            return None  # not written yet: /global/ is left alone
        module = importlib.import_module(SECGROUPS_MODULE)
    return getattr(module, "desired_secgroup_state", None)


def plugin_port_source() -> PortSource:
    """Ports from the loaded core plugin, exactly as ML2 hands them to the precommits."""
    from neutron_lib.plugins import directory

    def get_ports(context: Any, port_ids: list[str]) -> list[dict[str, Any]]:
        plugin = directory.get_plugin()
        return list(plugin.get_ports(context, filters={"id": port_ids}))

    return get_ports
