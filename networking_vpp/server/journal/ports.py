"""Journal rows for port bindings, written in the precommit of Neutron's transaction.

The ``vpp_port_bindings`` row of a port is the journal's memory of what it told
etcd: the host whose key holds the port, the binding id, and the value. Every
precommit compares what the port should look like now with that row and
appends the difference (a delete on the old host, a put on the new one, or a
put of a changed value). Working from our own row rather than from ML2's
``context.original`` keeps this correct on every path ML2 has (bind commit,
rebind, live-migration activate, status-only updates).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2
from neutron_lib import exceptions as n_exc
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api

from networking_vpp.common import keys, model
from networking_vpp.server import binding
from networking_vpp.server.journal import api as journal
from networking_vpp.server.journal import models

LOG = logging.getLogger(__name__)

DRIVER_NAME = "vpp"  # the entry point name ML2 knows us by
_NOT_BOUND = (portbindings.VIF_TYPE_UNBOUND, portbindings.VIF_TYPE_BINDING_FAILED)


def bound_segment(
    vif_type: str | None, host: str | None, levels: Sequence[Mapping[str, Any]] | None
) -> dict[str, Any] | None:
    """The segment the vpp driver bound a port to, or None if the port is not ours/bound.

    ``levels`` are ML2's binding levels (``api.BOUND_DRIVER``/``api.BOUND_SEGMENT``
    dicts, top level first), from a PortContext or rebuilt from the database.
    """
    if vif_type not in binding.VIF_TYPES or not host:
        return None
    if not levels or levels[-1][api.BOUND_DRIVER] != DRIVER_NAME:
        return None
    return levels[-1][api.BOUND_SEGMENT]


def lock_binding(session: Any, port_id: str) -> Any:
    """Lock the port's ``vpp_port_bindings`` row (``SELECT ... FOR UPDATE``); it, or None.

    The owner row of every key of the port (``/nodes/<host>/ports/<id>``, on its
    host and on live-migration destinations): each writer of those keys calls
    this before it journals, and holds the lock until its transaction commits,
    so the port's journal rows are in commit order (the rule in
    :func:`networking_vpp.server.journal.api.record`). No row: only the gap
    where it would be is locked, but two writers that both create the row
    cannot both commit (the second waits for the first's insert, then fails on
    the duplicate key or is picked as a deadlock victim), so only one of them
    commits its journal rows.
    """
    return session.execute(
        sa.select(models.VppPortBinding)
        .where(models.VppPortBinding.port_id == port_id)
        .with_for_update()
    ).scalar_one_or_none()


class PortNotServable(n_exc.BadRequest):
    """The port's binding cannot be expressed in etcd; the request fails."""


@dataclasses.dataclass(frozen=True)
class PortChange:
    """What a precommit wrote, for the caller (provisioning block, kick)."""

    wrote: bool = False
    new_binding_id: str | None = None  # set when the port was freshly bound to a host


