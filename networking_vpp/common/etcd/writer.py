"""Batched, order-preserving writes: the journal forwarder's way into etcd.

Ops are cut into consecutive transactions of at most :data:`MAX_TXN_OPS` operations (etcd's
``--max-txn-ops`` default). Each transaction is a contiguous run of the input, so after a
crash the store holds some prefix of the batch, and replaying the batch (plain puts and
deletes are idempotent) converges. Within one transaction etcd refuses two operations on the
same key, and all operations apply at once anyway, so only the last op per key is sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient

MAX_TXN_OPS = 128
# etcd refuses requests over 1.5 MiB (--max-request-bytes); stay well below with the base64.
MAX_TXN_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Put:
    """Set ``key`` to ``value`` (optionally under a lease)."""

    key: str
    value: str
    lease: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``key`` (absent is fine)."""

    key: str


Op = Put | Delete


def _request(op: Op) -> dict[str, Any]:
    if type(op) is Put:
        return codec.put_op(op.key, op.value, op.lease)
    if type(op) is Delete:
        return codec.delete_op(op.key)
    raise TypeError(f"not a Put or Delete: {op!r}")


def _size(op: Op) -> int:
    key, value = op.key, op.value if type(op) is Put else ""
    # base64 grows by 4/3; a little slack for the JSON around it. (ASCII text, the
    # usual case, is as long in bytes as in characters: no need to encode it.)
    size = len(key) if key.isascii() else len(codec.to_bytes(key))
    size += len(value) if value.isascii() else len(codec.to_bytes(value))
    return size * 4 // 3 + 64


def plan_transactions(ops: Sequence[Op], max_ops: int = MAX_TXN_OPS) -> list[tuple[list[Op], int]]:
    """Cut ``ops`` into transactions: ``[(ops to send, input ops they cover), ...]``.

    A transaction is closed when one more distinct key would exceed ``max_ops``
    operations or :data:`MAX_TXN_BYTES`; a repeated key replaces its earlier op in place.
    """
    plan: list[tuple[list[Op], int]] = []
    current: dict[str, Op] = {}
    covered = size = 0
    for op in ops:
        if type(op) is not Put and type(op) is not Delete:
            raise TypeError(f"not a Put or Delete: {op!r}")
        op_size = _size(op)
        if (
            op.key not in current
            and current
            and (len(current) >= max_ops or size + op_size > MAX_TXN_BYTES)
        ):
            plan.append((list(current.values()), covered))
            current, covered, size = {}, 0, 0
        current[op.key] = op
        covered += 1
        size += op_size
    if current:
        plan.append((list(current.values()), covered))
    return plan


def write_batch(
    client: EtcdClient,
    ops: Sequence[Op],
    on_txn: Callable[[int, int], None] | None = None,
) -> int:
    """Apply ``ops`` in order; returns the revision of the last transaction (0 if no ops).

    ``on_txn(ops_done, revision)`` is called after each committed transaction, with the
    number of input ops applied so far: a journal can drop those rows before the next one.
    An :class:`EtcdError` leaves the earlier transactions applied and the rest not.
    """
    revision = done = 0
    for batch, covered in plan_transactions(ops):
        resp = client.txn([], [_request(op) for op in batch])
        revision = int(resp["header"]["revision"])
        done += covered
        if on_txn is not None:
            on_txn(done, revision)
    return revision


def put_json(key: str, value: Any, lease: int | None = None) -> Put:
    """A :class:`Put` of a JSON document (compact, keys sorted: equal values, equal bytes)."""
    return Put(key, json.dumps(value, sort_keys=True, separators=(",", ":")), lease)
