"""Full resync: make etcd hold exactly what Neutron's database says.

Recomputes every key the journal would have written (:mod:`.desired`), compares
it with etcd, and repairs the difference: puts what is missing or wrong, deletes
what should not be there, in transactions of at most 128 operations.

It must never undo a journal write. Three rules make sure of that:

1. **Order of reads.** etcd is read first (snapshot at revision R), then the
   database (one read transaction), then the keys that have pending journal rows.
2. **Pending rows win.** A key with a pending journal row is skipped: the
   forwarder will write it, with a value at least as new as ours.
3. **Compare-and-swap.** Every write is conditional on the key being as it was
   at R (``mod_revision`` equal, or absent for a "missing" key).

Why that is enough: take a Neutron transaction T that changes key k. If T
committed before our database read, our value for k is T's (or newer). If it
committed after, our value may be stale, but T's journal row then exists when
we read the pending keys (skip), or is forwarded after that read (so after R:
our CAS fails and we skip), or is forwarded after our write (it lands last and
wins). The forwarder's own etcd write for a row committed before our database
read either precedes R (we saw it) or follows R (CAS fails). So a stale value
never lands over a newer one, whoever runs the resync.

Inside neutron-server the resync runs in the forwarder's thread while it leads
(when elected, and every ``resync_interval`` seconds), so it does not even
compete with the journal drain, and its transactions also carry the
forwarder's leadership guard. ``networking-vpp resync`` runs the same code
from outside the server, relying on rules 1-3 alone.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from networking_vpp.common import keys
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import KV, EtcdClient, EtcdError, EtcdUnavailable
from networking_vpp.common.etcd.writer import MAX_TXN_OPS, Delete, Op, Put, plan_transactions
from networking_vpp.server.desired import (
    DesiredState,
    DesiredStateBuilder,
    Scope,
    StaleMemory,
    plugin_port_source,
)
from networking_vpp.server.journal.api import JournalStore, neutron_session_scope
from networking_vpp.server.journal.forwarder import NotLeader, permanent_error
from networking_vpp.server.journal.ports import PortJournal

LOG = logging.getLogger(__name__)

# Returns a compare that holds while the caller may write (the forwarder's
# "the election key holds my lease"); raises NotLeader if it already knows not.
Guard = Callable[[], dict[str, Any]]

PENDING = "pending journal row"
RACED = "changed in etcd during the resync"


@dataclasses.dataclass(frozen=True)
class Change:
    """One difference between etcd and the database, and how it is repaired."""

    key: str
    op: Literal["put", "delete"]
    reason: Literal["missing", "differs", "extra", "stale journal memory"]
    value: str | None = None
    mod_revision: int = 0  # the key's in the etcd snapshot; 0: absent
    via: Literal["etcd", "journal"] = "etcd"
    stale: StaleMemory | None = None  # for via="journal": the memory the diff saw

    def to_json(self) -> dict[str, str]:
        """The key, the reason, and (for puts) the path the repair takes."""
        out = {"key": self.key, "reason": self.reason}
        if self.op == "put":
            out["via"] = self.via
        return out


@dataclasses.dataclass
class SyncReport:
    """What a resync found and did."""

    dry_run: bool
    host: str | None
    revision: int = 0
    scopes: list[str] = dataclasses.field(default_factory=list)
    not_covered: list[str] = dataclasses.field(default_factory=list)
    desired: int = 0
    in_etcd: int = 0
    changes: list[Change] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    applied: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """etcd already matched the database (nothing to repair, skip, or worry about)."""
        return not (self.changes or self.skipped or self.failed or self.problems)

    def to_json(self) -> dict[str, Any]:
        """The report as printed by ``networking-vpp resync``."""
        return {
            "dry_run": self.dry_run,
            "host": self.host,
            "etcd_revision": self.revision,
            "scopes": self.scopes,
            "not_covered": self.not_covered,
            "desired_keys": self.desired,
            "etcd_keys": self.in_etcd,
            "put": [c.to_json() for c in self.changes if c.op == "put"],
            "delete": [c.to_json() for c in self.changes if c.op == "delete"],
            "skipped": [{"key": k, "reason": r} for k, r in self.skipped],
            "failed": [{"key": k, "reason": r} for k, r in self.failed],
            "problems": self.problems,
            "applied": self.applied,
            "seconds": round(self.seconds, 3),
        }


def diff(
    desired: DesiredState, actual: dict[str, KV], pending: set[str]
) -> tuple[list[Change], list[tuple[str, str]]]:
    """The changes that make ``actual`` equal ``desired``, and the keys left to the journal."""
    changes: list[Change] = []
    skipped: list[tuple[str, str]] = []
    for key in sorted(set(desired.values) | set(actual)):
        want = desired.values.get(key)
        have = actual.get(key)
        stale = key in desired.stale_memory
        if want is not None and have is not None and have.value == want.encode() and not stale:
            continue
        if key in pending:
            skipped.append((key, PENDING))
            continue
        rev = have.mod_revision if have is not None else 0
        if want is None:
            changes.append(Change(key, "delete", "extra", None, rev))
            continue
        if have is None:
            reason: Any = "missing"
        elif have.value != want.encode():
            reason = "differs"
        else:
            reason = "stale journal memory"  # etcd is right, the journal's memory is not
        memory = desired.stale_memory.get(key)
        via: Any = "journal" if memory is not None else "etcd"
        changes.append(Change(key, "put", reason, want, rev, via, memory))
    return changes, skipped


class Resync:
    """Compares etcd with the database and repairs etcd (see the module docstring)."""

    def __init__(
        self,
        client: EtcdClient,
        desired: DesiredStateBuilder,
        store: JournalStore,
        *,
        context_factory: Callable[[], Any] | None = None,
        kick: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.desired = desired
        self.store = store
        self.kick = kick
        self._context = context_factory or _admin_context

    def run(
        self, *, dry_run: bool = False, host: str | None = None, guard: Guard | None = None
    ) -> SyncReport:
        """One resync; ``host`` limits it to that host's port bindings."""
        started = time.monotonic()
        report = SyncReport(dry_run=dry_run, host=host)
        scopes, report.not_covered = self.desired.scopes(host)
        report.scopes = [s.name for s in scopes]
        actual, report.revision = self._read_etcd(scopes)  # 1. etcd first ...
        state = self.desired.compute(self._context(), host)  # 2. ... then the database ...
        pending = self.store.pending_keys()  # 3. ... then the journal's pending keys
        report.desired, report.in_etcd = len(state.values), len(actual)
        report.problems = list(state.problems)
        report.changes, report.skipped = diff(state, actual, pending)
        if not dry_run and report.changes:
            self._repair(report, guard)
        report.seconds = time.monotonic() - started
        return report

    # --- reading --------------------------------------------------------------------
    def _read_etcd(self, scopes: list[Scope]) -> tuple[dict[str, KV], int]:
        """Every owned key of every scope, all at one revision."""
        actual: dict[str, KV] = {}
        revision = 0
        for scope in scopes:
            kvs, revision = self.client.get_prefix(scope.prefix, revision=revision or None)
            actual.update((kv.key, kv) for kv in kvs if scope.owns(kv.key))
        return actual, revision

    # --- repairing ------------------------------------------------------------------
    def _repair(self, report: SyncReport, guard: Guard | None) -> None:
        through_journal = [c for c in report.changes if c.via == "journal"]
        direct = [c for c in report.changes if c.via == "etcd"]
        journaled = 0
        for change in through_journal:
            assert change.stale is not None  # diff() sets it for every journal change
            # refresh_port re-reads the stored value under the row lock and backs
            # off if it is no longer the one this diff saw.
            if self.desired.refresh_port(
                self._context(), change.stale.port_id, change.stale.stored
            ):
                journaled += 1
            else:
                report.skipped.append((change.key, PENDING))
        report.applied += journaled
        if journaled and self.kick is not None:
            self.kick()
        self._write(direct, report, guard)

    def _write(self, changes: list[Change], report: SyncReport, guard: Guard | None) -> None:
        by_key = {c.key: c for c in changes}
        ops: list[Op] = [
            Put(c.key, c.value or "") if c.op == "put" else Delete(c.key) for c in changes
        ]
        # etcd caps each list of a transaction at 128: the guard takes one compare.
        max_ops = MAX_TXN_OPS - (1 if guard is not None else 0)
        for txn_ops, _ in plan_transactions(ops, max_ops):
            chunk = [by_key[op.key] for op in txn_ops]
            try:
                if self._txn(chunk, guard):
                    report.applied += len(chunk)
                    continue
            except EtcdError as exc:
                if isinstance(exc, EtcdUnavailable) or not permanent_error(exc):
                    raise
            self._write_one_by_one(chunk, report, guard)

    def _write_one_by_one(
        self, chunk: Iterable[Change], report: SyncReport, guard: Guard | None
    ) -> None:
        """A transaction failed: find which keys moved (or which etcd refuses)."""
        for change in chunk:
            try:
                if self._txn([change], guard):
                    report.applied += 1
                else:
                    report.skipped.append((change.key, RACED))
            except EtcdError as exc:
                if isinstance(exc, EtcdUnavailable) or not permanent_error(exc):
                    raise
                report.failed.append((change.key, f"etcd refused it: {exc}"))

    def _txn(self, changes: list[Change], guard: Guard | None) -> bool:
        """One conditional transaction; False if a key moved since the snapshot."""
        compares: list[dict[str, Any]] = []
        failure: list[dict[str, Any]] = []
        held: dict[str, Any] | None = None
        if guard is not None:
            held = guard()
            compares.append(held)
            failure.append(codec.range_op(held["key"]))
        for c in changes:
            if c.mod_revision:
                compares.append(codec.compare(c.key, "MOD", "EQUAL", c.mod_revision))
            else:  # absent at the snapshot: still absent
                compares.append(codec.compare(c.key, "CREATE", "EQUAL", 0))
        success = [
            codec.put_op(c.key, c.value or "") if c.op == "put" else codec.delete_op(c.key)
            for c in changes
        ]
        resp = self.client.txn(compares, success, failure)
        if resp["succeeded"]:
            return True
        if held is not None:
            kvs = resp["responses"][0]["response_range"]["kvs"]
            if not kvs or kvs[0].lease != held.get("lease"):
                raise NotLeader()
        return False


