"""EtcdClient against a real etcd: keys, paging, transactions, leases, errors, failover."""

from __future__ import annotations

import time

import pytest
from oslo_config import cfg

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import (
    EtcdClient,
    EtcdCompacted,
    EtcdSettings,
    EtcdUnavailable,
)
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import free_port


def test_put_get_delete(etcd: EtcdClient) -> None:
    rev = etcd.put("/t/a", "x")
    kv = etcd.get("/t/a")
    assert kv is not None
    assert (kv.key, kv.value, kv.mod_revision, kv.create_revision, kv.lease) == (
        "/t/a",
        b"x",
        rev,
        rev,
        0,
    )
    rev2 = etcd.put("/t/a", b"\x00\xffbinary")
    kv = etcd.get("/t/a")
    assert kv is not None and kv.value == b"\x00\xffbinary" and kv.mod_revision == rev2 > rev
    assert etcd.get("/t/missing") is None
    assert etcd.delete("/t/a") is True
    assert etcd.delete("/t/a") is False
    assert etcd.current_revision() >= rev2 + 1


def test_unicode_and_empty_values(etcd: EtcdClient) -> None:
    etcd.put("/t/ünï", "")
    kv = etcd.get("/t/ünï")
    assert kv is not None and kv.value == b"" and kv.key == "/t/ünï"


def test_prefix_paging_is_one_consistent_snapshot(etcd: EtcdClient) -> None:
    write_batch(etcd, [Put(f"/p/{i:05d}", f"v{i}") for i in range(2500)])
    etcd.put("/p0-outside", "no")  # shares the prefix's characters but not the prefix
    kvs, rev = etcd.get_prefix("/p/", page_size=1000)
    assert [kv.key for kv in kvs] == [f"/p/{i:05d}" for i in range(2500)]
    assert rev == etcd.current_revision()
    # Change the data, then read the old revision page by page: it is still the old data.
    write_batch(etcd, [Put(f"/p/{i:05d}", "new") for i in range(0, 2500, 7)])
    etcd.delete_prefix("/p/01")
    old, old_rev = etcd.get_prefix("/p/", revision=rev, page_size=333)
    assert old_rev == rev
    assert [(kv.key, kv.value) for kv in old] == [(kv.key, kv.value) for kv in kvs]
    new, _ = etcd.get_prefix("/p/", page_size=1000)
    assert len(new) == 1500 and new[0].value == b"new"


def test_delete_prefix_counts(etcd: EtcdClient) -> None:
    write_batch(etcd, [Put(f"/d/{i}", "v") for i in range(10)] + [Put("/e", "v")])
    assert etcd.delete_prefix("/d/") == 10
    assert etcd.get("/e") is not None


def test_txn_compare_and_swap(etcd: EtcdClient) -> None:
    create = [codec.compare("/t/lock", "CREATE", "EQUAL", 0)]
    won = etcd.txn(create, [codec.put_op("/t/lock", "me")], [codec.range_op("/t/lock")])
    assert won["succeeded"] is True
    lost = etcd.txn(create, [codec.put_op("/t/lock", "you")], [codec.range_op("/t/lock")])
    assert lost["succeeded"] is False
    (kv,) = lost["responses"][0]["response_range"]["kvs"]
    assert kv.value == b"me" and lost["header"]["revision"] == won["header"]["revision"]
    # Compare on mod_revision, the journal's guard against a blind overwrite.
    guard = [codec.compare("/t/lock", "MOD", "EQUAL", kv.mod_revision)]
    assert etcd.txn(guard, [codec.delete_op("/t/lock")])["succeeded"] is True
    assert etcd.get("/t/lock") is None


def test_compacted_revision_raises(etcd: EtcdClient) -> None:
    first = etcd.put("/c/a", "1")
    etcd.put("/c/a", "2")
    etcd.compact(etcd.current_revision())
    etcd.compact(first)  # compacting an older revision again is harmless
    with pytest.raises(EtcdCompacted):
        etcd.get_prefix("/c/", revision=first)


def test_lease_grant_keepalive_revoke(etcd: EtcdClient) -> None:
    lease = etcd.lease_grant(10)
    etcd.put("/l/a", "x", lease=lease)
    kv = etcd.get("/l/a")
    assert kv is not None and kv.lease == lease
    assert 0 < etcd.lease_keepalive(lease) <= 10
    etcd.lease_revoke(lease)
    assert etcd.get("/l/a") is None
    assert etcd.lease_keepalive(lease) == 0
    etcd.lease_revoke(lease)  # already gone: fine


def test_dead_endpoint_first_fails_over(etcd_server) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = EtcdClient(EtcdSettings(endpoints=[dead, etcd_server.endpoint], timeout=2))
    client.put("/f/a", "x")
    assert client.endpoint == etcd_server.endpoint
    assert client.transport.failovers == 1


def test_all_endpoints_down_is_unavailable_within_the_timeout() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    client = EtcdClient(EtcdSettings(endpoints=dead, timeout=1.0))
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable):
        client.get("/x")
    assert time.monotonic() - started < 3.0


def test_settings_from_oslo_config() -> None:
    conf = cfg.ConfigOpts()
    conf([], project="test")
    settings = EtcdSettings.from_conf(conf)
    assert settings.endpoints == ["http://127.0.0.1:2379"] and settings.timeout == 3.0
    conf.set_override("endpoints", ["10.0.0.1:2379", "https://e2:2379/"], group="etcd")
    conf.set_override("username", "neutron", group="etcd")
    settings = EtcdSettings.from_conf(conf)
    assert settings.endpoints == ["http://10.0.0.1:2379", "https://e2:2379"]
    assert settings.username == "neutron" and settings.password is None
    with pytest.raises(ValueError):
        EtcdSettings(endpoints=["ftp://x"])


def test_credentials_while_auth_is_off_still_work(etcd_server) -> None:
    # Deployments may configure users before an operator switches auth on.
    client = EtcdClient(etcd_server.settings(username="neutron", password="x"))
    client.put("/t/creds", "x")
    assert client.get("/t/creds") is not None and client.transport.token == ""


def test_pages_are_handed_over_while_the_next_is_fetched(etcd: EtcdClient) -> None:
    write_batch(etcd, [Put(f"/pg/{i:05d}", f"v{i}") for i in range(2500)])
    pages: list[list[str]] = []
    kvs, rev = etcd.get_prefix("/pg/", page_size=1000, on_page=lambda p: pages.append(p))
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert [kv for page in pages for kv in page] == kvs
    assert [kv.key for kv in kvs] == [f"/pg/{i:05d}" for i in range(2500)]
    assert rev == etcd.current_revision()
    # A page consumer that fails does not leave a fetch behind: the error is the caller's.
    with pytest.raises(RuntimeError):
        etcd.get_prefix(
            "/pg/", page_size=1000, on_page=lambda p: (_ for _ in ()).throw(RuntimeError)
        )
