"""The status command's pure parts: which schema a key has, and a host's health from KVs."""

from __future__ import annotations

from networking_vpp.cli import decode, health
from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import KV
from tests.unit.common import test_model

K = keys.KeySpace()


def kv(key: str, value: object) -> KV:
    raw = value if isinstance(value, bytes) else model.encode(value).encode()
    return KV(key, raw, 1, 1, 0)


def test_schema_for_every_kind_of_key():
    assert decode.schema_for(K, K.port("h", "p")) is model.PortBinding
    assert decode.schema_for(K, K.alive("h")) is model.HostAlive
    assert decode.schema_for(K, K.summary("h")) is model.HostSummary
    assert decode.schema_for(K, K.physnet("h", "physnet1")) is model.HostPhysnet
    assert decode.schema_for(K, K.port_state("h", "p")) is model.PortState
    assert decode.schema_for(K, K.secgroup("sg")) is model.SecurityGroup
    assert decode.schema_for(K, K.remote_group_member("sg", "p")) is model.RemoteGroupMember
    assert decode.schema_for(K, K.election("forwarder")) is None
    assert decode.decode_value(K, K.election("forwarder"), b"host:1") == {"raw": "host:1"}


def test_bad_values_and_summary_disagreements_are_reported():
    state = [
        kv(K.alive("h"), model.HostAlive("h", "1", 0.0)),
        kv(K.summary("h"), model.HostSummary("h", desired=2, programmed=2, active=1)),
        kv(K.port_state("h", "p1"), model.PortState("p1", "b1", "active")),
    ]
    nodes = [kv(K.port("h", "p2"), b"{}"), kv(f"{K.host_prefix('h')}routers/ha", b"1")]
    (h,) = health.assess(K, nodes, state)
    assert h.desired == 0 and h.orphan_reports == ["p1"]
    assert h.bad_values and "p2" in h.bad_values[0]
    assert h.drift == ["the agent sees 2 desired ports, etcd holds 0"]
    assert not h.healthy


def test_an_idle_host_without_agent_is_healthy():
    (h,) = health.assess(K, [], [kv(K.physnet("h", "physnet1"), model.HostPhysnet("p", "i"))])
    assert (h.alive, h.desired, h.healthy) == (False, 0, True)


def test_keys_the_agent_keeps_retrying_are_drift() -> None:
    binding = test_model.binding()  # port p1, binding b1
    summary = model.HostSummary(
        "h", desired=1, programmed=1, active=1, failing=("sg:web", "port:p1")
    )
    state = [
        kv(K.alive("h"), model.HostAlive("h", "1", 0.0)),
        kv(K.summary("h"), summary),
        kv(K.port_state("h", "p1"), model.PortState("p1", "b1", "active")),
    ]
    (h,) = health.assess(K, [kv(K.port("h", "p1"), binding)], state)
    assert h.drift == ["2 keys failing in the agent, retried: sg:web, port:p1"]
    assert not h.healthy