class PortJournal:
    """Turns port and network precommits into journal rows."""

    def __init__(self, keyspace: keys.KeySpace, vhostuser_role: str) -> None:
        self._keys = keyspace
        self._role = vhostuser_role

    # --- ports ----------------------------------------------------------------
    def port_changed(self, context: api.PortContext) -> PortChange:
        """update_port_precommit: journal whatever changed about the port's binding."""
        session = context.plugin_context.session
        port = context.current
        port_id = port["id"]
        bound = self._bound_segment(context)
        mtu = self._network_mtu(session, port["network_id"]) if bound else 0
        # Lock our row so concurrent updates of this port (or of its network's MTU)
        # serialise and each computes from the other's committed result.
        row = lock_binding(session, port_id)

        if (
            row is not None
            and bound is None
            and row.host == context.host
            and context.vif_type == portbindings.VIF_TYPE_UNBOUND
        ):
            # ML2 cleared the binding to bind the port again on the same host (a
            # binding:profile or vnic_type change, the legacy migration's
            # migrating_to). It commits the new binding, or binding_failed, at
            # once with another precommit: until then the key stays, so the
            # port's VM keeps its network.
            LOG.debug("journal: port %s being rebound on %s", port_id, row.host)
            return PortChange()

        wrote = False
        if row is not None and (bound is None or row.host != context.host):
            journal.record(session, self._keys.port(row.host, port_id), None)
            LOG.info("journal: port %s unbound from host %s", port_id, row.host)
            session.delete(row)
            row = None
            wrote = True
        if bound is None:
            return PortChange(wrote=wrote)

        # A binding ML2 committed just now (a rebind on the same host included)
        # gets a fresh binding id and a provisioning block: ML2 set the port DOWN.
        new = row is None or context.original_vif_type in _NOT_BOUND
        binding_id = str(uuid.uuid4()) if new else row.binding_id
        value = self.binding_value(
            context.host, port, bound, mtu, context.vif_type, context.vif_details, binding_id
        )
        if row is None:
            session.add(
                models.VppPortBinding(
                    port_id=port_id, host=context.host, binding_id=binding_id, value=value
                )
            )
        elif row.value != value:
            row.binding_id, row.value = binding_id, value
            if not new:
                LOG.debug("journal: port %s on host %s changed", port_id, context.host)
        else:
            return PortChange(wrote=wrote)  # e.g. a status-only update
        if new:
            LOG.info(
                "journal: port %s bound to host %s (binding %s)", port_id, context.host, binding_id
            )
        journal.record(session, self._keys.port(context.host, port_id), value)
        return PortChange(wrote=True, new_binding_id=binding_id if new else None)

    def port_deleted(self, context: api.PortContext) -> bool:
        """delete_port_precommit: delete the port's key, if the journal put one."""
        session = context.plugin_context.session
        port_id = context.current["id"]
        row = lock_binding(session, port_id)
        if row is None:
            return False
        journal.record(session, self._keys.port(row.host, port_id), None)
        session.delete(row)
        LOG.info("journal: port %s deleted from host %s", port_id, row.host)
        return True

    # --- networks -------------------------------------------------------------
    def network_changed(self, context: api.NetworkContext) -> int:
        """update_network_precommit: rewrite every bound port when the MTU changed."""
        new_mtu = context.current.get("mtu")
        if not context.original or context.original.get("mtu") == new_mtu:
            return 0
        session = context._plugin_context.session  # NetworkContext has no public accessor
        rows = (
            session.execute(
                sa.select(models.VppPortBinding)
                .join(models_v2.Port, models_v2.Port.id == models.VppPortBinding.port_id)
                .where(models_v2.Port.network_id == context.current["id"])
                .order_by(models.VppPortBinding.port_id)  # one lock order for everyone
                .with_for_update()
            )
            .scalars()
            .all()
        )
        for row in rows:
            key = self._keys.port(row.host, row.port_id)
            old = model.decode(model.PortBinding, key, row.value)
            value = self.encode_value(row.host, model.replace(old, mtu=int(new_mtu)))
            if value != row.value:
                row.value = value
                journal.record(session, key, value)
        LOG.info(
            "journal: network %s MTU %s -> %s, %d bound ports rewritten",
            context.current["id"],
            context.original.get("mtu"),
            new_mtu,
            len(rows),
        )
        return len(rows)

    # --- the value (shared with the full resync, server/desired.py) -----------
    def binding_value(
        self,
        host: str,
        port: Mapping[str, Any],
        segment: Mapping[str, Any],
        mtu: int,
        vif_type: str,
        vif_details: Mapping[str, Any],
        binding_id: str,
    ) -> str:
        """The encoded ``/nodes/<host>/ports/<id>`` value; raises :class:`PortNotServable`."""
        try:
            desired = binding.port_value(
                port, segment, mtu, vif_type, vif_details, binding_id, self._role
            )
        except binding.UnservablePort as exc:
            raise PortNotServable(resource="port", msg=str(exc)) from exc
        return self.encode_value(host, desired)

    # --- helpers --------------------------------------------------------------
    def _bound_segment(self, context: api.PortContext) -> dict[str, Any] | None:
        """The segment we bound the port to, or None if the port is not ours/bound."""
        return bound_segment(context.vif_type, context.host, context.binding_levels)

    @staticmethod
    def _network_mtu(session: Any, network_id: str) -> int:
        # A shared-lock read sees the latest committed MTU and waits for a network
        # update in flight, whose precommit rewrites this port too: without it, a
        # port update racing an MTU change could journal the old MTU last.
        mtu = session.execute(
            sa.select(models_v2.Network.mtu)
            .where(models_v2.Network.id == network_id)
            .with_for_update(read=True)
        ).scalar()
        return int(mtu or 0)

    @staticmethod
    def encode_value(host: str, value: model.PortBinding) -> str:
        problem = value.check()
        if problem:
            raise PortNotServable(resource="port", msg=f"{value.port_id} on {host}: {problem}")
        encoded = model.encode(value)
        if len(encoded.encode()) > model.MAX_VALUE_BYTES:
            raise PortNotServable(
                resource="port",
                msg=f"{value.port_id}: binding value is {len(encoded)} bytes, over etcd's "
                f"{model.MAX_VALUE_BYTES} (too many fixed IPs or address pairs?)",
            )
        return encoded

    # --- subnets (a subscription of the mechanism driver) -----------------------
    def subnet_addresses_removed(self, session: Any, subnet_id: str) -> list[str]:
        """Before a subnet's allocations are deleted: drop them from bound ports' values.

        Deleting an IPv6 auto-address subnet takes its address from every port
        of the network in the subnet's own transaction, with no port update, so
        this rewrites the values (the agent's MACIP anti-spoofing) there.
        Returns the ids of the ports whose values were rewritten.
        """
        ips = models_v2.IPAllocation
        rows = (
            session.execute(
                sa.select(models.VppPortBinding)
                .where(
                    models.VppPortBinding.port_id.in_(
                        sa.select(ips.port_id).where(ips.subnet_id == subnet_id)
                    )
                )
                .order_by(models.VppPortBinding.port_id)  # one lock order for everyone
                .with_for_update()
            )
            .scalars()
            .all()
        )
        rewritten: list[str] = []
        for row in rows:
            key = self._keys.port(row.host, row.port_id)
            old = model.decode(model.PortBinding, key, row.value)
            kept = tuple(ip for ip in old.fixed_ips if ip.subnet_id != subnet_id)
            if kept == old.fixed_ips:
                continue
            row.value = self.encode_value(row.host, model.replace(old, fixed_ips=kept))
            journal.record(session, key, row.value)
            rewritten.append(row.port_id)
        if rewritten:
            LOG.info(
                "journal: subnet %s deleted, %d bound ports rewritten", subnet_id, len(rewritten)
            )
        return rewritten
