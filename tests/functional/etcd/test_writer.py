"""write_batch: order, transaction sizes, duplicate keys, progress callbacks."""

from __future__ import annotations

import random

import pytest

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.writer import (
    MAX_TXN_OPS,
    Delete,
    Put,
    plan_transactions,
    put_json,
    write_batch,
)

from .conftest import server_contents


class CountingClient:
    """Wraps a client to record the size of every transaction it sends."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self.sizes: list[int] = []

    def txn(self, compare, success, failure=None):
        self.sizes.append(len(success))
        keys = [next(iter(op.values()))["key"] for op in success]
        assert len(keys) == len(set(keys)), "a key twice in one transaction"
        return self.client.txn(compare, success, failure)


def test_thousand_ops_later_op_on_a_key_wins(etcd: EtcdClient) -> None:
    rng = random.Random(7)
    ops: list[Put | Delete] = []
    expected: dict[str, bytes] = {}
    for i in range(1000):
        key = f"/w/{rng.randrange(300):03d}"  # many repeats, inside and across transactions
        if rng.random() < 0.2:
            ops.append(Delete(key))
            expected.pop(key, None)
        else:
            ops.append(Put(key, f"v{i}"))
            expected[key] = f"v{i}".encode()
    counting = CountingClient(etcd)
    done: list[tuple[int, int]] = []
    rev = write_batch(counting, ops, on_txn=lambda n, r: done.append((n, r)))  # type: ignore[arg-type]
    assert server_contents(etcd, "/w/") == expected
    assert all(0 < size <= MAX_TXN_OPS for size in counting.sizes)
    assert len(counting.sizes) >= 1000 // 300  # 300 distinct keys cannot fit one transaction
    assert done[-1] == (1000, rev) and rev == etcd.current_revision()
    assert [n for n, _ in done] == sorted(n for n, _ in done)


def test_each_transaction_is_a_contiguous_run_of_the_input() -> None:
    ops = [Put(f"/k/{i}", "a") for i in range(300)] + [Delete("/k/5"), Put("/k/5", "b")]
    plan = plan_transactions(ops)
    assert [covered for _, covered in plan] == [128, 128, 46]
    assert sum(covered for _, covered in plan) == len(ops)
    last = plan[-1][0]
    assert last[-1] == Put("/k/5", "b") and Delete("/k/5") not in last


def test_put_then_delete_in_one_transaction_deletes(etcd: EtcdClient) -> None:
    etcd.put("/w/x", "old")
    write_batch(etcd, [Put("/w/x", "1"), Put("/w/y", "1"), Delete("/w/x")])
    assert server_contents(etcd, "/w/") == {"/w/y": b"1"}


def test_big_values_split_by_size(etcd: EtcdClient) -> None:
    big = "x" * 200_000  # 10 of these exceed what one etcd request may carry
    ops = [Put(f"/w/big{i}", big) for i in range(10)]
    assert len(plan_transactions(ops)) > 1
    write_batch(etcd, ops)
    assert len(server_contents(etcd, "/w/")) == 10


def test_empty_batch_and_bad_ops(etcd: EtcdClient) -> None:
    assert write_batch(etcd, []) == 0
    with pytest.raises(TypeError):
        write_batch(etcd, ["/w/not-an-op"])  # type: ignore[list-item]
    assert put_json("/w/j", {"b": 1, "a": [1]}).value == '{"a":[1],"b":1}'


def test_leased_put_in_a_batch(etcd: EtcdClient) -> None:
    lease = etcd.lease_grant(30)
    write_batch(etcd, [Put("/w/leased", "x", lease=lease)])
    kv = etcd.get("/w/leased")
    assert kv is not None and kv.lease == lease
    etcd.lease_revoke(lease)
    assert etcd.get("/w/leased") is None
