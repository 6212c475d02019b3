"""Journal access: writers append rows in their own transaction; the forwarder drains.

Writers (mechanism driver precommits) call :func:`record` with the session of
the Neutron transaction they run in, so the row commits or rolls back together
with Neutron's change. The forwarder uses :class:`JournalStore`, which opens
its own short transactions through a ``session_scope`` factory (Neutron's
enginefacade in the server; a plain SQLAlchemy session in tests and tools).

Ordering: per key, sequence (id) order is commit order, because every writer
of a key locks the key's owner row before it appends and holds the lock until
it commits (the rule, and who locks what, in :func:`record`). Across keys, ids
and commits may interleave; the forwarder loses nothing because it keeps no
high-water mark: each pass reads whatever rows are left, oldest id first, and
deletes only the ids it wrote, so a lower id that commits after a higher one
was forwarded is simply read by the next pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from networking_vpp.server.journal import models

LOG = logging.getLogger(__name__)

SessionScope = Callable[[], contextlib.AbstractContextManager[Any]]


@dataclasses.dataclass(frozen=True, slots=True)
class JournalRow:
    """One journal row, detached from any session."""

    id: int
    key: str
    value: str | None  # None: delete the key
    created_at: datetime.datetime | None = None


def record(session: Any, key: str, value: str | None) -> None:
    """Append one etcd write (``value`` None = delete ``key``) to the caller's transaction.

    **The ordering rule: lock the key's owner row first.** The forwarder
    applies rows in id order, and keeps only the last row of a key in a batch.
    InnoDB assigns the autoincrement id when the row is inserted (at the
    session's flush), not when its transaction commits, so two transactions
    can commit out of id order: A inserts id N, B inserts N+1 and commits, A
    commits later. For one key that would be wrong: B computed its value
    without A's change, yet A's value is the last to reach etcd if the
    forwarder read B's row before A committed, and B's if it read both
    (``tests/functional/server/test_journal_ordering.py`` shows both). So every
    writer of a key, before calling this, takes a row lock (``SELECT ... FOR
    UPDATE``) on the one row that owns the key, and holds it until commit
    (row locks always are). Then a second writer of the key waits for the
    first's commit before it can insert: its id is higher and it commits
    later, so per key id order is commit order, and the value it computes
    under the lock reflects every earlier commit. The owner rows:

    * ``/nodes/<host>/ports/<id>`` (the port's host and live-migration
      destinations): the port's ``vpp_port_bindings`` row,
      :func:`networking_vpp.server.journal.ports.lock_binding` (port
      precommits, destinations, the resync's ``refresh_port``; network MTU and
      subnet rewrites lock the same rows in port id order). Destinations also
      lock their ``vpp_port_destinations`` rows. Without a binding row only a
      gap is locked; two writers that both create the row cannot both commit.
    * ``/global/secgroups/<sg>``: the group's ``standardattributes`` row
      (``secgroups.db.lock_groups``).
    * ``/global/remote_groups/<sg>/<port>``: the port's
      ``vpp_remote_group_members`` rows (``secgroups.db.lock_member_memory``).

    Different keys have different owners, so their rows interleave freely,
    and the forwarder forwards a lower id that commits late (it keeps no
    high-water mark: see :meth:`JournalStore.fetch`). A new writer of a key
    must take that key's owner lock before its first row is flushed.
    """
    session.add(models.VppJournal(key=key, value=value))


class JournalStore:
    """The forwarder's view of the journal tables."""

    def __init__(self, session_scope: SessionScope) -> None:
        self._scope = session_scope

    def fetch(self, limit: int) -> list[JournalRow]:
        """The ``limit`` oldest rows, in sequence order.

        Always from the start of the table, never "after the last id sent":
        a row with a lower id than one already forwarded may still commit (a
        transaction of another key that inserted earlier and commits later).
        """
        with self._scope() as session:
            rows = session.execute(
                sa.select(
                    models.VppJournal.id,
                    models.VppJournal.key,
                    models.VppJournal.value,
                    models.VppJournal.created_at,
                )
                .order_by(models.VppJournal.id)
                .limit(limit)
            ).all()
        return [JournalRow(r.id, r.key, r.value, r.created_at) for r in rows]

    def delete(self, ids: Sequence[int]) -> None:
        """Remove rows etcd has acknowledged."""
        if not ids:
            return
        with self._scope() as session:
            # Chunked: some databases cap the number of bound parameters.
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                session.execute(sa.delete(models.VppJournal).where(models.VppJournal.id.in_(chunk)))

    def dead_letter(self, rows: Sequence[JournalRow], reason: str) -> None:
        """Move rows etcd can never accept to ``vpp_journal_dead`` (one transaction)."""
        if not rows:
            return
        now = models._utcnow()
        with self._scope() as session:
            for row in rows:
                session.merge(
                    models.VppJournalDead(
                        id=row.id,
                        key=row.key,
                        value=row.value,
                        created_at=row.created_at or now,
                        failed_at=now,
                        reason=reason[:1024],
                    )
                )
            session.execute(
                sa.delete(models.VppJournal).where(models.VppJournal.id.in_([r.id for r in rows]))
            )

    def pending(self) -> int:
        """Rows waiting to be forwarded."""
        with self._scope() as session:
            return int(session.execute(sa.select(sa.func.count(models.VppJournal.id))).scalar())

    def pending_keys(self) -> set[str]:
        """Keys that have rows waiting to be forwarded (the full resync leaves them alone)."""
        with self._scope() as session:
            return set(session.execute(sa.select(models.VppJournal.key).distinct()).scalars())

    def dead(self) -> list[JournalRow]:
        """Rows that were set aside, oldest first."""
        with self._scope() as session:
            rows = session.execute(
                sa.select(
                    models.VppJournalDead.id,
                    models.VppJournalDead.key,
                    models.VppJournalDead.value,
                    models.VppJournalDead.created_at,
                ).order_by(models.VppJournalDead.id)
            ).all()
        return [JournalRow(r.id, r.key, r.value, r.created_at) for r in rows]


def neutron_session_scope() -> SessionScope:
    """Session factory over Neutron's enginefacade (the server's database)."""
    from neutron_lib import context as n_context
    from neutron_lib.db import api as db_api

    @contextlib.contextmanager
    def scope() -> Iterator[Any]:
        ctx = n_context.get_admin_context()
        with db_api.CONTEXT_WRITER.using(ctx):
            yield ctx.session

    return scope


def engine_session_scope(engine: sa.engine.Engine) -> SessionScope:
    """Session factory over a plain SQLAlchemy engine (tests, tools, benchmarks)."""
    from sqlalchemy import orm

    factory = orm.sessionmaker(bind=engine)

    @contextlib.contextmanager
    def scope() -> Iterator[Any]:
        with factory() as session, session.begin():
            yield session

    return scope


def create_tables(engine: sa.engine.Engine) -> None:
    """Create the journal tables only (no Neutron tables) on ``engine``."""
    for table in (models.VppJournal.__table__, models.VppJournalDead.__table__):
        table.create(engine, checkfirst=True)  # type: ignore[attr-defined]
