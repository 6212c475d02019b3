"""A journal without Neutron, for forwarder tests and benchmarks.

``JournalDb`` is an SQLite file (WAL, so several processes can share it) with
only the journal tables; ``python -m networking_vpp.testing.journal`` runs one
forwarder process against it and reports its counters in a JSON status file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.server.journal import api
from networking_vpp.server.journal.forwarder import Forwarder


class JournalDb:
    """An SQLite journal shared by writers (tests) and forwarders (maybe other processes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})
        sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        api.create_tables(self.engine)
        self.scope = api.engine_session_scope(self.engine)
        self.store = api.JournalStore(self.scope)

    def write(self, ops: Iterable[tuple[str, str | None]]) -> None:
        """Append ``(key, value-or-None)`` rows in one transaction, like one precommit."""
        with self.scope() as session:
            for key, value in ops:
                api.record(session, key, value)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def main(argv: list[str] | None = None) -> int:
    """Run one forwarder until SIGTERM; write counters to ``--status`` every 50 ms."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True, help="SQLite journal file")
    parser.add_argument("--endpoint", action="append", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--status", required=True, help="JSON status file to keep updated")
    parser.add_argument("--prefix", default=keys.DEFAULT_PREFIX)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--ttl", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"%(asctime)s {args.identity} %(levelname)s %(name)s %(message)s",
    )
    db = JournalDb(args.db)
    client = EtcdClient(EtcdSettings(endpoints=args.endpoint, timeout=2.0))
    forwarder = Forwarder(
        db.store,
        client,
        keys.KeySpace(args.prefix),
        identity=args.identity,
        batch_size=args.batch_size,
        poll_interval=0.2,
        retry_interval=0.1,
        election_ttl=args.ttl,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    forwarder.start()
    while not stop.is_set():
        status = {
            "identity": args.identity,
            "pid": os.getpid(),
            "leader": forwarder.is_leader,
            "rows": forwarder.rows_forwarded,
            "txns": forwarder.transactions,
            "dead": forwarder.rows_dead,
        }
        tmp = args.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(status, f)
        os.replace(tmp, args.status)
        stop.wait(0.05)
    forwarder.stop()
    return 0


def read_status(path: str) -> dict[str, Any]:
    """The last status a forwarder process wrote ({} if none yet)."""
    try:
        with open(path) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
