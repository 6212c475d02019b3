"""The journal forwarder against a real etcd (journal in an SQLite file)."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.server.journal.forwarder import Forwarder, Kicker, NotLeader, wait_drained
from networking_vpp.testing.journal import JournalDb, read_status
from networking_vpp.testing.wait import wait_for as wait_until

K = keys.KeySpace()
Txn = list[tuple[str, str | None]]


def _value(port: str, n: int, host: str) -> str:
    return model.encode(
        model.PortBinding(
            port_id=port,
            binding_id=f"b-{port}-{host}",
            network_id="net",
            mtu=1500,
            mac_address="fa:16:3e:00:00:01",
            network_type="vlan",
            physnet="physnet1",
            segmentation_id=100,
            binding_type="tap",
            tap=model.Tap(f"tap{port[:11]}"),
            device_id=f"v{n}",  # every write is distinguishable
        )
    )


def workload(n_txns: int, n_ports: int = 120, seed: int = 7) -> list[Txn]:
    """Port binds, updates, unbinds and rebinds, as the driver's precommits write them."""
    rng = random.Random(seed)
    hosts = [f"compute-{i}" for i in range(6)]
    where: dict[str, str | None] = {}
    txns: list[Txn] = []
    for n in range(n_txns):
        port = f"port-{rng.randrange(n_ports):04d}"
        host = where.get(port)
        r = rng.random()
        if host is None:
            host = rng.choice(hosts)
            txn: Txn = [(K.port(host, port), _value(port, n, host))]
        elif r < 0.5:
            txn = [(K.port(host, port), _value(port, n, host))]
        elif r < 0.75:
            txn, host = [(K.port(host, port), None)], None
        else:
            new = rng.choice([h for h in hosts if h != host])
            txn = [(K.port(host, port), None), (K.port(new, port), _value(port, n, new))]
            host = new
        where[port] = host
        txns.append(txn)
    return txns


def expected_state(txns: list[Txn]) -> dict[str, str]:
    state: dict[str, str] = {}
    for txn in txns:
        for key, value in txn:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def etcd_state(client: EtcdClient) -> dict[str, str]:
    kvs, _ = client.get_prefix(K.nodes_prefix())
    return {kv.key: kv.value.decode() for kv in kvs}


