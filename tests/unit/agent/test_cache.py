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


def test_pages_decoded_ahead_are_used_only_for_the_same_bytes():
    from networking_vpp.common.etcd.codec import KV

    cache = PortCache(KEYS, "h1")
    good, bad = KEYS.port("h1", "a"), KEYS.port("h1", "bad")
    cache.prepare([KV(good, raw("a"), 1, 1, 0), KV(bad, b"{", 2, 2, 0)])
    # The snapshot holds other bytes for "a" than the page did: decoded again, not reused.
    assert cache.replace({good: raw("a", mtu=9000), bad: b"{"}) == {"a"}  # "bad" never was
    assert cache.get("a").mtu == 9000
    assert "not JSON" in cache.rejected[bad]
    # Same bytes: the prepared decode is the one kept (and nothing is left prepared).
    cache.prepare([KV(good, raw("a", mtu=1400), 3, 1, 0)])
    prepared = cache._prepared[good][1]
    assert cache.replace({good: raw("a", mtu=1400)}) == {"a"}
    assert cache.get("a") is prepared
    assert cache._prepared == {}
