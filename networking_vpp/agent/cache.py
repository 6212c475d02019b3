"""The agent's desired-state cache, fed by the etcd watcher.

The cache turns etcd's view (keys and raw bytes) into validated schema objects
and tells the caller which work-queue keys changed. A value that fails
validation is logged with its key and reason, counted, and treated as absent:
the agent keeps serving every other key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.common.etcd.watcher import Event

LOG = logging.getLogger(__name__)


class PortCache:
    """Desired port bindings of one host, by port id."""

    def __init__(self, keyspace: k.KeySpace, host: str) -> None:
        self._keys = keyspace
        self._host = host
        self._ports: dict[str, model.PortBinding] = {}
        self._raw: dict[str, bytes] = {}
        self._lock = threading.Lock()
        #: bad values seen, by key (the latest reason), for operators and tests
        self.rejected: dict[str, str] = {}
        self.rejected_total = 0

    def get(self, port_id: str) -> model.PortBinding | None:
        """The desired binding of a port, if any."""
        return self._ports.get(port_id)

    def port_ids(self) -> set[str]:
        """Every port this host should have."""
        with self._lock:
            return set(self._ports)

    def replace(self, snapshot: dict[str, bytes]) -> set[str]:
        """Replace everything with a full load; returns the port ids that changed."""
        with self._lock:
            seen: set[str] = set()
            changed: set[str] = set()
            for key, raw in snapshot.items():
                port_id, differs = self._update(key, raw)
                if port_id is not None:
                    seen.add(port_id)
                    if differs:
                        changed.add(port_id)
            for port_id in set(self._ports) - seen:
                changed.add(port_id)
                self._forget(port_id)
            return changed

    def apply(self, events: Iterable[Event]) -> set[str]:
        """Apply watch events; returns the port ids that changed."""
        changed: set[str] = set()
        with self._lock:
            for ev in events:
                if ev.kind == "put" and ev.value is not None:
                    port_id, _ = self._update(ev.key, ev.value)
                else:
                    port_id = self._port_id(ev.key)
                    if port_id is not None:
                        self._forget(port_id)
                        self.rejected.pop(ev.key, None)
                if port_id is not None:
                    changed.add(port_id)
        return changed

    def _port_id(self, key: str) -> str | None:
        try:
            host, port_id = self._keys.parse_port(key)
        except k.BadKey as exc:
            self._reject(key, str(exc))
            return None
        if host != self._host:
            self._reject(key, f"key is for host {host!r}, this agent serves {self._host!r}")
            return None
        return port_id

    def _update(self, key: str, raw: bytes) -> tuple[str | None, bool]:
        """Store one value; returns (port id, whether it differs from before)."""
        port_id = self._port_id(key)
        if port_id is None:
            return None, False
        if self._raw.get(port_id) == raw:
            return port_id, False
        try:
            binding = model.decode(model.PortBinding, key, raw)
            if binding.port_id != port_id:
                raise model.BadValue(key, f"port_id {binding.port_id!r} does not match the key")
        except model.BadValue as exc:
            # Treated as absent: whatever the agent programmed for the previous
            # (valid) value is removed rather than left half-right.
            self._reject(key, exc.reason)
            had = port_id in self._ports
            self._forget(port_id)
            return port_id, had
        self.rejected.pop(key, None)
        self._ports[port_id] = binding
        self._raw[port_id] = raw
        return port_id, True

    def _forget(self, port_id: str) -> None:
        self._ports.pop(port_id, None)
        self._raw.pop(port_id, None)

    def _reject(self, key: str, reason: str) -> None:
        self.rejected_total += 1
        self.rejected[key] = reason
        LOG.error("Skipping bad value at %s: %s", key, reason)