class Recorder:
    """Every value each key took in etcd, in revision order (None = deleted)."""

    def __init__(self, client: EtcdClient) -> None:
        self.seen: dict[str, list[str | None]] = {}
        self.watcher = PrefixWatcher(client, K.nodes_prefix(), self._load, self._events, "rec")

    def _load(self, snapshot: dict[str, bytes], rev: int) -> None:
        if not self.seen:  # first load: where each key starts
            for key, value in snapshot.items():
                self.seen[key] = [value.decode()]

    def _events(self, events) -> None:
        for e in events:
            self.seen.setdefault(e.key, []).append(None if e.value is None else e.value.decode())

    def __enter__(self) -> Recorder:
        self.watcher.start()
        assert self.watcher.wait_loaded(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.watcher.stop()


def assert_order_kept(txns: list[Txn], seen: dict[str, list[str | None]]) -> None:
    """What etcd showed for each key is a subsequence of what the journal wrote to it."""
    written: dict[str, list[str | None]] = {}
    for txn in txns:
        for key, value in txn:
            written.setdefault(key, []).append(value)
    for key, observed in seen.items():
        it = iter(written[key])
        assert all(v in it for v in observed), f"order of writes to {key} not kept"


@pytest.fixture
def db(tmp_path) -> Iterator[JournalDb]:
    journal = JournalDb(str(tmp_path / "journal.sqlite"))
    yield journal
    journal.close()


@pytest.fixture
def forwarder_factory(db: JournalDb, etcd_server) -> Iterator:
    made: list[Forwarder] = []

    def make(identity: str = "fw-1", **kw) -> Forwarder:
        client = EtcdClient(etcd_server.settings(timeout=2.0))
        kw.setdefault("batch_size", 200)
        kw.setdefault("poll_interval", 0.5)
        kw.setdefault("retry_interval", 0.1)
        kw.setdefault("election_ttl", 2)
        fw = Forwarder(db.store, client, K, identity=identity, **kw)
        made.append(fw)
        fw.start()
        return fw

    yield make
    for fw in made:
        fw.stop()


def test_thousand_mixed_operations_end_exactly_as_journaled(etcd, db, forwarder_factory):
    txns = workload(1000)
    with Recorder(etcd) as rec:
        fw = forwarder_factory(batch_size=64)  # many batches: order across batches matters
        assert fw.election.wait_leader(10)
        for start in range(0, len(txns), 50):  # rows keep arriving while it drains
            for txn in txns[start : start + 50]:
                db.write(txn)
            fw.kick()
        assert wait_drained(fw, 60)
        want = expected_state(txns)
        wait_until(lambda: etcd_state(etcd) == want, 10, "etcd to match the journal")
        # Let the recorder catch up with the last revision before checking the order.
        rev = etcd.current_revision()
        wait_until(lambda: rec.watcher.last_revision >= rev, 10, "recorder")
    assert_order_kept(txns, rec.seen)
    assert fw.rows_forwarded == sum(len(t) for t in txns)
    assert db.store.dead() == []


def test_kick_from_another_process_wakes_the_leader(etcd, db, forwarder_factory, etcd_server):
    fw = forwarder_factory(poll_interval=30.0)  # only a kick can wake it in time
    assert fw.election.wait_leader(10)
    time.sleep(0.3)  # let it settle into its long wait
    other = forwarder_factory(identity="fw-other", poll_interval=30.0)
    kicker = Kicker(EtcdClient(etcd_server.settings()), K, other)
    kicker.start()
    try:
        db.write([(K.port("h", "p1"), _value("p1", 1, "h"))])
        kicker.kick()
        wait_until(lambda: etcd.get(K.port("h", "p1")) is not None, 5, "kicked forward")
        assert kicker.sent >= 1
    finally:
        kicker.stop()


def test_etcd_down_rows_wait_and_drain_in_order(etcd, db, forwarder_factory, etcd_server):
    txns = workload(300, seed=3)
    fw = forwarder_factory(batch_size=50)
    assert fw.election.wait_leader(10)
    for txn in txns[:100]:
        db.write(txn)
    fw.kick()
    assert wait_drained(fw, 30)
    with Recorder(etcd) as rec:  # survives the etcd restart: resumes from its revision
        etcd_server.kill()
        for txn in txns[100:]:
            db.write(txn)
            fw.kick()
        time.sleep(1.5)
        assert db.store.pending() == sum(len(t) for t in txns[100:])  # nothing dropped
        etcd_server.restart()
        assert wait_drained(fw, 60)
        want = expected_state(txns)
        wait_until(lambda: etcd_state(etcd) == want, 10, "etcd to match the journal")
        rev = etcd.current_revision()
        wait_until(lambda: rec.watcher.last_revision >= rev, 10, "recorder")
    assert_order_kept(txns, rec.seen)


def test_oversized_and_refused_rows_are_set_aside(etcd, db, forwarder_factory, caplog):
    big = "x" * (model.MAX_VALUE_BYTES + 1)
    db.write([(K.port("h", "a"), "a1")])
    db.write([(K.port("h", "big"), big)])
    db.write([("", "etcd refuses an empty key")])
    db.write([(K.port("h", "b"), "b1"), (K.port("h", "a"), "a2")])
    with caplog.at_level(logging.ERROR, "networking_vpp.server.journal.forwarder"):
        fw = forwarder_factory()
        assert wait_drained(fw, 30)
    assert etcd_state(etcd) == {K.port("h", "a"): "a2", K.port("h", "b"): "b1"}
    dead = db.store.dead()
    assert [r.key for r in dead] == [K.port("h", "big"), ""]
    assert fw.rows_dead == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("can never be written" in m and "big" in m for m in errors)


# --- two forwarder processes ---------------------------------------------------------------
class ForwarderProcess:
    def __init__(self, db: JournalDb, endpoint: str, identity: str, tmp) -> None:
        self.identity = identity
        self.status_file = str(tmp / f"{identity}.json")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "networking_vpp.testing.journal",
                "--db",
                db.path,
                "--endpoint",
                endpoint,
                "--identity",
                identity,
                "--status",
                self.status_file,
                "--ttl",
                "2",
                "--batch-size",
                "100",
            ],
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
        )

    @property
    def status(self) -> dict:
        return read_status(self.status_file)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def two_processes(db, etcd_server, tmp_path) -> Iterator[list[ForwarderProcess]]:
    procs = [ForwarderProcess(db, etcd_server.endpoint, f"proc-{i}", tmp_path) for i in (1, 2)]
    try:
        wait_until(lambda: all(p.status for p in procs), 30, "both forwarders up")
        wait_until(lambda: sum(p.status.get("leader", False) for p in procs) == 1, 15, "one leader")
        yield procs
    finally:
        for p in procs:
            p.stop()


