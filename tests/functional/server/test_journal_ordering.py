"""The journal's ordering rule on MariaDB: per key, sequence order is commit order.

InnoDB hands out ``vpp_journal.id`` when a row is inserted, not when its
transaction commits, so two transactions can commit out of id order. The rule
(:func:`networking_vpp.server.journal.api.record`): every writer of a key locks
the key's owner row before it inserts, and holds the lock until it commits.
These tests run two real transactions against a private MariaDB (skipped
without mariadb-server) and the real forwarder against a real etcd:

* one key: the second writer waits for the first's commit, so ids follow
  commits; without the lock, the final etcd value depends on when the
  forwarder happened to read;
* two keys: the writers interleave, a lower id commits after a higher one was
  forwarded, and the forwarder still forwards it (it keeps no high-water mark).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from neutron.db import models_v2
from neutron_lib.db import standard_attr
from sqlalchemy import orm

from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.server.journal import api as journal
from networking_vpp.server.journal import models
from networking_vpp.server.journal.forwarder import Forwarder
from networking_vpp.server.journal.ports import lock_binding
from networking_vpp.testing.devcloud import mariadb
from networking_vpp.testing.devcloud.layout import Layout
from networking_vpp.testing.etcd import EtcdServer, free_port
from networking_vpp.testing.wait import wait_for

pytestmark = pytest.mark.skipif(not mariadb.available(), reason="mariadb-server not installed")

K = keys.KeySpace()
TIMEOUT = 30.0
# InnoDB refreshes its INNODB_TRX cache only when the previous read is over
# 100 ms old: read it more often and it never shows the new lock wait.
LOCK_POLL = 0.2
# Only what the port binding rows need (their foreign key to ports): creating
# these through the models takes a second, Neutron's whole migration minutes.
TABLES = (
    standard_attr.StandardAttribute.__table__,
    models_v2.Network.__table__,
    models_v2.Port.__table__,
    models.VppJournal.__table__,
    models.VppJournalDead.__table__,
    models.VppPortBinding.__table__,
)


class Database:
    """A private MariaDB with the tables the port journal writes."""

    def __init__(self, layout: Layout, engine: sa.engine.Engine) -> None:
        self.layout = layout
        self.engine = engine
        self.sessions = orm.sessionmaker(bind=engine)
        self.network_id = self._add_network()
        self._ports = 0

    def _standard_attr(self, conn: Any, resource_type: str) -> int:
        table = standard_attr.StandardAttribute.__table__
        result = conn.execute(
            sa.insert(table).values(resource_type=resource_type, revision_number=0)
        )
        return int(result.inserted_primary_key[0])

    def _add_network(self) -> str:
        network_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(models_v2.Network.__table__).values(
                    id=network_id, mtu=1500, standard_attr_id=self._standard_attr(conn, "networks")
                )
            )
        return network_id

    def add_bound_port(self, host: str) -> str:
        """A port with its ``vpp_port_bindings`` row (the owner row of its key on ``host``)."""
        port_id = str(uuid.uuid4())
        self._ports += 1
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(models_v2.Port.__table__).values(
                    id=port_id,
                    network_id=self.network_id,
                    mac_address=f"fa:16:3e:00:{self._ports // 256:02x}:{self._ports % 256:02x}",
                    admin_state_up=True,
                    status="DOWN",
                    device_id="vm",
                    device_owner="compute:nova",
                    standard_attr_id=self._standard_attr(conn, "ports"),
                )
            )
            conn.execute(
                sa.insert(models.VppPortBinding.__table__).values(
                    port_id=port_id, host=host, binding_id=str(uuid.uuid4()), value="bound"
                )
            )
        return port_id

    def lock_waits(self) -> int:
        """Transactions waiting for a row lock now (root: INNODB_TRX needs PROCESS)."""
        conn = mariadb.connect(self.layout)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                    "WHERE trx_state = 'LOCK WAIT'"
                )
                row = cur.fetchone()
                return int(row[0]) if row else 0
        finally:
            conn.close()

    def committed_ids(self, key: str) -> list[int]:
        """Journal ids of ``key`` that other transactions can see (committed)."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(models.VppJournal.id)
                    .where(models.VppJournal.key == key)
                    .order_by(models.VppJournal.id)
                ).scalars()
            )


def insert_row(session: orm.Session, key: str, value: str | None) -> int:
    """``journal.record``, flushed now: the row gets its id here, long before the commit."""
    journal.record(session, key, value)
    session.flush()
    return int(session.execute(sa.text("SELECT LAST_INSERT_ID()")).scalar_one())


class Writer(threading.Thread):
    """A second transaction, in its own thread; its outcome is read after ``join``."""

    def __init__(self, db: Database, body: Callable[[orm.Session], int]) -> None:
        super().__init__(name="journal-writer-b", daemon=True)
        self.db = db
        self.body = body
        self.row_id: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.sessions() as session, session.begin():
                self.row_id = self.body(session)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self) -> int:
        self.join(TIMEOUT)
        assert not self.is_alive(), "the second writer never finished"
        if self.error is not None:
            raise self.error
        assert self.row_id is not None
        return self.row_id


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    layout = Layout(tmp_path_factory.mktemp("ordering"))
    layout.make_dirs()
    mariadb.start(layout, free_port(), die_with_parent=True)
    engine = sa.create_engine(mariadb.connection_url(layout))
    try:
        for table in TABLES:
            table.create(engine)  # type: ignore[attr-defined]
        yield Database(layout, engine)
    finally:
        engine.dispose()
        mariadb.stop(layout)


