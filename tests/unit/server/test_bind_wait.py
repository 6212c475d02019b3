"""An API worker that has not read the agents' states yet waits (bounded) before declining.

Every neutron-server restart starts workers with an empty host cache; their
watcher loads ``/state/`` within moments. A bind in between must not fail
because of that (Nova would give up on the instance), nor wait for ever when
etcd cannot be read.
"""

from __future__ import annotations

import logging
import threading
import time
import unittest

from neutron_lib.api.definitions import portbindings
from oslo_config import cfg

from networking_vpp.common import keys, model
from networking_vpp.server.hosts import HostCache
from tests.unit.server import test_mech_driver as tmd

K = keys.KeySpace()
HOST = "compute-late"


def load_of(host: str) -> dict[str, bytes]:
    """``/state/`` holding one live host that serves physnet1."""
    alive = model.HostAlive(host=host, agent_version="1", started_at=0.0)
    physnet = model.HostPhysnet(name="physnet1", interface="Gi0/8/0")
    return {
        K.alive(host): model.encode(alive).encode(),
        K.physnet(host, "physnet1"): model.encode(physnet).encode(),
    }


class WaitingCache(HostCache):
    """A fresh worker's cache; ``waiting`` is set when a bind starts to wait on it."""

    def __init__(self) -> None:
        super().__init__(K)
        self.waiting = threading.Event()
        self.waits: list[bool] = []  # what each wait returned

    def wait_loaded(self, window: float) -> bool:
        self.waiting.set()
        loaded = super().wait_loaded(window)
        self.waits.append(loaded)
        return loaded


class TestBindBeforeHostsLoaded(tmd.VppDriverTestCase):
    def test_bind_waits_for_the_load(self):
        cfg.CONF.set_override("bind_wait_for_hosts", 30.0, group="ml2_vpp")
        hosts = self.mech.hosts = WaitingCache()

        def watcher() -> None:  # the worker's etcd watcher, a moment late
            if hosts.waiting.wait(30):
                hosts.on_load(load_of(HOST), 7)

        thread = threading.Thread(target=watcher, daemon=True)
        thread.start()
        started = time.monotonic()
        port = self._port(host=HOST)
        thread.join(5)
        self.assertEqual(portbindings.VIF_TYPE_VHOST_USER, port[portbindings.VIF_TYPE])
        self.assertEqual([True], hosts.waits)
        self.assertLess(time.monotonic() - started, 30)  # it returned on the load

    def test_declines_once_the_wait_is_over(self):
        cfg.CONF.set_override("bind_wait_for_hosts", 0.2, group="ml2_vpp")
        hosts = self.mech.hosts = WaitingCache()
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            port = self._port(host=HOST)
        self.assertEqual(portbindings.VIF_TYPE_BINDING_FAILED, port[portbindings.VIF_TYPE])
        self.assertIn(
            f"not binding port {port['id']} on {HOST}: no live vpp-agent on that host "
            "(this API worker has not read the agents' states from etcd yet)",
            "\n".join(logs.output),
        )
        # ML2 tries a failed binding again (up to 10 times): the window is
        # counted once, so only the first try could wait.
        self.assertTrue(hosts.waits)
        self.assertFalse(any(hosts.waits))
        self.assertEqual([], self._journal())

    def test_a_loaded_cache_declines_a_dead_host_at_once(self):
        hosts = self.mech.hosts = WaitingCache()
        hosts.on_load({}, 3)
        port = self._port(host=HOST)
        self.assertEqual(portbindings.VIF_TYPE_BINDING_FAILED, port[portbindings.VIF_TYPE])
        self.assertFalse(hosts.waiting.is_set())


class TestWaitLoaded(unittest.TestCase):
    def test_returns_when_loaded(self):
        cache = HostCache(K)
        threading.Timer(0.05, cache.on_load, ({}, 1)).start()
        self.assertTrue(cache.wait_loaded(30))

    def test_the_window_counts_from_the_cache_s_start(self):
        cache = HostCache(K)
        self.assertFalse(cache.wait_loaded(0.1))
        # A worker whose load never came does not make every bind wait again.
        started = time.monotonic()
        self.assertFalse(cache.wait_loaded(0.1))
        self.assertLess(time.monotonic() - started, 0.1)
