import threading
import time

from networking_vpp.agent.queue import WorkQueue


def test_dedup_and_order():
    q = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        q.add(key)
    assert q.ready() == 3
    got = [q.get(timeout=0) for _ in range(3)]
    assert got == ["a", "b", "c"]
    assert q.ready() == 0 and len(q) == 3  # in hand, not waiting
    assert q.get(timeout=0) is None


def test_failed_key_backs_off_without_blocking_others():
    q = WorkQueue(base_delay=0.2)
    q.add("bad")
    q.add("good")
    assert q.get(timeout=0) == "bad"
    assert q.done("bad", ok=False) == 0.2
    assert q.get(timeout=0) == "good"
    q.done("good", ok=True)
    assert q.get(timeout=0.01) is None  # "bad" is not due yet
    start = time.monotonic()
    assert q.get(timeout=2) == "bad"
    assert time.monotonic() - start >= 0.1
    assert q.done("bad", ok=False) == 0.4  # exponential
    assert q.failures("bad") == 2


def test_key_added_while_active_runs_again_after():
    q = WorkQueue()
    q.add("k")
    assert q.get(timeout=0) == "k"
    q.add("k")  # changed while being worked on
    assert q.get(timeout=0) is None  # never handed out twice at once
    q.done("k", ok=True)
    assert q.get(timeout=0) == "k"


def test_idle_and_close_wakes_waiting_worker():
    q = WorkQueue()
    assert q.idle()
    q.add("x")
    assert not q.idle()
    assert q.get(timeout=0) == "x"
    assert not q.idle()  # being worked on
    q.done("x", ok=True)
    assert q.idle()
    result = []
    t = threading.Thread(target=lambda: result.append(q.get()))
    t.start()
    q.close()
    t.join(2)
    assert result == [None]


def test_add_first_jumps_the_queue():
    q = WorkQueue()
    q.add_all(["a", "b"])
    q.add_first("resync")
    q.add_first("b")  # already waiting: moved to the front
    assert [q.get(timeout=0) for _ in range(3)] == ["b", "resync", "a"]
