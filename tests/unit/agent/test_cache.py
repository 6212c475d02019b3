from networking_vpp.agent.cache import PortCache
from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.common.etcd.watcher import Event

KEYS = k.KeySpace()


def raw(port_id, **over):
    fields = dict(
        port_id=port_id,
        binding_id="b",
        network_id="n",
        mac_address="fa:16:3e:00:00:01",
        mtu=1500,
        network_type="flat",
        physnet="physnet1",
        segmentation_id=None,
        binding_type="tap",
        tap=model.Tap("tap" + port_id),
    )
    fields.update(over)
    return model.encode(model.PortBinding(**fields)).encode()


def test_replace_reports_only_changes_and_deletions():
    cache = PortCache(KEYS, "h1")
    assert cache.replace({KEYS.port("h1", "a"): raw("a"), KEYS.port("h1", "b"): raw("b")}) == {
        "a",
        "b",
    }
    # Same values again: nothing changed. "b" vanished while we were away: changed.
    assert cache.replace({KEYS.port("h1", "a"): raw("a")}) == {"b"}
    assert cache.port_ids() == {"a"}
    assert cache.replace({KEYS.port("h1", "a"): raw("a", mtu=9000)}) == {"a"}
    assert cache.get("a").mtu == 9000


def test_events_and_bad_values():
    cache = PortCache(KEYS, "h1")
    changed = cache.apply(
        [
            Event("put", KEYS.port("h1", "a"), raw("a"), 5),
            Event("put", KEYS.port("h1", "bad"), b"{", 6),
            Event("put", KEYS.port("h1", "other"), raw("x"), 7),
            Event("put", KEYS.port("h2", "c"), raw("c"), 8),
        ]
    )
    assert changed == {"a", "bad", "other"}
    assert cache.port_ids() == {"a"}
    assert set(cache.rejected) == {
        KEYS.port("h1", "bad"),
        KEYS.port("h1", "other"),
        KEYS.port("h2", "c"),
    }
    assert cache.rejected_total == 3
    # A good value clears the rejection; a delete forgets the port.
    cache.apply([Event("put", KEYS.port("h1", "bad"), raw("bad"), 9)])
    assert KEYS.port("h1", "bad") not in cache.rejected
    assert cache.apply([Event("delete", KEYS.port("h1", "a"), None, 10)]) == {"a"}
    assert cache.port_ids() == {"bad"}


def test_bad_value_replacing_good_one_removes_the_port():
    cache = PortCache(KEYS, "h1")
    cache.apply([Event("put", KEYS.port("h1", "a"), raw("a"), 1)])
    assert cache.apply([Event("put", KEYS.port("h1", "a"), b'{"version": 1}', 2)]) == {"a"}
    assert cache.get("a") is None


def test_pages_apply_as_they_come_and_the_snapshot_completes_the_load():
    from networking_vpp.common.etcd.codec import KV

    cache = PortCache(KEYS, "h1")
    a, b, bad = KEYS.port("h1", "a"), KEYS.port("h1", "b"), KEYS.port("h1", "bad")
    cache.apply([Event("put", KEYS.port("h1", "old"), raw("old"), 1)])  # before an outage
    # A page is usable at once: its ports change now, not when the load ends.
    assert cache.apply_page([KV(a, raw("a"), 2, 2, 0), KV(bad, b"{", 3, 3, 0)]) == {"a"}
    assert cache.get("a") is not None
    assert cache.get("old") is not None  # absence is known only once the load is in
    assert cache.rejected_total == 1
    assert cache.apply_page([KV(b, raw("b"), 4, 4, 0)]) == {"b"}
    snapshot = {a: raw("a"), bad: b"{", b: raw("b", mtu=9000)}
    # The snapshot reports only what the pages did not: "b" differs from its
    # page (a test's liberty; one load has one revision), "old" is gone.
    assert cache.replace(snapshot) == {"b", "old"}
    assert cache.get("b").mtu == 9000 and cache.get("old") is None
    assert cache.rejected_total == 1  # the bad value is not counted twice
    assert "not JSON" in cache.rejected[bad]
    # The next load starts afresh: the same bytes change nothing.
    assert cache.apply_page([KV(a, raw("a"), 5, 2, 0)]) == set()
    assert cache.replace({a: raw("a")}) == {"b"}
