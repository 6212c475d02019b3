"""The gateway's JSON dialect: base64 keys and values, int64 as strings, omitted defaults.

Also the building blocks of :meth:`EtcdClient.txn` requests, written with plain keys and
values; :func:`encode_request_op` and :func:`encode_compare` do the base64.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

# Keys are text in this project, but etcd keys are bytes: surrogateescape lets a key that is
# not UTF-8 (written by someone else) round-trip instead of crashing a watcher.
_KEY_ERRORS = "surrogateescape"


@dataclasses.dataclass(frozen=True, slots=True)
class KV:
    """One key-value pair as etcd stores it."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int
    version: int = 0


def to_bytes(data: str | bytes) -> bytes:
    """Text as UTF-8 (with escaped surrogates kept), bytes as they are."""
    if type(data) is str:  # the common case first: every key and value of a batch
        return data.encode("utf-8", _KEY_ERRORS)
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return str(data).encode("utf-8", _KEY_ERRORS)


def b64(data: str | bytes) -> str:
    """base64 of a key or value, as the gateway wants it."""
    raw = data.encode("utf-8", _KEY_ERRORS) if type(data) is str else to_bytes(data)
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def unb64(data: str | None) -> bytes:
    """Inverse of :func:`b64`; a missing field is the empty string."""
    return base64.b64decode(data) if data else b""


def decode_key(data: str | None) -> str:
    """A base64 key from etcd as text."""
    return unb64(data).decode("utf-8", _KEY_ERRORS)


def as_int(value: Any) -> int:
    """int64 fields come as JSON strings, and not at all when they are 0."""
    return int(value) if value not in (None, "") else 0


def prefix_range_end(prefix: str | bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``."""
    raw = bytearray(to_bytes(prefix))
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()  # 0xff cannot be incremented: the range ends after the shorter prefix
    return b"\0"  # empty prefix (or all 0xff): every key


def parse_kv(raw: dict[str, Any]) -> KV:
    """A ``mvccpb.KeyValue`` in gateway JSON -> :class:`KV`."""
    return KV(
        key=decode_key(raw.get("key")),
        value=unb64(raw.get("value")),
        mod_revision=as_int(raw.get("mod_revision")),
        create_revision=as_int(raw.get("create_revision")),
        lease=as_int(raw.get("lease")),
        version=as_int(raw.get("version")),
    )


def header_revision(resp: dict[str, Any]) -> int:
    """``header.revision`` of a response."""
    return as_int(resp.get("header", {}).get("revision"))


# --- transaction building blocks (plain keys and values) ----------------------------------
def compare(key: str, target: str, result: str, value: Any) -> dict[str, Any]:
    """One compare: ``target`` in VERSION/CREATE/MOD/VALUE/LEASE, ``result`` in
    EQUAL/GREATER/LESS/NOT_EQUAL. ``value`` is a revision, version, lease id or value."""
    field = {
        "VERSION": "version",
        "CREATE": "create_revision",
        "MOD": "mod_revision",
        "VALUE": "value",
        "LEASE": "lease",
    }[target]
    return {"key": key, "target": target, "result": result, field: value}


def put_op(key: str, value: str | bytes, lease: int | None = None) -> dict[str, Any]:
    """A ``request_put``."""
    body: dict[str, Any] = {"key": key, "value": value}
    if lease:
        body["lease"] = lease
    return {"request_put": body}


def delete_op(key: str, prefix: bool = False) -> dict[str, Any]:
    """A ``request_delete_range`` of one key, or of every key under ``key`` if ``prefix``."""
    body: dict[str, Any] = {"key": key}
    if prefix:
        body["range_end"] = prefix_range_end(key)
    return {"request_delete_range": body}


def range_op(key: str, prefix: bool = False) -> dict[str, Any]:
    """A ``request_range`` of one key (or a prefix)."""
    body: dict[str, Any] = {"key": key}
    if prefix:
        body["range_end"] = prefix_range_end(key)
    return {"request_range": body}


_BINARY_FIELDS = ("key", "range_end", "value")


def _encode_fields(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for field in _BINARY_FIELDS:
        value = out.get(field)
        if value is not None:
            out[field] = b64(value)
    return out


def encode_compare(cmp: dict[str, Any]) -> dict[str, Any]:
    """base64 the key/range_end/value of a plain compare."""
    return _encode_fields(cmp)


def encode_request_op(op: dict[str, Any]) -> dict[str, Any]:
    """base64 the binary fields of a plain ``{"request_put"|...: {...}}``."""
    out: dict[str, Any] = {}
    for kind, body in op.items():
        if kind == "request_txn":
            out[kind] = {
                "compare": [encode_compare(c) for c in body.get("compare", [])],
                "success": [encode_request_op(o) for o in body.get("success", [])],
                "failure": [encode_request_op(o) for o in body.get("failure", [])],
            }
        else:
            out[kind] = _encode_fields(body)
    return out


def decode_txn_response(resp: dict[str, Any]) -> dict[str, Any]:
    """Normalise a txn response: ``succeeded`` always present, ints as ints, KVs parsed."""
    responses = []
    for item in resp.get("responses", []):
        decoded: dict[str, Any] = {}
        for kind, body in item.items():
            body = dict(body or {})
            if kind == "response_range":
                body["kvs"] = [parse_kv(kv) for kv in body.get("kvs", [])]
                body["count"] = as_int(body.get("count"))
                body["more"] = bool(body.get("more", False))
            elif kind == "response_delete_range":
                body["deleted"] = as_int(body.get("deleted"))
            elif kind == "response_txn":
                body = decode_txn_response(body)
            decoded[kind] = body
        responses.append(decoded)
    return {
        "header": {"revision": header_revision(resp)},
        "succeeded": bool(resp.get("succeeded", False)),
        "responses": responses,
    }