@pytest.fixture
def db(database: Database) -> Database:
    with database.engine.begin() as conn:
        conn.execute(sa.delete(models.VppJournal.__table__))
    return database


@pytest.fixture
def forwarder(db: Database, etcd: EtcdClient, etcd_server: EtcdServer) -> Iterator[Forwarder]:
    """The real forwarder, elected; the test calls ``drain_once`` when it wants a pass."""
    store = journal.JournalStore(journal.engine_session_scope(db.engine))
    client = EtcdClient(etcd_server.settings(timeout=2.0))
    fw = Forwarder(store, client, K, identity="ordering", election_ttl=2)
    fw.election.start()
    try:
        assert fw.election.wait_leader(10)
        yield fw
    finally:
        fw.election.stop()
        client.close()


def etcd_value(etcd: EtcdClient, key: str) -> str | None:
    kv = etcd.get(key)
    return None if kv is None else kv.value.decode()


# --- one key -----------------------------------------------------------------------------
def test_one_key_the_owner_row_lock_serialises_writers(db, forwarder, etcd):
    port_id = db.add_bound_port("h1")
    key = K.port("h1", port_id)
    locked = threading.Event()
    seen_at_lock: list[int] = []

    def b(session: orm.Session) -> int:
        assert lock_binding(session, port_id) is not None  # blocks while A holds it
        locked.set()
        seen_at_lock.extend(db.committed_ids(key))
        return insert_row(session, key, "B")

    with db.sessions() as a:
        with a.begin():
            assert lock_binding(a, port_id) is not None
            a_id = insert_row(a, key, "A")
            writer = Writer(db, b)
            writer.start()
            # B is blocked on A's lock: the database shows its lock wait.
            wait_for(
                lambda: db.lock_waits() >= 1 or not writer.is_alive(),
                TIMEOUT,
                "B to wait for A's row lock",
                interval=LOCK_POLL,
            )
            assert writer.is_alive(), f"B did not wait for A's lock: {writer.error!r}"
            assert not locked.is_set()
            assert forwarder.drain_once() == 0  # nothing committed yet
        # A committed (the with block), B gets the lock, inserts after A's id, commits.
    b_id = writer.finish()
    assert seen_at_lock == [a_id], "B got the lock before A's row was committed"
    assert a_id < b_id  # sequence order is commit order
    assert forwarder.drain_once() == 2
    assert etcd_value(etcd, key) == "B"  # the last commit's value


def test_one_key_without_the_lock_the_outcome_depends_on_the_forwarder(db, forwarder, etcd):
    """What the lock prevents: B inserts after A but commits first.

    The same two transactions, the same commit order (B, then A): the value
    etcd ends with depends on whether the forwarder read between the commits.
    """

    def race(key: str, drain_between: bool) -> str | None:
        with db.sessions() as a:
            with a.begin():
                a_id = insert_row(a, key, "A")  # no lock: nothing makes B wait
                writer = Writer(db, lambda b: insert_row(b, key, "B"))
                writer.start()
                b_id = writer.finish()  # B committed, A not yet
                assert a_id < b_id
                if drain_between:
                    assert forwarder.drain_once() == 1  # B's row
        assert forwarder.drain_once() >= 1
        return etcd_value(etcd, key)

    read_between = race(K.port("h1", str(uuid.uuid4())), drain_between=True)
    read_after = race(K.port("h1", str(uuid.uuid4())), drain_between=False)
    assert (read_between, read_after) == ("A", "B")  # one history, two outcomes


# --- two keys ----------------------------------------------------------------------------
def test_two_keys_interleave_and_a_late_lower_id_is_not_lost(db, forwarder, etcd):
    port1, port2 = db.add_bound_port("h1"), db.add_bound_port("h2")
    key1, key2 = K.port("h1", port1), K.port("h2", port2)

    def b(session: orm.Session) -> int:
        assert lock_binding(session, port2) is not None  # another owner row: no wait
        return insert_row(session, key2, "v2")

    with db.sessions() as a:
        with a.begin():
            assert lock_binding(a, port1) is not None
            a_id = insert_row(a, key1, "v1")
            writer = Writer(db, b)
            writer.start()
            b_id = writer.finish()  # committed while A holds its lock
            assert a_id < b_id
            # The forwarder sends the higher id first: the lower one is not committed.
            assert forwarder.drain_once() == 1
            assert etcd_value(etcd, key2) == "v2"
            assert etcd_value(etcd, key1) is None
        # A commits its lower id after a higher one was forwarded and deleted.
    assert db.committed_ids(key1) == [a_id]
    assert forwarder.drain_once() == 1
    assert etcd_value(etcd, key1) == "v1"
    assert etcd_value(etcd, key2) == "v2"
    assert forwarder.store.pending() == 0
