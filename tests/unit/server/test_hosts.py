"""The host cache that bind_port reads, fed by etcd watch callbacks."""

from __future__ import annotations

import unittest

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.stream import Event
from networking_vpp.server.hosts import HostCache

K = keys.KeySpace()


def _alive(host: str) -> bytes:
    return model.encode(model.HostAlive(host=host, agent_version="1", started_at=0.0)).encode()


def _phys(name: str) -> bytes:
    return model.encode(model.HostPhysnet(name=name, interface="Gi0/8/0")).encode()


class TestHostCache(unittest.TestCase):
    def test_load_replaces_everything(self):
        cache = HostCache(K)
        cache.set_host("old", True, ["p9"])
        cache.on_load(
            {
                K.alive("h1"): _alive("h1"),
                K.physnet("h1", "physnet1"): _phys("physnet1"),
                K.physnet("h2", "physnet2"): _phys("physnet2"),
                K.port_state("h1", "port"): b"ignored",
            },
            5,
        )
        self.assertTrue(cache.loaded)
        self.assertTrue(cache.is_alive("h1"))
        self.assertFalse(cache.is_alive("h2"))
        self.assertFalse(cache.is_alive("old"))
        self.assertEqual({"physnet1"}, cache.physnets("h1"))
        self.assertEqual({"physnet2"}, cache.physnets("h2"))

    def test_events(self):
        cache = HostCache(K)
        cache.on_events(
            [
                Event("put", K.alive("h1"), _alive("h1"), 1),
                Event("put", K.physnet("h1", "a"), _phys("a"), 2),
                Event("put", K.physnet("h1", "b"), _phys("b"), 3),
                Event("delete", K.physnet("h1", "a"), None, 4),
            ]
        )
        self.assertTrue(cache.is_alive("h1"))
        self.assertEqual({"b"}, cache.physnets("h1"))
        cache.on_events([Event("delete", K.alive("h1"), None, 5)])
        self.assertFalse(cache.is_alive("h1"))
        self.assertEqual({"h1": (False, frozenset({"b"}))}, cache.hosts())

    def test_bad_values_are_ignored(self):
        cache = HostCache(K)
        with self.assertLogs("networking_vpp.server.hosts", "ERROR"):
            cache.on_events([Event("put", K.alive("h1"), b"{not json", 1)])
        self.assertFalse(cache.is_alive("h1"))
        cache.on_events([Event("put", "/networking-vpp/state/h1/weird/x", b"{}", 2)])
        self.assertEqual({}, cache.hosts())
