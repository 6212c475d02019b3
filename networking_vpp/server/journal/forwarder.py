"""The forwarder: copies journal rows to etcd, in order, then deletes them.

One forwarder is active in the whole cloud, chosen by an etcd election; every
API worker runs a candidate, so a dead leader is replaced within the election
TTL. The leader loops:

1. read the oldest ``batch_size`` rows (sequence order);
2. keep only the last write per key (earlier ones are superseded: every row is
   a whole-value put or a delete, so only the last one matters);
3. set aside rows etcd can never accept (value over ``model.MAX_VALUE_BYTES``,
   or refused as invalid when written alone) in ``vpp_journal_dead``, loudly;
4. write the rest in transactions of at most 128 operations, each guarded by
   "the election key still holds my lease", so a deposed leader's late write
   can never land after its successor's. A batch's keys are distinct, so its
   transactions commute and several are sent at once (etcd then commits them
   with one disk sync);
5. delete the batch's rows once etcd acknowledged all of them.

A crash between 4 and 5 replays the batch: harmless, writes are idempotent.
etcd unreachable: nothing is deleted; retry with backoff, rows keep their
order. Commits wake the leader at once (``kick``; across processes through a
put on ``keys.kick('forwarder')`` that the leader watches); a slow poll is the
safety net.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

from networking_vpp.common import keys, model, retry
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient, EtcdError, EtcdUnavailable
from networking_vpp.common.etcd.election import Election
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.common.etcd.writer import Delete, Op, Put, plan_transactions
from networking_vpp.server.journal.api import JournalRow, JournalStore

LOG = logging.getLogger(__name__)

ROLE = "forwarder"
MAX_RETRY_DELAY = 30.0

# A full resync run by the leader in its own thread; it receives the leader's write
# guard (see :meth:`Forwarder.leader_compare`) and returns its report.
Syncer = Callable[[Callable[[], dict[str, Any]]], object]


class NotLeader(Exception):
    """The election key no longer holds our lease: stop writing at once."""


class Forwarder:
    """An elected journal forwarder; run one per API worker (or per test process)."""

    def __init__(
        self,
        store: JournalStore,
        client: EtcdClient,
        keyspace: keys.KeySpace,
        *,
        identity: str | None = None,
        batch_size: int = 1000,
        poll_interval: float = 5.0,
        retry_interval: float = 1.0,
        election_ttl: int = 5,
        txns_in_flight: int = 4,
        syncer: Syncer | None = None,
        sync_on_election: bool = True,
        sync_interval: float = 0.0,
    ) -> None:
        self.store = store
        self.client = client
        self.keys = keyspace
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.txns_in_flight = txns_in_flight
        # Full resyncs run here, between journal batches, so that their writes are
        # serialised with the drain (see networking_vpp.server.sync).
        self.syncer = syncer
        self.sync_on_election = sync_on_election
        self.sync_interval = sync_interval
        self._sync_due = False
        self._next_sync = time.monotonic() + sync_interval
        self.resyncs = 0
        self.last_resync: object = None
        self._pool: futures.ThreadPoolExecutor | None = None
        self._counter_lock = threading.Lock()
        self.election = Election(
            client,
            keyspace.election(ROLE),
            self.identity,
            ttl=election_ttl,
            on_elected=self._on_elected,
        )
        self.kick_watcher = PrefixWatcher(
            client,
            keyspace.kick(ROLE),
            on_load=lambda snapshot, rev: self.kick(),
            on_events=lambda events: self.kick(),
            name=f"kick-{ROLE}",
        )
        # Counters, for tests, benchmarks and operators.
        self.rows_forwarded = 0
        self.rows_dead = 0
        self.transactions = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- control ----------------------------------------------------------------
    def start(self) -> None:
        """Campaign, watch the kick key, and run the drain loop in a daemon thread."""
        if self._thread is not None:
            return
        self.election.start()
        self.kick_watcher.start()
        self._thread = threading.Thread(target=self._run, name="vpp-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop draining and resign (another candidate takes over at once)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.client.settings.timeout * 2 + 1)
        self.kick_watcher.stop()
        self.election.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def kick(self) -> None:
        """Drain now (if leader) instead of at the next poll."""
        self._wake.set()

    def request_resync(self) -> None:
        """Run a full resync at the next pause of the drain (if and while leading)."""
        self._sync_due = True
        self.kick()

    def _on_elected(self) -> None:
        if self.sync_on_election and self.syncer is not None:
            self._sync_due = True  # whatever happened while nobody led, repair it
        self.kick()

    @property
    def is_leader(self) -> bool:
        """True while this forwarder is the one that writes."""
        return self.election.is_leader

    # --- the loop ------------------------------------------------------------------
    def _run(self) -> None:
        backoff = retry.Backoff(self.retry_interval, MAX_RETRY_DELAY)
        while not self._stop.is_set():
            if not self.election.is_leader:
                self.election.wait_leader(1.0)
                continue
            try:
                if self.drain_once():
                    backoff.reset()
                    continue  # more may be waiting: no sleep between full batches
                if self._resync_if_due():
                    backoff.reset()
                    continue  # it may have journaled rows: drain before sleeping
                # Journal empty: sleep until kicked (or the poll safety net fires).
                self._wake.wait(self._idle_wait())
                self._wake.clear()
                backoff.reset()
            except NotLeader:
                LOG.warning("forwarder %s: lost leadership while writing", self.identity)
                self._stop.wait(0.2)  # let the election notice before looking again
            except EtcdError as exc:
                delay = backoff.next_delay()
                LOG.warning(
                    "forwarder %s: etcd unavailable (%s); rows wait, retry in %.1fs",
                    self.identity,
                    exc,
                    delay,
                )
                self._stop.wait(delay)
            except Exception:  # noqa: BLE001 - a DB hiccup must not end the forwarder
                delay = backoff.next_delay()
                LOG.exception(
                    "forwarder %s: unexpected error; retry in %.1fs", self.identity, delay
                )
                self._stop.wait(delay)

    def drain_once(self) -> int:
        """Forward one batch; returns how many rows it consumed (0: journal empty).

        Raises :class:`EtcdError` (rows kept) or :class:`NotLeader`.
        """
        # Clear before reading: a kick that lands during this batch means more rows.
        self._wake.clear()
        rows = self.store.fetch(self.batch_size)
        if not rows:
            return 0
        latest: dict[str, JournalRow] = {}
        for row in rows:
            latest.pop(row.key, None)  # re-insert: dict order = order of last writes
            latest[row.key] = row
        oversized = [r for r in latest.values() if _too_big(r)]
        if oversized:
            self._set_aside(oversized, f"value over etcd's limit of {model.MAX_VALUE_BYTES} bytes")
        writable = [r for r in latest.values() if not _too_big(r)]
        dead_before = self.rows_dead
        self._write(writable)
        self.store.delete([r.id for r in rows])
        self.rows_forwarded += len(rows) - len(oversized) - (self.rows_dead - dead_before)
        LOG.debug(
            "forwarder %s: forwarded %d rows (%d keys)", self.identity, len(rows), len(writable)
        )
        return len(rows)

    # --- full resync -----------------------------------------------------------------
    def _resync_if_due(self) -> bool:
        """Run the syncer if a resync is due; True if it ran.

        etcd errors and lost leadership propagate (the resync stays due and the
        loop's backoff applies); any other failure is logged and the resync waits
        for its next turn, so that a bug in it cannot stop the journal.
        """
        if self.syncer is None:
            return False
        periodic = self.sync_interval > 0 and time.monotonic() >= self._next_sync
        if not (self._sync_due or periodic):
            return False
        self._sync_due = False
        try:
            self.last_resync = self.syncer(self.leader_compare)
            self.resyncs += 1
        except (NotLeader, EtcdError):
            self._sync_due = True
            raise
        except Exception:  # noqa: BLE001 - see the docstring
            LOG.exception("forwarder %s: full resync failed", self.identity)
        finally:
            self._next_sync = time.monotonic() + self.sync_interval
        return True

    def _idle_wait(self) -> float:
        if self.syncer is None or self.sync_interval <= 0:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, self._next_sync - time.monotonic()))

    # --- etcd ----------------------------------------------------------------------
    def _write(self, rows: Sequence[JournalRow]) -> None:
        by_key = {r.key: r for r in rows}
        ops: list[Op] = [
            Put(r.key, r.value) if r.value is not None else Delete(r.key) for r in rows
        ]
        plan = [txn_ops for txn_ops, _covered in plan_transactions(ops)]
        if len(plan) == 1 or self.txns_in_flight <= 1:
            for txn_ops in plan:
                self._write_txn(txn_ops, by_key)
            return
        # One key appears at most once in a batch (deduplicated above), so its
        # transactions commute: send several at once and let etcd commit them in
        # one disk sync. The batch's rows are deleted only when all succeeded.
        if self._pool is None:
            self._pool = futures.ThreadPoolExecutor(
                self.txns_in_flight, thread_name_prefix="vpp-forwarder-txn"
            )
        pending = [self._pool.submit(self._write_txn, txn_ops, by_key) for txn_ops in plan]
        errors = [f.exception() for f in pending]
        failed = [e for e in errors if e is not None]
        if failed:
            raise next((e for e in failed if isinstance(e, NotLeader)), failed[0])

    def _write_txn(self, txn_ops: Sequence[Op], by_key: dict[str, JournalRow]) -> None:
        try:
            self._guarded_txn(txn_ops)
        except EtcdError as exc:
            if isinstance(exc, EtcdUnavailable) or not permanent_error(exc):
                raise
            # etcd refused the transaction itself: find the row(s) it cannot take.
            LOG.warning(
                "forwarder: etcd refused a %d-op transaction (%s); writing its rows one by one",
                len(txn_ops),
                exc,
            )
            for op in txn_ops:
                self._write_alone(op, by_key[op.key])

    def _write_alone(self, op: Op, row: JournalRow) -> None:
        try:
            self._guarded_txn([op])
        except EtcdError as exc:
            if isinstance(exc, EtcdUnavailable) or not permanent_error(exc):
                raise
            self._set_aside([row], f"etcd refused it: {exc}")

    def leader_compare(self) -> dict[str, Any]:
        """The compare every write of the leader carries: "the election key holds my lease"."""
        lease = self.election.lease_id
        if not lease or not self.election.is_leader:
            raise NotLeader()
        return codec.compare(self.keys.election(ROLE), "LEASE", "EQUAL", lease)

    def _guarded_txn(self, ops: Sequence[Op]) -> None:
        guard = self.leader_compare()
        requests = [
            codec.put_op(op.key, op.value) if isinstance(op, Put) else codec.delete_op(op.key)
            for op in ops
        ]
        resp = self.client.txn([guard], requests)
        if not resp["succeeded"]:
            raise NotLeader()
        with self._counter_lock:
            self.transactions += 1

    def _set_aside(self, rows: Sequence[JournalRow], reason: str) -> None:
        for row in rows:
            LOG.error(
                "forwarder: journal row %d for %s can never be written to etcd (%s); moved to "
                "vpp_journal_dead. etcd keeps the previous value of this key until an "
                "operator repairs it.",
                row.id,
                row.key,
                reason,
            )
        self.store.dead_letter(rows, reason)
        with self._counter_lock:
            self.rows_dead += len(rows)


class Kicker:
    """Wakes the forwarder leader in another process by a put on the kick key.

    Runs in its own thread so an API request never waits on etcd; kicks that
    arrive while a put is in flight are coalesced into the next one.
    """

    def __init__(self, client: EtcdClient, keyspace: keys.KeySpace, forwarder: Forwarder) -> None:
        self.client = client
        self.key = keyspace.kick(ROLE)
        self.forwarder = forwarder
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> None:
        """Start the sender thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vpp-kicker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the sender thread."""
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(self.client.settings.timeout + 1)

    def kick(self) -> None:
        """Wake the forwarder: locally at once, remotely via etcd if another process leads."""
        self.forwarder.kick()
        if not self.forwarder.is_leader:
            self._wanted.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            self._wanted.clear()
            if self._stop.is_set():
                return
            try:
                # The value carries nothing: only the event matters to the watcher.
                self.client.put(self.key, "")
                self.sent += 1
            except EtcdError as exc:
                # The leader's poll picks the rows up anyway; do not hammer a sick etcd.
                LOG.debug("kick not delivered: %s", exc)
                self._stop.wait(1.0)


def _too_big(row: JournalRow) -> bool:
    return row.value is not None and len(row.value.encode()) > model.MAX_VALUE_BYTES


def permanent_error(exc: EtcdError) -> bool:
    """etcd will refuse this request however often it is sent (not a passing trouble)."""
    text = str(exc).lower()
    if "larger than max" in text or "too large" in text:
        return True
    return exc.code == 3  # gRPC INVALID_ARGUMENT (e.g. an empty key)


def wait_drained(forwarder: Forwarder, timeout: float) -> bool:
    """Block until the journal is empty (tests and tools); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if forwarder.store.pending() == 0:
            return True
        time.sleep(0.02)
    return False


__all__ = ["Forwarder", "Kicker", "NotLeader", "wait_drained"]
