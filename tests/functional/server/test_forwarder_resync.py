"""The forwarder runs the full resync in its own thread, while leading, between batches.

A recording syncer stands in for :class:`networking_vpp.server.sync.Resync`
(which needs Neutron); the journal is an SQLite file, etcd is real.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from networking_vpp.common import keys
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient, EtcdUnavailable
from networking_vpp.server.journal.forwarder import Forwarder, wait_drained
from networking_vpp.testing.journal import JournalDb
from networking_vpp.testing.wait import wait_for

K = keys.KeySpace()


class RecordingSyncer:
    """Notes each call: its thread, the journal's backlog then, and whether the guard holds."""

    def __init__(self, db: JournalDb, client: EtcdClient) -> None:
        self.db = db
        self.client = client
        self.calls: list[dict[str, Any]] = []
        self.fail_with: list[BaseException] = []

    def __call__(self, guard: Callable[[], dict[str, Any]]) -> str:
        compare = guard()
        resp = self.client.txn([compare], [codec.put_op(K.port("h", "synced"), "1")])
        self.calls.append(
            {
                "thread": threading.current_thread().name,
                "pending": self.db.store.pending(),
                "guard_held": resp["succeeded"],
            }
        )
        if self.fail_with:
            raise self.fail_with.pop(0)
        return "report"


@pytest.fixture
def db(tmp_path) -> Iterator[JournalDb]:
    journal = JournalDb(str(tmp_path / "journal.sqlite"))
    yield journal
    journal.close()


@pytest.fixture
def make(db: JournalDb, etcd: EtcdClient, etcd_server) -> Iterator:
    made: list[Forwarder] = []

    def factory(**kw: Any) -> tuple[Forwarder, RecordingSyncer]:
        client = EtcdClient(etcd_server.settings(timeout=2.0))
        syncer = RecordingSyncer(db, client)
        kw.setdefault("poll_interval", 0.2)
        kw.setdefault("retry_interval", 0.05)
        fw = Forwarder(db.store, client, K, election_ttl=2, syncer=syncer, **kw)
        made.append(fw)
        return fw, syncer

    yield factory
    for fw in made:
        fw.stop()


def test_resync_on_election_after_the_backlog_drains(make, db: JournalDb, etcd: EtcdClient):
    db.write([(K.port("h", f"p{n}"), "v") for n in range(50)])
    fw, syncer = make(batch_size=10)
    fw.start()
    wait_for(lambda: syncer.calls, 10, "the resync on election")
    assert syncer.calls == [{"thread": "vpp-forwarder", "pending": 0, "guard_held": True}]
    assert fw.resyncs == 1 and fw.last_resync == "report"
    assert etcd.get(K.port("h", "synced")) is not None
    # Rows after the resync are still forwarded; no second resync without a reason.
    db.write([(K.port("h", "late"), "v")])
    fw.kick()
    assert wait_drained(fw, 5)
    assert len(syncer.calls) == 1


def test_no_resync_on_election_when_disabled(make, db: JournalDb):
    fw, syncer = make(sync_on_election=False)
    fw.start()
    db.write([(K.port("h", "p"), "v")])
    fw.kick()
    assert wait_drained(fw, 5)
    assert syncer.calls == []
    fw.request_resync()  # on demand still works
    wait_for(lambda: syncer.calls, 5, "the requested resync")


def test_periodic_resync(make):
    fw, syncer = make(sync_on_election=False, sync_interval=0.3)
    fw.start()
    wait_for(lambda: len(syncer.calls) >= 3, 10, "three periodic resyncs")


def test_a_failing_resync_does_not_stop_the_journal(make, db: JournalDb, etcd: EtcdClient):
    fw, syncer = make()
    syncer.fail_with = [RuntimeError("a bug in the resync")]
    fw.start()
    wait_for(lambda: syncer.calls, 5, "the resync on election")
    db.write([(K.port("h", "after"), "v")])
    fw.kick()
    assert wait_drained(fw, 5)
    assert etcd.get(K.port("h", "after")) is not None
    assert len(syncer.calls) == 1  # not retried in a loop: it waits for its next turn


def test_resync_retried_after_etcd_errors(make):
    fw, syncer = make()
    syncer.fail_with = [EtcdUnavailable("etcd went away")]
    fw.start()
    wait_for(lambda: len(syncer.calls) >= 2, 10, "the resync to be retried")
    assert fw.resyncs == 1


def test_only_the_leader_resyncs(make):
    first, first_syncer = make()
    first.start()
    wait_for(lambda: first_syncer.calls, 5, "the leader's resync")
    second, second_syncer = make()
    second.start()
    second.request_resync()  # not leading: nothing happens
    first.stop()  # resigns: the second one leads and resyncs
    wait_for(lambda: second_syncer.calls, 10, "the new leader's resync")
    assert second_syncer.calls[0]["guard_held"]
