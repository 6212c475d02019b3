from networking_vpp.agent.cache import PortCache, SecGroupCache
from networking_vpp.common import keys as k
from networking_vpp.common import model, portnames
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
        tap=model.Tap(portnames.tap_ifname(port_id)),
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
            Event("put", KEYS.port("h1", "other"), raw("x", tap=model.Tap("tapother")), 7),
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


def test_bad_value_replacing_good_one_keeps_the_last_good_one():
    cache = PortCache(KEYS, "h1")
    cache.apply([Event("put", KEYS.port("h1", "a"), raw("a"), 1)])
    good = cache.get("a")
    assert cache.apply([Event("put", KEYS.port("h1", "a"), b'{"version": 1}', 2)]) == {"a"}
    assert cache.get("a") is good  # what is programmed for it stays
    rejected = cache.rejection("a")
    assert rejected is not None and "missing required field" in rejected.reason
    assert rejected.binding_id == "b"  # the last good value's: the bad one names none
    assert cache.rejected_ports() == {"a"}
    # The same bad bytes again (a full load): nothing new, not counted twice.
    assert cache.replace({KEYS.port("h1", "a"): b'{"version": 1}'}) == set()
    assert cache.rejected_total == 1
    # A newer major version names its binding: the report is about that one.
    newer = b'{"version": 2, "binding_id": "b2", "port_id": "a"}'
    assert cache.apply([Event("put", KEYS.port("h1", "a"), newer, 3)]) == {"a"}
    assert cache.get("a") is good
    assert cache.rejection("a").binding_id == "b2"
    assert "schema version 2" in cache.rejection("a").reason
    # A good value ends it; a delete forgets everything.
    assert cache.apply([Event("put", KEYS.port("h1", "a"), raw("a", mtu=9000), 4)]) == {"a"}
    assert cache.rejection("a") is None and cache.get("a").mtu == 9000
    cache.apply([Event("put", KEYS.port("h1", "a"), b"{", 5)])
    assert cache.apply([Event("delete", KEYS.port("h1", "a"), None, 6)]) == {"a"}
    assert cache.get("a") is None and cache.rejection("a") is None
    assert cache.rejected_ports() == set()


def test_a_bad_value_without_a_good_one_is_still_a_port_to_report():
    cache = PortCache(KEYS, "h1")
    assert cache.replace({KEYS.port("h1", "a"): b"{"}) == {"a"}
    assert cache.get("a") is None and cache.rejected_ports() == {"a"}
    assert cache.rejection("a").binding_id == ""
    assert cache.replace({}) == {"a"}  # its key went: nothing to report any more
    assert cache.rejected_ports() == set()


def test_sockets_and_tap_names_are_checked_against_the_agents_configuration():
    cache = PortCache(KEYS, "h1", socket_dir="/run/vpp/vhostuser")
    vhost = dict(binding_type="vhostuser", tap=None)
    ok = model.VhostUser(portnames.vhostuser_socket("/run/vpp/vhostuser", "a"))
    cache.apply(
        [
            Event("put", KEYS.port("h1", "a"), raw("a", vhostuser=ok, **vhost), 1),
            Event(
                "put",
                KEYS.port("h1", "b"),
                raw("b", vhostuser=model.VhostUser("/etc/passwd"), **vhost),
                2,
            ),
            Event("put", KEYS.port("h1", "t"), raw("t", tap=model.Tap("eth0")), 3),
        ]
    )
    assert cache.port_ids() == {"a"}
    assert cache.rejected_ports() == {"b", "t"}
    assert "'/etc/passwd' refused" in cache.rejected[KEYS.port("h1", "b")]
    assert "'eth0' refused" in cache.rejection("t").reason
    assert cache.rejected_total == 2
    # No socket directory configured: no vhost-user port passes.
    bare = PortCache(KEYS, "h1")
    bare.apply([Event("put", KEYS.port("h1", "a"), raw("a", vhostuser=ok, **vhost), 1)])
    assert bare.get("a") is None and bare.rejected_ports() == {"a"}


def test_pages_apply_as_they_come_and_the_snapshot_completes_the_load():
    from networking_vpp.common.etcd.codec import KV

    cache = PortCache(KEYS, "h1")
    a, b, bad = KEYS.port("h1", "a"), KEYS.port("h1", "b"), KEYS.port("h1", "bad")
    cache.apply([Event("put", KEYS.port("h1", "old"), raw("old"), 1)])  # before an outage
    # A page is usable at once: its ports change now, not when the load ends
    # (a bad value's port too: it is reported in error).
    assert cache.apply_page([KV(a, raw("a"), 2, 2, 0), KV(bad, b"{", 3, 3, 0)]) == {"a", "bad"}
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
    assert cache.replace({a: raw("a")}) == {"b", "bad"}  # "bad" went: so does its report


def test_a_bad_security_group_value_keeps_the_last_good_rules():
    groups = SecGroupCache(KEYS)
    rule = model.SecGroupRule("ingress", "IPv4", 6, 22, 22)
    good = model.encode(model.SecurityGroup("sg1", (rule,))).encode()
    assert groups.apply([Event("put", KEYS.secgroup("sg1"), good, 1)]) == {("sg", "sg1")}
    # Rules dropped for an unreadable value would cut the group's ports off.
    assert groups.apply([Event("put", KEYS.secgroup("sg1"), b'{"version": 2}', 2)]) == set()
    assert groups.groups["sg1"].rules == (rule,)
    assert groups.rejected_total == 1 and KEYS.secgroup("sg1") in groups.rejected
