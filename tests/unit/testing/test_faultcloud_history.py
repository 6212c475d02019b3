"""The fault suite's order check: committed journal writes against etcd's history."""

from __future__ import annotations

from networking_vpp.common.etcd.stream import Event
from networking_vpp.testing.faultcloud.history import check_order

K = "/networking-vpp/nodes/h/ports/p"


def put(value: str, rev: int, key: str = K) -> Event:
    return Event("put", key, value.encode(), rev)


def delete(rev: int, key: str = K) -> Event:
    return Event("delete", key, None, rev)


def committed(*values: str | None, key: str = K) -> list[tuple[int, str, str | None]]:
    return [(100 + i, key, v) for i, v in enumerate(values)]


def test_every_write_in_order_is_ok():
    report = check_order(committed("a", "b", None), [put("a", 1), put("b", 2), delete(3)], {})
    assert report.ok and report.superseded == 0 and report.applied == 3


def test_a_value_superseded_in_a_batch_may_be_skipped():
    report = check_order(committed("a", "b", "c"), [put("a", 1), put("c", 2)], {K: b"c"})
    assert report.ok and report.superseded == 1


def test_a_batch_sent_again_repeats_its_writes():
    report = check_order(committed("a", "b"), [put("a", 1), put("b", 2), put("b", 3)], {K: b"b"})
    assert report.ok and report.replayed == 1


def test_an_older_value_after_a_newer_one_is_a_reordering():
    report = check_order(committed("a", "b"), [put("b", 1), put("a", 2)], {K: b"a"})
    assert len(report.reordered) == 1 and "v1@1 v0@2" in report.reordered[0]
    assert K in report.details


def test_etcd_not_ending_on_the_last_committed_write_is_a_loss():
    report = check_order(committed("a", None), [put("a", 1)], {K: b"a"})
    assert len(report.lost) == 1 and not report.reordered


def test_a_write_nobody_committed_is_reported():
    report = check_order([], [put("x", 1)], {K: b"x"})
    assert len(report.reordered) == 1 and "unknown:" in report.reordered[0]
