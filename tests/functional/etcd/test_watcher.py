"""PrefixWatcher against a real etcd: live events, SIGKILL/restart, compaction, bad callbacks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from networking_vpp.common.etcd.client import EtcdClient, EtcdError, EtcdSettings
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.proxy import TcpProxy
from networking_vpp.testing.wait import wait_for

from .conftest import Mirror, server_contents

P = "/nvpp/w/"


@pytest.fixture
def watchers() -> Iterator[list[PrefixWatcher]]:
    started: list[PrefixWatcher] = []
    yield started
    for w in started:
        w.stop()


def start(client: EtcdClient, mirror: Mirror, watchers: list, **kw) -> PrefixWatcher:
    w = PrefixWatcher(client, P, mirror.on_load, mirror.on_events, name="test", **kw)
    watchers.append(w)
    w.start()
    assert w.wait_loaded(10)
    return w


def assert_no_duplicates(mirror: Mirror) -> None:
    revs = [e.mod_revision for e in mirror.events]
    assert revs == sorted(revs), "events out of order"
    # One key per write here, so a repeated revision means a repeated event.
    assert len(revs) == len(set(revs)), "duplicate events"


def test_load_then_live_events(etcd: EtcdClient, watchers) -> None:
    write_batch(etcd, [Put(P + f"old{i}", "o") for i in range(5)])
    etcd.put("/nvpp/other", "not ours")
    mirror = Mirror()
    w = start(etcd, mirror, watchers)
    assert mirror.loads == [w.last_revision] and len(mirror.data) == 5
    etcd.put(P + "new", "n")
    etcd.delete(P + "old0")
    last = etcd.put(P + "old1", "changed")
    etcd.put("/nvpp/other", "still not ours")
    wait_for(lambda: w.last_revision == last, what="events")
    assert mirror.snapshot() == server_contents(etcd, P)
    assert [e.kind for e in mirror.events] == ["put", "delete", "put"]
    assert mirror.events[1].value is None
    assert w.loads == 1 and w.connected


def test_a_raising_callback_does_not_stop_the_watch(etcd: EtcdClient, watchers) -> None:
    mirror = Mirror()

    def on_events(events):
        mirror.on_events(events)
        if any(e.key.endswith("poison") for e in events):
            raise ValueError("bad input")

    def on_load(snapshot, revision):
        mirror.on_load(snapshot, revision)
        raise RuntimeError("a bad load is logged too")

    w = PrefixWatcher(etcd, P, on_load, on_events, name="test")
    watchers.append(w)
    w.start()
    assert w.wait_loaded(10)
    etcd.put(P + "poison", "x")
    last = etcd.put(P + "fine", "y")
    wait_for(lambda: w.last_revision == last, what="event after the poison")
    assert w.callback_errors == 2 and w.running
    assert mirror.snapshot() == server_contents(etcd, P)


def test_stop_is_prompt_even_on_a_quiet_stream(etcd: EtcdClient) -> None:
    w = PrefixWatcher(etcd, P, Mirror().on_load, Mirror().on_events, idle_timeout=300)
    w.start()
    assert w.wait_loaded(10)
    wait_for(lambda: w.connected, what="stream up")
    w.stop(timeout=3)
    assert not w.running


def test_sigkill_and_restart_under_a_writer_loses_and_repeats_nothing(
    etcd: EtcdClient, etcd_server: EtcdServer, watchers
) -> None:
    mirror = Mirror()
    w = start(etcd, mirror, watchers, idle_timeout=5)
    writer = EtcdClient(etcd_server.settings(timeout=1.0))
    written: list[int] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            key = P + f"k{i % 50}"
            try:
                if i % 7 == 3:
                    writer.delete(key)
                else:
                    written.append(writer.put(key, f"v{i}"))
                i += 1
            except EtcdError:
                stop.wait(0.02)  # etcd is down: the writer keeps trying

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(mirror.events) > 50, what="events flowing")
        etcd_server.kill()
        before = len(written)
        etcd_server.restart()
        wait_for(lambda: len(written) > before + 100, what="writes after the restart")
    finally:
        stop.set()
        thread.join(10)
    # The last operation may be a delete (whose revision the writer does not
    # record), so wait for the contents themselves, not for a revision.
    wait_for(lambda: mirror.snapshot() == server_contents(etcd, P), what="watcher caught up")
    assert w.reconnects >= 1 and w.loads == 1
    assert set(written) <= {e.mod_revision for e in mirror.events}
    assert_no_duplicates(mirror)


def test_compaction_while_disconnected_reloads_once(
    etcd: EtcdClient, etcd_server: EtcdServer, watchers
) -> None:
    port = int(etcd_server.endpoint.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    try:
        agent = EtcdClient(EtcdSettings(endpoints=[proxy.endpoint], timeout=1.0))
        write_batch(etcd, [Put(P + f"k{i}", "0") for i in range(100)])
        mirror = Mirror()
        w = start(agent, mirror, watchers, idle_timeout=5)
        wait_for(lambda: w.connected, what="stream up")
        proxy.cut()
        wait_for(lambda: not w.connected, what="watcher disconnected")
        # The world moves on: changes, deletions and a compaction past the watcher.
        write_batch(etcd, [Put(P + f"k{i}", "1") for i in range(0, 100, 2)])
        etcd.delete_prefix(P + "k1")
        etcd.compact(etcd.current_revision())
        proxy.restore()
        wait_for(lambda: w.loads == 2, timeout=15, what="a reload")
        wait_for(lambda: mirror.snapshot() == server_contents(etcd, P), what="mirror converged")
        assert P + "k10" not in mirror.snapshot() and len(mirror.loads) == 2
        last = etcd.put(P + "after", "x")
        wait_for(lambda: w.last_revision == last, what="watching again after the reload")
        assert w.loads == 2
    finally:
        proxy.close()


def test_request_reload(etcd: EtcdClient, watchers) -> None:
    mirror = Mirror()
    w = start(etcd, mirror, watchers)
    w.request_reload()
    wait_for(lambda: w.loads == 2, what="second load")
    last = etcd.put(P + "x", "1")
    wait_for(lambda: w.last_revision == last, what="watching after the reload")


def test_idle_watchdog_recreates_a_silent_stream_exactly(etcd: EtcdClient, watchers) -> None:
    mirror = Mirror()
    w = start(etcd, mirror, watchers, idle_timeout=0.3)
    first = etcd.put(P + "a", "1")
    wait_for(lambda: w.reconnects >= 3, what="streams re-created after silence")
    last = etcd.put(P + "b", "2")
    wait_for(lambda: w.last_revision == last, what="events after the re-creations")
    assert [e.mod_revision for e in mirror.events] == [first, last] and w.loads == 1