def make_resync(
    client: EtcdClient,
    keyspace: keys.KeySpace,
    vhostuser_role: str,
    kick: Callable[[], None] | None = None,
) -> Resync:
    """A resync over Neutron's database and the loaded core plugin."""
    desired = DesiredStateBuilder(
        keyspace, PortJournal(keyspace, vhostuser_role), plugin_port_source()
    )
    return Resync(client, desired, JournalStore(neutron_session_scope()), kick=kick)


def log_report(report: SyncReport) -> None:
    """One line when etcd was right; a warning with the counts when it was not."""
    if report.clean:
        LOG.info(
            "resync: etcd matches the database (%d keys, %.2fs)", report.desired, report.seconds
        )
        return
    puts = [c for c in report.changes if c.op == "put"]
    LOG.warning(
        "resync: %d keys to put (%d missing), %d to delete, %d applied, %d skipped (pending "
        "journal rows or moved meanwhile), %d failed, %d problems (%.2fs): %s",
        len(puts),
        sum(1 for c in puts if c.reason == "missing"),
        len(report.changes) - len(puts),
        report.applied,
        len(report.skipped),
        len(report.failed),
        len(report.problems),
        report.seconds,
        "; ".join(report.problems[:5] + [f"{k}: {r}" for k, r in report.failed[:5]]),
    )


def _admin_context() -> Any:
    from neutron_lib import context as n_context

    return n_context.get_admin_context()


__all__ = ["Change", "Guard", "Resync", "SyncReport", "diff", "log_report", "make_resync"]
