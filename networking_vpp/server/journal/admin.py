"""The operator's view of the journal: what waits, what was set aside, and
putting a set-aside row back or dropping it (``networking-vpp journal``).

A dead row (``vpp_journal_dead``) is a write etcd refused for good; etcd kept
the key's previous value. Replaying it appends it to ``vpp_journal`` again, with
a new id: after everything pending, which is right only if it is still the
latest word on its key. Under the key's owner lock (the ordering rule of
:func:`networking_vpp.server.journal.api.record`, so no writer of the key can
commit meanwhile) a replay is refused when

* a row of the key is pending (it is newer), or a newer dead row exists:
  that one carries the later value;
* the key's latest journaled value is recorded (a port's binding or live
  migration destination, a remote-group member: the tables the writers diff
  against) and is not the dead row's value: a newer write was forwarded since;
* the latest value is not recorded (a security group's rules): there is no
  telling, unless the operator says ``force``. ``networking-vpp resync``
  re-derives such a key from Neutron's database; then drop the row.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import sqlalchemy as sa

from networking_vpp.common import keys as k
from networking_vpp.server.journal import api, models


class Refused(Exception):
    """A replay or drop that is not done, and why."""


@dataclasses.dataclass(frozen=True)
class DeadRow:
    """One set-aside row, as the operator sees it."""

    id: int
    key: str
    created_at: datetime.datetime
    failed_at: datetime.datetime
    reason: str


@dataclasses.dataclass(frozen=True)
class Overview:
    """The journal now: pending rows (the oldest few) and dead ones."""

    pending: int
    oldest: list[api.JournalRow]  # oldest first, at most the number asked for
    dead: list[DeadRow]
    now: datetime.datetime  # naive UTC, as the tables store time

    @property
    def oldest_age(self) -> float | None:
        """Seconds the oldest pending row has waited (None: nothing pending)."""
        if not self.oldest or self.oldest[0].created_at is None:
            return None
        return max(0.0, (self.now - self.oldest[0].created_at).total_seconds())


class JournalAdmin:
    """Reads and repairs the journal tables through a ``session_scope`` factory."""

    def __init__(self, session_scope: api.SessionScope, keyspace: k.KeySpace) -> None:
        self._scope = session_scope
        self._keys = keyspace

    def overview(self, oldest: int = 5) -> Overview:
        """Pending count, the ``oldest`` oldest pending rows, every dead row."""
        j, d = models.VppJournal, models.VppJournalDead
        with self._scope() as session:
            count = int(session.execute(sa.select(sa.func.count(j.id))).scalar())
            rows = session.execute(
                sa.select(j.id, j.key, j.value, j.created_at).order_by(j.id).limit(oldest)
            ).all()
            dead = session.execute(
                sa.select(d.id, d.key, d.created_at, d.failed_at, d.reason).order_by(d.id)
            ).all()
        return Overview(
            pending=count,
            oldest=[api.JournalRow(r.id, r.key, r.value, r.created_at) for r in rows],
            dead=[DeadRow(r.id, r.key, r.created_at, r.failed_at, r.reason) for r in dead],
            now=models._utcnow(),
        )

    def drop(self, row_id: int) -> DeadRow:
        """Forget a dead row (etcd keeps what it has for the key); returns it."""
        with self._scope() as session:
            row = self._dead(session, row_id)
            session.delete(row)
            return DeadRow(row.id, row.key, row.created_at, row.failed_at, row.reason)

    def replay(self, row_id: int, force: bool = False) -> int:
        """Move a dead row back into the journal; returns its new id.

        Raises :class:`Refused` when the row is not the latest word on its key
        (see the module's docstring); ``force`` skips only the check that
        needs a record of the latest value, never the newer-row checks.
        """
        with self._scope() as session:
            row = self._dead(session, row_id)
            recorded = self._lock_and_read_latest(session, row.key)
            j, d = models.VppJournal, models.VppJournalDead
            # Any pending row of the key is newer: the forwarder set this one
            # aside as the last of its key in a batch, and deleted the batch.
            newer = session.execute(sa.select(j.id).where(j.key == row.key).limit(1)).scalar()
            if newer is not None:
                raise Refused(
                    f"row {row_id}: a newer row of {row.key} is pending (id {newer}); "
                    "it carries the later value: drop this one"
                )
            newer = session.execute(
                sa.select(d.id).where(d.key == row.key, d.id > row.id).limit(1)
            ).scalar()
            if newer is not None:
                raise Refused(f"row {row_id}: dead row {newer} is a newer write of {row.key}")
            if recorded is _UNRECORDED:
                if not force:
                    raise Refused(
                        f"row {row_id}: no record of the latest value of {row.key}, so no "
                        "telling whether a newer one reached etcd since; run "
                        "`networking-vpp resync` to re-derive it from Neutron's database "
                        "and drop this row, or replay it with --force"
                    )
            elif recorded != row.value:
                raise Refused(
                    f"row {row_id}: {row.key} was written with a newer value since "
                    "(the journal's record differs): drop this row"
                )
            api.record(session, row.key, row.value)
            session.delete(row)
            session.flush()
            return int(
                session.execute(sa.select(sa.func.max(j.id)).where(j.key == row.key)).scalar_one()
            )

    # --- helpers -----------------------------------------------------------------
    @staticmethod
    def _dead(session: Any, row_id: int) -> Any:
        row = session.execute(
            sa.select(models.VppJournalDead)
            .where(models.VppJournalDead.id == row_id)
            .with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise Refused(f"no dead row {row_id}")
        return row

    def _lock_and_read_latest(self, session: Any, key: str) -> str | None | object:
        """Take the key's owner lock; the value the journal last wrote for it
        (None: a delete, the key is not wanted), or ``_UNRECORDED``."""
        try:
            host, port_id = self._keys.parse_port(key)
        except k.BadKey:
            pass
        else:
            binding = session.execute(
                sa.select(models.VppPortBinding)
                .where(models.VppPortBinding.port_id == port_id)
                .with_for_update()
            ).scalar_one_or_none()
            if binding is not None and binding.host == host:
                return str(binding.value)
            dest = session.execute(
                sa.select(models.VppPortDestination.value)
                .where(
                    models.VppPortDestination.port_id == port_id,
                    models.VppPortDestination.host == host,
                )
                .with_for_update()
            ).scalar_one_or_none()
            return None if dest is None else str(dest)
        try:
            kind, ids = self._keys.parse_global(key)
        except k.BadKey:
            return _UNRECORDED
        if kind == "remote_groups":
            sg_id, port_id = ids
            member = models.VppRemoteGroupMember
            value = session.execute(
                sa.select(member.value)
                .where(member.port_id == port_id, member.security_group_id == sg_id)
                .with_for_update()
            ).scalar_one_or_none()
            return None if value is None else str(value)
        if kind == "secgroups":
            # Its rules are not recorded (the caller needs force), but its
            # writers are fenced off all the same.
            from networking_vpp.server.secgroups.db import lock_groups

            lock_groups(session, ids)
        return _UNRECORDED


_UNRECORDED = object()  # the journal keeps no record of the key's latest value