def test_two_processes_only_the_leader_writes(etcd, db, two_processes):
    txns = workload(400, seed=11)
    for txn in txns:
        db.write(txn)
    wait_until(lambda: db.store.pending() == 0, 60, "journal drained")
    wait_until(lambda: etcd_state(etcd) == expected_state(txns), 10, "etcd to match")
    time.sleep(0.2)  # one more status tick
    stats = {p.identity: p.status for p in two_processes}
    writers = [i for i, s in stats.items() if s["txns"] > 0]
    assert len(writers) == 1, stats
    assert stats[writers[0]]["leader"]
    assert etcd.get(K.election("forwarder")).value.decode() == writers[0]


def test_sigkill_of_the_leader_hands_over_without_loss(etcd, db, two_processes):
    txns = workload(1000, seed=5)
    stop = threading.Event()

    def writer() -> None:
        for txn in txns:
            if stop.is_set():
                return
            db.write(txn)
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        leader = next(p for p in two_processes if p.status["leader"])
        other = next(p for p in two_processes if p is not leader)
        wait_until(lambda: leader.status["rows"] > 100, 30, "the leader to forward rows")
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait()
        killed_at = time.monotonic()
        wait_until(lambda: other.status.get("leader"), 15, "the other to take over")
        takeover = time.monotonic() - killed_at
        thread.join(60)
        wait_until(lambda: db.store.pending() == 0, 60, "journal drained by the successor")
    finally:
        stop.set()
        thread.join()
    wait_until(lambda: etcd_state(etcd) == expected_state(txns), 10, "etcd to match")
    assert other.status["rows"] > 0
    print(f"takeover after SIGKILL: {takeover:.2f}s")
    assert takeover < 8, f"takeover took {takeover:.1f}s"


def test_a_deposed_leader_cannot_write(etcd, db, etcd_server):
    """The write guard: once the election key is not ours, no txn of ours lands."""
    fw = Forwarder(db.store, EtcdClient(etcd_server.settings()), K, identity="old", election_ttl=10)
    fw.election.start()  # campaign only: this test drives the drain itself
    try:
        assert fw.election.wait_leader(10)
        db.write([(K.port("h", "p1"), "v1")])
        assert fw.drain_once() == 1
        # Someone else holds the key now (as after our lease expired in a partition),
        # while this process still believes it leads.
        usurper = etcd.lease_grant(30)
        etcd.put(K.election("forwarder"), "new", lease=usurper)
        db.write([(K.port("h", "p1"), "v2")])
        with pytest.raises(NotLeader):
            fw.drain_once()
        assert etcd.get(K.port("h", "p1")).value == b"v1"
        assert db.store.pending() == 1  # kept for the real leader
    finally:
        fw.election.stop()
