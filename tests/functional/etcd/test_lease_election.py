"""LeasedKeys and Election against a real etcd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.election import Election
from networking_vpp.common.etcd.lease import LeasedKeys
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.wait import wait_for

KEY = "/nvpp/election/forwarder"


def test_keepalive_keeps_keys_past_their_ttl(etcd: EtcdClient) -> None:
    keys = LeasedKeys(etcd, ttl=1)
    keys.put("/nvpp/state/h1/alive", "1")
    keys.start()
    try:
        kv = etcd.get("/nvpp/state/h1/alive")
        assert kv is not None and kv.lease == keys.lease_id != 0
        until = time.monotonic() + 2.5  # two and a half TTLs
        while time.monotonic() < until:
            assert etcd.get("/nvpp/state/h1/alive") is not None
            time.sleep(0.1)
        keys.put("/nvpp/state/h1/physnets/p1", "x")  # added later: same lease
        kv = etcd.get("/nvpp/state/h1/physnets/p1")
        assert kv is not None and kv.lease == keys.lease_id
        assert keys.regrants == 0
    finally:
        keys.stop(revoke=True)
    assert etcd.get_prefix("/nvpp/state/")[0] == []


def test_lost_lease_is_regranted_and_keys_put_again(etcd: EtcdClient) -> None:
    keys = LeasedKeys(etcd, ttl=2)
    keys.put("/nvpp/state/h1/alive", "1")
    keys.put("/nvpp/state/h1/physnets/p1", "x")
    keys.start()
    try:
        first = keys.lease_id
        etcd.lease_revoke(first)  # behind its back: both keys vanish
        wait_for(lambda: keys.regrants == 1, what="re-grant")
        wait_for(lambda: len(etcd.get_prefix("/nvpp/state/h1/")[0]) == 2, what="keys written again")
        kvs, _ = etcd.get_prefix("/nvpp/state/h1/")
        assert {kv.lease for kv in kvs} == {keys.lease_id} and keys.lease_id != first
        keys.delete("/nvpp/state/h1/physnets/p1")
        etcd.lease_revoke(keys.lease_id)
        wait_for(lambda: keys.regrants == 2, what="second re-grant")
        wait_for(lambda: etcd.get("/nvpp/state/h1/alive"), what="alive again")
        assert etcd.get("/nvpp/state/h1/physnets/p1") is None  # deleted keys stay deleted
    finally:
        keys.stop(revoke=False)
    assert etcd.get("/nvpp/state/h1/alive") is not None  # until the TTL runs out


def test_leased_keys_survive_an_etcd_restart(etcd: EtcdClient, etcd_server: EtcdServer) -> None:
    keys = LeasedKeys(EtcdClient(etcd_server.settings(timeout=1.0)), ttl=2)
    keys.put("/nvpp/state/h2/alive", "1")
    keys.start()
    try:
        etcd_server.kill()
        etcd_server.restart()
        until = time.monotonic() + 3  # longer than the TTL
        while time.monotonic() < until:
            assert etcd.get("/nvpp/state/h2/alive") is not None
            time.sleep(0.1)
    finally:
        keys.stop()
    assert etcd.get("/nvpp/state/h2/alive") is None


def test_a_delete_etcd_missed_is_retried(etcd: EtcdClient, etcd_server: EtcdServer) -> None:
    # The lease outlives the outage: a delete that failed would leave the key
    # for as long as the process runs (an agent's alive key while VPP is away).
    keys = LeasedKeys(EtcdClient(etcd_server.settings(timeout=1.0)), ttl=2)
    keys.put("/nvpp/state/h3/alive", "1")
    keys.start()
    try:
        etcd_server.kill()
        keys.delete("/nvpp/state/h3/alive")
        etcd_server.restart()
        wait_for(lambda: etcd.get("/nvpp/state/h3/alive") is None, what="the delete retried")
        assert keys.regrants == 0  # the same lease: the key went by the delete
    finally:
        keys.stop()


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []

    def elected(self) -> None:
        self.log.append("elected")

    def lost(self) -> None:
        self.log.append("lost")


def test_one_leader_and_prompt_takeover_on_stop(etcd: EtcdClient) -> None:
    a_rec, b_rec = Recorder(), Recorder()
    a = Election(etcd, KEY, "a", ttl=2, on_elected=a_rec.elected, on_lost=a_rec.lost)
    b = Election(etcd, KEY, "b", ttl=2, on_elected=b_rec.elected, on_lost=b_rec.lost)
    a.start()
    assert a.wait_leader(5)
    b.start()
    try:
        assert not b.wait_leader(1.0)
        kv = etcd.get(KEY)
        assert kv is not None and kv.value == b"a"
        started = time.monotonic()
        a.stop()  # resigns: revokes its lease
        assert b.wait_leader(2)
        assert time.monotonic() - started < 1.5
        assert a_rec.log == ["elected", "lost"] and b_rec.log == ["elected"]
        kv = etcd.get(KEY)
        assert kv is not None and kv.value == b"b"
    finally:
        a.stop()
        b.stop()
    assert etcd.get(KEY) is None


def test_leader_that_loses_its_lease_steps_down_then_campaigns(etcd: EtcdClient) -> None:
    rec = Recorder()

    def boom() -> None:
        rec.elected()
        raise RuntimeError("a failing callback does not end the election")

    a = Election(etcd, KEY, "a", ttl=2, on_elected=boom, on_lost=rec.lost)
    a.start()
    try:
        assert a.wait_leader(5)
        etcd.lease_revoke(a.lease_id)
        wait_for(lambda: rec.log == ["elected", "lost", "elected"], what="lost then re-elected")
        assert a.is_leader and a.terms == 2
    finally:
        a.stop()


_CANDIDATE = """
import sys, time
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.election import Election
e = Election(EtcdClient(EtcdSettings([sys.argv[1]])), sys.argv[2], "doomed", ttl=2)
e.start()
if e.wait_leader(10):
    print("LEADER", flush=True)
time.sleep(60)
"""


def test_sigkilled_leader_is_replaced_within_the_ttl(
    etcd: EtcdClient, etcd_server: EtcdServer
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CANDIDATE, etcd_server.endpoint, KEY],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    b = Election(etcd, KEY, "b", ttl=2)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"LEADER"
        b.start()
        assert not b.wait_leader(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        started = time.monotonic()
        assert b.wait_leader(5)
        assert time.monotonic() - started < 3.5  # TTL 2 s plus etcd's expiry granularity
    finally:
        proc.kill()
        proc.wait()
        b.stop()
