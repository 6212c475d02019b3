"""The gateway JSON dialect and other pure parts of the etcd layer (no etcd needed)."""

from __future__ import annotations

import json

import pytest

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.errors import (
    EtcdAuthError,
    EtcdCompacted,
    EtcdError,
    EtcdNotFound,
    EtcdUnavailable,
)
from networking_vpp.common.etcd.settings import EtcdSettings
from networking_vpp.common.etcd.stream import parse_line
from networking_vpp.common.etcd.transport import error_from_reply
from networking_vpp.common.retry import Backoff


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("/a/", b"/a0"),
        (b"a\xff", b"b"),
        ("aÿ", b"a\xc3\xc0"),
        ("", b"\0"),
        (b"\xff\xff", b"\0"),
        (b"a\xff\xff", b"b"),
    ],
)
def test_prefix_range_end(prefix, end) -> None:
    assert codec.prefix_range_end(prefix) == end


def test_keys_that_are_not_utf8_round_trip() -> None:
    raw = b"/k/\xff\xfe"
    key = codec.decode_key(codec.b64(raw))
    assert codec.to_bytes(key) == raw


def test_parse_kv_defaults() -> None:
    kv = codec.parse_kv({"key": codec.b64("/a"), "mod_revision": "7"})
    assert kv == codec.KV("/a", b"", 7, 0, 0, 0)


def test_txn_encoding_and_decoding() -> None:
    op = codec.encode_request_op(codec.put_op("/a", "v", lease=5))
    assert op == {"request_put": {"key": codec.b64("/a"), "value": codec.b64("v"), "lease": 5}}
    cmp = codec.encode_compare(codec.compare("/a", "VALUE", "EQUAL", "v"))
    assert cmp["value"] == codec.b64("v") and cmp["target"] == "VALUE"
    resp = codec.decode_txn_response(
        {
            "header": {"revision": "9"},
            "responses": [
                {"response_range": {"kvs": [{"key": codec.b64("/a")}], "count": "1"}},
                {"response_delete_range": {}},
            ],
        }
    )
    assert resp["succeeded"] is False and resp["header"]["revision"] == 9
    assert resp["responses"][0]["response_range"]["kvs"][0].key == "/a"
    assert resp["responses"][1]["response_delete_range"]["deleted"] == 0


def test_watch_lines() -> None:
    line = {
        "result": {
            "events": [
                {"kv": {"key": codec.b64("/a"), "value": codec.b64("x"), "mod_revision": "3"}},
                {"type": "DELETE", "kv": {"key": codec.b64("/a"), "mod_revision": "4"}},
            ]
        }
    }
    reply = parse_line(json.dumps(line).encode())
    assert [(e.kind, e.value, e.mod_revision) for e in reply.events] == [
        ("put", b"x", 3),
        ("delete", None, 4),
    ]
    compacted = parse_line(b'{"result":{"canceled":true,"compact_revision":"12"}}')
    assert compacted.canceled and compacted.compact_revision == 12
    with pytest.raises(EtcdUnavailable):
        parse_line(b'{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}')
    with pytest.raises(ValueError):
        parse_line(b'{"result": {"ev')


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"message": "etcdserver: mvcc: required revision has been compacted"}, EtcdCompacted),
        (404, {"message": "etcdserver: requested lease not found", "code": 5}, EtcdNotFound),
        (401, {"message": "etcdserver: invalid auth token", "code": 16}, EtcdAuthError),
        (403, {"message": "etcdserver: permission denied", "code": 7}, EtcdAuthError),
        (503, {"error": {"grpc_code": 14, "message": "etcdserver: no leader"}}, EtcdUnavailable),
        (400, {"message": "etcdserver: duplicate key given in txn request"}, EtcdError),
        (502, None, EtcdError),
    ],
)
def test_error_mapping(status, body, kind) -> None:
    error = error_from_reply(status, "text", body)
    assert type(error) is kind and error.status == status


def test_settings_validation() -> None:
    s = EtcdSettings(endpoints="127.0.0.1:2379")  # type: ignore[arg-type]
    assert s.endpoints == ["http://127.0.0.1:2379"]
    with pytest.raises(ValueError):
        EtcdSettings(endpoints=[])
    with pytest.raises(ValueError):
        EtcdSettings(endpoints=["http://a:1"], cert_file="c")


def test_backoff_grows_is_capped_and_resets() -> None:
    b = Backoff(base=0.1, cap=1.0)
    delays = [b.next_delay() for _ in range(10)]
    assert 0.05 <= delays[0] <= 0.1 and max(delays) <= 1.0 and delays[-1] >= 0.5
    b.reset()
    assert b.next_delay() <= 0.1
