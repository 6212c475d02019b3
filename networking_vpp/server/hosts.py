"""In-memory view of which hosts have a live agent and which physnets they serve.

``bind_port`` runs on every port binding, inside Neutron's request path: it must
not make an etcd round trip. Every API worker therefore keeps this cache, fed by
a watcher on ``/state/``: the leased ``alive`` key says the agent is running,
``physnets/<name>`` keys say what it can reach. Port reports under ``/state/``
are ignored here (the elected state watcher handles them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from networking_vpp.common import keys, model

LOG = logging.getLogger(__name__)


class HostCache:
    """Thread-safe map host -> (alive?, physnets). Reads never block on etcd."""

    def __init__(self, keyspace: keys.KeySpace | None = None) -> None:
        self._keys = keyspace or keys.KeySpace()
        self._lock = threading.Lock()
        self._alive: set[str] = set()
        self._physnets: dict[str, set[str]] = {}
        self._loaded = threading.Event()
        self._created = time.monotonic()  # the worker's start, near enough

    # --- queries (bind_port) ------------------------------------------------
    def is_alive(self, host: str) -> bool:
        """True if the host's agent holds its leased alive key."""
        with self._lock:
            return host in self._alive

    def physnets(self, host: str) -> frozenset[str]:
        """Physnets the host's agent reports (alive or not)."""
        with self._lock:
            return frozenset(self._physnets.get(host, ()))

    def hosts(self) -> dict[str, tuple[bool, frozenset[str]]]:
        """Snapshot of every known host: ``{host: (alive, physnets)}``."""
        with self._lock:
            names = self._alive | set(self._physnets)
            return {h: (h in self._alive, frozenset(self._physnets.get(h, ()))) for h in names}

    @property
    def loaded(self) -> bool:
        """True once a full snapshot from etcd has been applied."""
        return self._loaded.is_set()

    def wait_loaded(self, window: float) -> bool:
        """Wait for the first load until ``window`` seconds after this cache was
        made; True once loaded.

        A worker that has just started reads the agents' states within moments:
        a bind then should wait for them rather than fail. The window counts
        from the cache's start, not from each call, so a worker that cannot
        read etcd does not make every bind wait.
        """
        return self._loaded.wait(max(0.0, self._created + window - time.monotonic()))

    # --- direct updates (tests, and the etcd feed below) --------------------
    def set_host(self, host: str, alive: bool = True, physnets: Iterable[str] = ()) -> None:
        """Replace what is known about one host."""
        with self._lock:
            if alive:
                self._alive.add(host)
            else:
                self._alive.discard(host)
            self._physnets[host] = set(physnets)

    def forget_host(self, host: str) -> None:
        """Drop a host entirely."""
        with self._lock:
            self._alive.discard(host)
            self._physnets.pop(host, None)

    # --- etcd feed ------------------------------------------------------------
    def on_load(self, snapshot: Mapping[str, bytes], revision: int) -> None:
        """PrefixWatcher callback: a full snapshot of ``/state/`` replaces everything."""
        alive: set[str] = set()
        physnets: dict[str, set[str]] = {}
        for key, value in snapshot.items():
            parsed = self._parse(key, value)
            if parsed is None:
                continue
            host, kind, name = parsed
            if kind == "alive":
                alive.add(host)
            else:
                physnets.setdefault(host, set()).add(name)
        with self._lock:
            self._alive = alive
            self._physnets = physnets
        self._loaded.set()
        LOG.info(
            "host cache loaded at revision %s: %d live agents, %d hosts with physnets",
            revision,
            len(alive),
            len(physnets),
        )

    def on_events(self, events: Iterable[Any]) -> None:
        """PrefixWatcher callback: apply puts and deletes in order."""
        for event in events:
            put = event.kind == "put"
            parsed = self._parse(event.key, event.value if put else None)
            if parsed is None:
                continue
            host, kind, name = parsed
            with self._lock:
                if kind == "alive":
                    if put:
                        self._alive.add(host)
                    else:
                        self._alive.discard(host)
                elif put:
                    self._physnets.setdefault(host, set()).add(name)
                else:
                    self._physnets.get(host, set()).discard(name)
            LOG.debug("host cache: %s %s %s %s", event.kind, host, kind, name)

    def _parse(self, key: str, value: bytes | None) -> tuple[str, str, str] | None:
        """``(host, kind, name)`` for alive/physnet keys with a valid value, else None."""
        try:
            parsed = self._keys.parse_state(key)
        except keys.BadKey:
            return None
        if parsed.kind not in ("alive", "physnets"):
            return None  # port reports, the agent's summary: not liveness
        if value is not None:
            # A put must carry a valid value; a malformed one would otherwise make
            # us bind ports to a host whose agent cannot be trusted to serve them.
            try:
                if parsed.kind == "alive":
                    model.decode(model.HostAlive, key, value)
                else:
                    model.decode(model.HostPhysnet, key, value)
            except model.BadValue as exc:
                LOG.error("ignoring %s", exc)
                return None
        return parsed.host, parsed.kind, parsed.name
