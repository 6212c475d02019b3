"""A 3-member cluster: the client and the watcher fail over when their member dies."""

from __future__ import annotations

import threading

from networking_vpp.common.etcd.client import EtcdClient, EtcdError
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.testing.etcd import EtcdCluster
from networking_vpp.testing.wait import wait_for

from .conftest import Mirror, server_contents

P = "/nvpp/cluster/"


def test_kill_the_member_in_use_client_and_watcher_fail_over(etcd_cluster: EtcdCluster) -> None:
    # Point the client at the leader first, so its death also costs an election.
    leader = etcd_cluster.leader_index()
    endpoints = etcd_cluster.endpoints
    endpoints = endpoints[leader:] + endpoints[:leader]
    client = EtcdClient(etcd_cluster.settings(endpoints=endpoints, timeout=2))
    client.delete_prefix(P)
    mirror = Mirror()
    watcher = PrefixWatcher(client, P, mirror.on_load, mirror.on_events, idle_timeout=5)
    writer = EtcdClient(etcd_cluster.settings(timeout=1))
    written: list[int] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            try:
                written.append(writer.put(P + f"k{i % 40}", f"v{i}"))
                i += 1
            except EtcdError:
                stop.wait(0.02)

    thread = threading.Thread(target=write, daemon=True)
    watcher.start()
    try:
        assert watcher.wait_loaded(10)
        thread.start()
        wait_for(lambda: len(mirror.events) > 30, what="events flowing")
        assert client.endpoint == etcd_cluster.endpoints[leader]
        etcd_cluster.kill(leader)
        before = len(written)
        wait_for(lambda: len(written) > before + 50, timeout=15, what="writes without a member")
        client.put(P + "direct", "x")  # the client itself fails over too
        assert client.endpoint != etcd_cluster.endpoints[leader]
        assert client.transport.failovers >= 1
        etcd_cluster.restart(leader)
        wait_for(lambda: len(written) > before + 100, timeout=15, what="writes after restart")
    finally:
        stop.set()
        thread.join(10)
    try:
        final = max(written)
        wait_for(lambda: watcher.last_revision >= final, timeout=15, what="watcher caught up")
        assert watcher.loads == 1 and watcher.reconnects >= 1
        assert mirror.snapshot() == server_contents(client, P)
        revs = [e.mod_revision for e in mirror.events]
        assert revs == sorted(revs) and len(revs) == len(set(revs))
        assert set(written) <= set(revs)
    finally:
        watcher.stop()


def test_watch_on_a_member_without_quorum_is_dropped_and_resumes(
    etcd_cluster: EtcdCluster,
) -> None:
    # The watcher talks to member 0 only; 1 and 2 die, so 0 has no leader. Without the
    # "hasleader" requirement its stream would stay open and silent.
    client = EtcdClient(etcd_cluster.settings(endpoints=etcd_cluster.endpoints[:1], timeout=1))
    client.delete_prefix(P)
    mirror = Mirror()
    watcher = PrefixWatcher(client, P, mirror.on_load, mirror.on_events, idle_timeout=60)
    watcher.start()
    try:
        assert watcher.wait_loaded(10)
        wait_for(lambda: watcher.connected, what="stream up")
        etcd_cluster.kill(1)
        etcd_cluster.kill(2)
        wait_for(lambda: not watcher.connected, timeout=10, what="stream dropped (no leader)")
        etcd_cluster.restart(1, wait=False)
        etcd_cluster.restart(2)
        last = EtcdClient(etcd_cluster.settings()).put(P + "back", "1")
        wait_for(lambda: watcher.last_revision >= last, timeout=15, what="watch resumed")
        assert mirror.snapshot() == {P + "back": b"1"} and watcher.loads == 1
    finally:
        watcher.stop()
