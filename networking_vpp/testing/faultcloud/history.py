"""Did every committed journal row reach etcd, in order? The journal's ground truth and etcd's.

* :class:`JournalAudit` installs a MariaDB trigger that copies every row inserted
  into ``vpp_journal`` into an audit table, **in the inserting transaction**: a
  Neutron change that rolls back (its worker SIGKILLed before the commit) takes
  its audit rows with it, one that commits keeps them. So the audit table is the
  exact list of committed journal writes. Per key, ids follow commit order: two
  transactions that write one key serialise on a row lock (the port's
  ``vpp_port_bindings`` row, a group's lock) before inserting.
* :func:`etcd_history` replays what etcd did to the journal's keys, from its own
  revision history (a watch from an old revision; nothing is compacted in tests).
* :func:`check_order` compares the two, key by key: etcd's sequence of values must
  be a subsequence of the committed sequence (the forwarder may skip a value that
  a later row of the same batch superseded, never reorder), and etcd must end
  on the last committed value. Anything else is a reordered or a lost update.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import uuid
from typing import Any

from networking_vpp.common import keys
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.stream import Event, WatchStream
from networking_vpp.testing.devcloud import mariadb
from networking_vpp.testing.devcloud.layout import Layout

AUDIT_TABLE = "fault_journal_audit"
AUDIT_TRIGGER = "fault_journal_audit_insert"


class JournalAudit:
    """The audit table of committed journal rows, and a look at the journal's backlog."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._conn: Any = None

    def _db(self) -> Any:
        if self._conn is None:
            self._conn = mariadb.connect(self.layout, database=mariadb.DB_NAME)
        return self._conn

    def connect(self) -> JournalAudit:
        """Another handle on the same tables (a PyMySQL connection is one thread's)."""
        return JournalAudit(self.layout)

    def install(self) -> None:
        """Create the audit table and the trigger (idempotent)."""
        with self._db().cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (id BIGINT PRIMARY KEY, "
                "`key` VARCHAR(1024) NOT NULL, value MEDIUMTEXT NULL)"
            )
            cur.execute(f"DROP TRIGGER IF EXISTS {AUDIT_TRIGGER}")
            cur.execute(
                f"CREATE TRIGGER {AUDIT_TRIGGER} AFTER INSERT ON vpp_journal FOR EACH ROW "
                f"INSERT INTO {AUDIT_TABLE} (id, `key`, value) "
                "VALUES (NEW.id, NEW.`key`, NEW.value)"
            )

    def remove(self) -> None:
        """Drop the trigger and the table."""
        with self._db().cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS {AUDIT_TRIGGER}")
            cur.execute(f"DROP TABLE IF EXISTS {AUDIT_TABLE}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def last_id(self) -> int:
        """The highest audited journal id (0: none yet)."""
        with self._db().cursor() as cur:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {AUDIT_TABLE}")
            return int(cur.fetchone()[0])

    def rows(self, after_id: int = 0) -> list[tuple[int, str, str | None]]:
        """Committed journal writes ``(id, key, value)`` with ids above ``after_id``."""
        with self._db().cursor() as cur:
            cur.execute(
                f"SELECT id, `key`, value FROM {AUDIT_TABLE} WHERE id > %s ORDER BY id",
                (after_id,),
            )
            return [(int(i), str(k), v) for i, k, v in cur.fetchall()]

    def values_of(self, key: str) -> list[str | None]:
        """Every committed value of ``key`` (None: delete), in commit order."""
        with self._db().cursor() as cur:
            cur.execute(f"SELECT value FROM {AUDIT_TABLE} WHERE `key` = %s ORDER BY id", (key,))
            return [v for (v,) in cur.fetchall()]

    def mentions(self, text: str) -> int:
        """How many committed journal values contain ``text`` (a marker of ours)."""
        with self._db().cursor() as cur:
            cur.execute(
                f"SELECT COUNT(*) FROM {AUDIT_TABLE} WHERE value LIKE %s",
                ("%" + text.replace("%", r"\%").replace("_", r"\_") + "%",),
            )
            return int(cur.fetchone()[0])

    def pending(self) -> int:
        """Journal rows not yet forwarded to etcd."""
        with self._db().cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM vpp_journal")
            return int(cur.fetchone()[0])

    def oldest_pending_age(self) -> float:
        """Seconds the oldest unforwarded journal row has waited (0: journal empty)."""
        with self._db().cursor() as cur:
            cur.execute(
                "SELECT TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) "
                "FROM vpp_journal"
            )
            micro = cur.fetchone()[0]
        return max(0.0, float(micro or 0) / 1e6)

    def dead(self) -> int:
        """Rows the forwarder set aside as unwritable (must stay 0)."""
        with self._db().cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM vpp_journal_dead")
            return int(cur.fetchone()[0])


class BacklogSampler:
    """Samples the journal's backlog in a thread: how many rows, and how long the oldest waited."""

    def __init__(self, audit: JournalAudit, interval: float = 0.1) -> None:
        self._audit = audit.connect()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-sampler", daemon=True)
        self.max_rows = 0
        self.max_wait = 0.0

    def start(self) -> BacklogSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (idempotent)."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(10)
            self._audit.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.max_rows = max(self.max_rows, self._audit.pending())
                self.max_wait = max(self.max_wait, self._audit.oldest_pending_age())
            except Exception:  # noqa: BLE001 - a sample lost to a DB hiccup is no failure
                continue

    def summary(self) -> str:
        return f"journal backlog at most {self.max_rows} rows, oldest waited {self.max_wait:.1f} s"


def journal_prefixes(keyspace: keys.KeySpace) -> tuple[str, ...]:
    """The key prefixes only the journal writes (agents write /state/, elections theirs)."""
    return (keyspace.nodes_prefix(), keyspace.secgroups_prefix(), keyspace.remote_groups_prefix())


def etcd_history(
    client: EtcdClient, keyspace: keys.KeySpace, after_revision: int, timeout: float = 60.0
) -> list[Event]:
    """Every event on the journal's keys after ``after_revision``, up to now, in order.

    A sentinel put under the prefix marks "now": the replay ends when the watch
    reaches it (the sentinel is deleted afterwards).
    """
    sentinel = f"{keyspace.prefix}/fault-test/history-end-{uuid.uuid4().hex[:8]}"
    end = client.put(sentinel, "")
    prefixes = journal_prefixes(keyspace)
    events: list[Event] = []
    stream = WatchStream(
        client.transport,
        keyspace.prefix + "/",
        codec.prefix_range_end(keyspace.prefix + "/"),
        after_revision + 1,
        idle_timeout=timeout,
        progress_notify=False,
    )
    try:
        for reply in stream:
            if reply.canceled:
                raise AssertionError(
                    f"history replay canceled (compacted at {reply.compact_revision}?): "
                    f"{reply.cancel_reason}"
                )
            done = False
            for event in reply.events:
                if event.mod_revision > end:
                    continue
                if event.key.startswith(prefixes):
                    events.append(event)
                done = done or event.mod_revision >= end
            if done:
                break
    finally:
        stream.close()
        client.delete(sentinel)
    return events


@dataclasses.dataclass
class OrderReport:
    """Per-key comparison of committed journal writes with what etcd did."""

    keys: int = 0
    committed: int = 0  # committed journal writes (audit rows) in the window
    applied: int = 0  # etcd events on the journal's keys in the window
    superseded: int = 0  # committed writes etcd skipped because a later one replaced them
    replayed: int = 0  # etcd writes repeating the previous one (a batch sent again)
    reordered: list[str] = dataclasses.field(default_factory=list)
    lost: list[str] = dataclasses.field(default_factory=list)
    #: for every key with a problem: its committed and etcd sequences, values in full
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reordered and not self.lost

    def summary(self) -> str:
        return (
            f"{self.committed} committed journal writes on {self.keys} keys, "
            f"{self.applied} etcd writes ({self.superseded} superseded in a batch, "
            f"{self.replayed} replayed), lost {len(self.lost)}, reordered {len(self.reordered)}"
        )


def check_order(
    committed: list[tuple[int, str, str | None]],
    events: list[Event],
    final: dict[str, bytes],
) -> OrderReport:
    """Compare, per key, committed values (audit rows) with etcd's events and final value.

    etcd's values must be a subsequence of the committed ones (a value a later row of
    the same batch replaced may be skipped), except that a write may repeat the one
    before it: the forwarder sends a batch again when etcd's answer was lost, and the
    journal's writes are idempotent for exactly that. ``final`` is etcd's content of
    the journal's keys now. The audit rows must cover the window of ``events`` (start
    auditing, drain the journal, then note the revision).
    """
    by_key: dict[str, list[tuple[int, str | None]]] = {}
    for ident, key, value in sorted(committed):
        by_key.setdefault(key, []).append((ident, value))
    seen: dict[str, list[tuple[int, str | None]]] = {}
    for event in events:
        value = None if event.kind == "delete" else (event.value or b"").decode()
        seen.setdefault(event.key, []).append((event.mod_revision, value))
    report = OrderReport(keys=len(set(by_key) | set(seen)), committed=len(committed))
    report.applied = len(events)
    for key in sorted(set(by_key) | set(seen)):
        want = [v for _, v in by_key.get(key, [])]
        got = [v for _, v in seen.get(key, [])]
        position = 0  # committed writes matched so far
        matched = 0
        problem = False
        for i, value in enumerate(got):
            if position and want[position - 1] == value:
                report.replayed += 1
                continue
            # Greedy leftmost matching decides "is a subsequence" exactly.
            while position < len(want) and want[position] != value:
                position += 1
            if position == len(want):
                report.reordered.append(
                    f"{key}: etcd write #{i + 1} is not next in commit order; "
                    + _sequences(by_key.get(key, []), seen.get(key, []))
                )
                problem = True
                break
            position += 1
            matched += 1
        report.superseded += max(0, len(want) - matched)
        have = final.get(key)
        now = have.decode() if have is not None else None
        if want and now != want[-1]:
            report.lost.append(
                f"{key}: etcd ends on another value than the last committed write; "
                + _sequences(by_key.get(key, []), seen.get(key, []))
            )
            problem = True
        if problem:
            report.details[key] = {
                "committed": by_key.get(key, []),
                "etcd": seen.get(key, []),
                "final": now,
            }
    return report


def _sequences(committed: list[tuple[int, str | None]], etcd: list[tuple[int, str | None]]) -> str:
    """Both sequences, values named by their first committed position (v0, v1, ...)."""
    names: dict[str | None, str] = {}
    for _ident, value in committed:
        names.setdefault(value, "del" if value is None else f"v{len(names)}")

    def name(value: str | None) -> str:
        if value in names:
            return names[value]
        digest = hashlib.sha1((value or "").encode()).hexdigest()[:8]
        return f"unknown:{digest}"

    return (
        "committed "
        + " ".join(f"{name(v)}#{i}" for i, v in committed)
        + "; etcd "
        + " ".join(f"{name(v)}@{r}" for r, v in etcd)
    )


__all__ = [
    "BacklogSampler",
    "JournalAudit",
    "OrderReport",
    "check_order",
    "etcd_history",
    "journal_prefixes",
]
