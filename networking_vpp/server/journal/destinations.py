"""Live migration: the port's key on its destination host while the guest still runs on the source.

Nova prepares a destination in one of two ways:

* **multiple port bindings** (``POST /v2.0/ports/{id}/bindings``): an INACTIVE
  binding on the destination host. ML2 calls our ``bind_port`` for it but runs
  no mechanism-driver precommit; ``activate`` later swaps the two bindings
  (with an ``update_port_precommit``) and ``DELETE .../bindings/{host}`` drops
  one (an aborted migration, or the source's clean-up) with no driver call at all.
* **legacy**: ``binding:profile`` ``{"migrating_to": <host>}`` on the active
  binding, then ``binding:host_id`` set to that host once the guest has moved.

ML2/OVS programs the destination as soon as Nova plugs the VIF there (its agent
asks for the details of whichever binding its host has) and tells Nova
"plugged" from that host's ``update_device_up``. We do the same through the
journal: each destination host gets the port's key (the active value with the
destination's own binding id and vif), its agent programs the port and reports
it, and the state watcher tells Nova (:mod:`networking_vpp.server.state`).

Since ML2 gives no precommit for binding rows, the journal follows the rows
themselves (:mod:`.commit_hooks`): just before a transaction that added,
changed or deleted a port's ``ml2_port_bindings`` rows commits, the port's
destinations are recomputed and the difference journaled, in that transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2
from neutron.db.models import segment as segment_model
from neutron.plugins.ml2 import models as ml2_models
from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from oslo_serialization import jsonutils

from networking_vpp.common import keys, model
from networking_vpp.server import binding
from networking_vpp.server.hosts import HostCache
from networking_vpp.server.journal import api as journal
from networking_vpp.server.journal import models
from networking_vpp.server.journal.commit_hooks import CommitHooks
from networking_vpp.server.journal.ports import lock_binding

LOG = logging.getLogger(__name__)

DRIVER_NAME = "vpp"
MIGRATING_TO = "migrating_to"  # the legacy flow's key in binding:profile
STAGE = "destinations"  # the commit hook's stage


@dataclasses.dataclass(frozen=True)
class Destination:
    """What a destination host needs: the vif and the segment it is bound with there."""

    host: str
    vif_type: str
    vif_details: dict[str, Any]
    network_type: str
    physnet: str
    segmentation_id: int | None


class DestinationJournal:
    """Keeps ``vpp_port_destinations`` and the destination keys in step with ML2's bindings."""

    def __init__(
        self,
        keyspace: keys.KeySpace,
        policy: binding.VifPolicy,
        hosts: Callable[[], HostCache | None],
    ) -> None:
        self._keys = keyspace
        self._policy = policy
        self._hosts = hosts  # the driver's cache, read when needed; None: a resync's view

    # --- hooks ------------------------------------------------------------------------
    def hook(self, hooks: CommitHooks) -> None:
        """Recompute destinations before commit wherever ML2's binding rows change."""
        hooks.add(STAGE, (ml2_models.PortBinding,), self.reconcile_ports)

    @staticmethod
    def note(session: Any, port_ids: Iterable[str]) -> None:
        """Recompute these ports' destinations before ``session`` commits."""
        CommitHooks.note(session, STAGE, port_ids)

    def network_changed(self, session: Any, network_id: str) -> None:
        """A network change (MTU) may change every destination of its ports."""
        self.note(
            session,
            session.execute(
                sa.select(models.VppPortDestination.port_id)
                .join(models_v2.Port, models_v2.Port.id == models.VppPortDestination.port_id)
                .where(models_v2.Port.network_id == network_id)
            ).scalars(),
        )

    def reconcile_ports(self, session: Any, port_ids: list[str]) -> bool:
        """The commit hook's stage: reconcile each port; whether rows were written."""
        wrote = False
        for port_id in port_ids:
            wrote = self.reconcile(session, port_id) or wrote
        return wrote

    # --- the journal --------------------------------------------------------------------
    def reconcile(self, session: Any, port_id: str) -> bool:
        """Journal the difference between the port's destinations and what was journaled.

        Locks the port's ``vpp_port_bindings`` row first, as every writer of the
        port's keys does, so journal order is commit order for each key.
        Returns whether it wrote rows.
        """
        active = lock_binding(session, port_id)
        rows = {
            row.host: row
            for row in session.execute(
                sa.select(models.VppPortDestination)
                .where(models.VppPortDestination.port_id == port_id)
                .order_by(models.VppPortDestination.host)
                .with_for_update()
            ).scalars()
        }
        wanted = (
            {}
            if active is None
            else self.wanted(session, port_id, active.host, active.value, set(rows))
        )
        wrote = False
        for host, row in rows.items():
            if host in wanted:
                continue
            if active is None and self._being_bound(session, port_id, host):
                # The legacy flow's move: ML2 cleared the binding and binds the
                # port on this host next, whose precommit takes the key over.
                # Deleting it now would cut off the guest that runs there.
                continue
            session.delete(row)
            if active is not None and active.host == host:
                # Activated: the key is the active binding's now (its precommit wrote it).
                LOG.info("journal: port %s destination %s is now its binding", port_id, host)
                continue
            journal.record(session, self._keys.port(host, port_id), None)
            LOG.info("journal: port %s no longer prepared on %s", port_id, host)
            wrote = True
        for host, value in wanted.items():
            row = rows.get(host)
            binding_id = row.binding_id if row is not None else str(uuid.uuid4())
            encoded = model.encode(model.replace(value, binding_id=binding_id))
            if row is None:
                session.add(
                    models.VppPortDestination(
                        port_id=port_id, host=host, binding_id=binding_id, value=encoded
                    )
                )
                LOG.info(
                    "journal: port %s prepared on destination %s (binding %s)",
                    port_id,
                    host,
                    binding_id,
                )
            elif row.value != encoded:
                row.value = encoded
            else:
                continue
            journal.record(session, self._keys.port(host, port_id), encoded)
            wrote = True
        return wrote

    @staticmethod
    def _being_bound(session: Any, port_id: str, host: str) -> bool:
        """Whether ML2's active binding is on ``host`` and not bound yet (a bind follows)."""
        pb = ml2_models.PortBinding
        vif_type = session.execute(
            sa.select(pb.vif_type).where(
                pb.port_id == port_id, pb.host == host, pb.status == n_const.ACTIVE
            )
        ).scalar_one_or_none()
        return vif_type == portbindings.VIF_TYPE_UNBOUND

    def deleted(self, session: Any, port_id: str) -> bool:
        """delete_port_precommit: the destinations' keys go with the port."""
        rows = (
            session.execute(
                sa.select(models.VppPortDestination)
                .where(models.VppPortDestination.port_id == port_id)
                .order_by(models.VppPortDestination.host)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        for row in rows:
            journal.record(session, self._keys.port(row.host, port_id), None)
            session.delete(row)
        return bool(rows)

    # --- what the destinations should be ----------------------------------------------
    def wanted(
        self, session: Any, port_id: str, active_host: str, active_value: str, known: set[str]
    ) -> dict[str, model.PortBinding]:
        """Destination host -> its value (binding id not yet set), from ML2's rows.

        A destination's value is the active one with the destination's vif and
        segment: the port's addresses, groups and MTU do not depend on the host.
        Only ports with an active binding of ours have destinations (a port bound
        by another driver migrating to a VPP host is bound there by ``activate``).
        ``known`` are the hosts already journaled as destinations.
        """
        base = model.decode(model.PortBinding, self._keys.port(active_host, port_id), active_value)
        out: dict[str, model.PortBinding] = {}
        for dest in self.destinations(session, port_id, active_host, base, known):
            value = self._value(base, dest)
            if value is not None:
                out[dest.host] = value
        return out

    @staticmethod
    def candidates(session: Any, port_ids: list[str]) -> set[str]:
        """Which of ``port_ids`` may have destinations (for the resync)."""
        pb = ml2_models.PortBinding
        found = set(
            session.execute(
                sa.select(models.VppPortDestination.port_id).where(
                    models.VppPortDestination.port_id.in_(port_ids)
                )
            ).scalars()
        )
        found.update(
            session.execute(
                sa.select(pb.port_id).where(
                    pb.port_id.in_(port_ids),
                    sa.or_(pb.status != n_const.ACTIVE, pb.profile.contains(MIGRATING_TO)),
                )
            ).scalars()
        )
        return found

    def destinations(
        self,
        session: Any,
        port_id: str,
        active_host: str,
        base: model.PortBinding,
        known: set[str],
    ) -> list[Destination]:
        """Hosts the port is being prepared on, from ML2's binding rows."""
        bindings = session.execute(
            sa.select(ml2_models.PortBinding).where(ml2_models.PortBinding.port_id == port_id)
        ).scalars()
        out: dict[str, Destination] = {}
        migrating_to = None
        for row in bindings:
            if row.status == n_const.ACTIVE:
                migrating_to = _profile(row.profile).get(MIGRATING_TO)
                continue
            if row.host == active_host or row.vif_type not in binding.VIF_TYPES:
                continue  # a source left INACTIVE by activate is unbound: not ours
            found = self._inactive(session, row)
            if found is not None:
                out[row.host] = found
        if migrating_to and migrating_to != active_host and migrating_to not in out:
            legacy = self._legacy(port_id, migrating_to, base, known)
            if legacy is not None:
                out[migrating_to] = legacy
        return [out[host] for host in sorted(out)]

    def _inactive(self, session: Any, row: Any) -> Destination | None:
        """An INACTIVE binding that our driver bound: the segment from its last level."""
        level = session.execute(
            sa.select(ml2_models.PortBindingLevel)
            .where(
                ml2_models.PortBindingLevel.port_id == row.port_id,
                ml2_models.PortBindingLevel.host == row.host,
            )
            .order_by(ml2_models.PortBindingLevel.level.desc())
            .limit(1)
        ).scalar_one_or_none()
        if level is None or level.driver != DRIVER_NAME or not level.segment_id:
            return None
        segment = session.execute(
            sa.select(segment_model.NetworkSegment).where(
                segment_model.NetworkSegment.id == level.segment_id
            )
        ).scalar_one_or_none()
        if segment is None:
            return None
        return Destination(
            host=row.host,
            vif_type=row.vif_type,
            vif_details=_profile(row.vif_details),
            network_type=segment.network_type,
            physnet=segment.physical_network or "",
            segmentation_id=segment.segmentation_id,
        )

    def _legacy(
        self, port_id: str, host: str, base: model.PortBinding, known: set[str]
    ) -> Destination | None:
        """``migrating_to``: the active segment, the vif our policy gives that host.

        Prepared only on a host whose agent serves the physnet, as a bind would
        be; a resync (no host cache) keeps what the journal decided.
        """
        hosts = self._hosts()
        if hosts is None:
            if host not in known:
                return None
        elif not hosts.is_alive(host) or base.physnet not in hosts.physnets(host):
            LOG.warning(
                "vpp: port %s is migrating to %s, which has no live vpp-agent serving "
                "physnet %s: not prepared there",
                port_id,
                host,
                base.physnet,
            )
            return None
        vif_type = self._policy.vif_type({"device_owner": base.device_owner}, host)
        return Destination(
            host=host,
            vif_type=vif_type,
            vif_details=self._policy.vif_details(vif_type, port_id),
            network_type=base.network_type,
            physnet=base.physnet,
            segmentation_id=base.segmentation_id,
        )

    def _value(self, base: model.PortBinding, dest: Destination) -> model.PortBinding | None:
        vhostuser = tap = None
        if dest.vif_type == portbindings.VIF_TYPE_VHOST_USER:
            socket = dest.vif_details.get(portbindings.VHOST_USER_SOCKET)
            if not socket:
                return None
            vhostuser = model.VhostUser(socket=socket, mode=self._policy.vpp_vhostuser_role)  # type: ignore[arg-type]
        else:
            tap = model.Tap(ifname=binding.tap_ifname(base.port_id))
        value = model.replace(
            base,
            binding_type=dest.vif_type,  # type: ignore[arg-type]
            vhostuser=vhostuser,
            tap=tap,
            network_type=dest.network_type,  # type: ignore[arg-type]
            physnet=dest.physnet,
            segmentation_id=(
                dest.segmentation_id if dest.network_type == n_const.TYPE_VLAN else None
            ),
        )
        problem = value.check()
        if problem:
            LOG.error("vpp: port %s cannot be prepared on %s: %s", base.port_id, dest.host, problem)
            return None
        return value


def _profile(raw: Any) -> dict[str, Any]:
    """A binding's JSON column (profile, vif_details) as a dict; junk is empty."""
    if isinstance(raw, dict):
        return raw
    try:
        loaded = jsonutils.loads(raw) if raw else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
