"""LeasedKeys: keys that live exactly as long as this process keeps its lease alive.

Used for agent liveness (``/state/<host>/alive``) and anything else that must vanish when
the process dies. The keepalive runs in a daemon thread at ttl/3. A transient etcd error is
tolerated (the lease outlives it); a lease etcd no longer knows (keepalive TTL <= 0, or
"lease not found" when writing) is re-granted and every remembered key is written again.
"""

from __future__ import annotations

import logging
import threading

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.errors import EtcdError, EtcdNotFound
from networking_vpp.common.retry import Backoff

LOG = logging.getLogger(__name__)


def check_keepalive_timeout(ttl: float, timeout: float, option: str) -> None:
    """Refuse a lease whose keepalive could block past a third of its TTL.

    Keepalives run every ttl/3: one that waits for etcd up to the request
    ``timeout`` longer than that leaves the lease (an agent's liveness, an
    election's leadership) to expire while its holder still believes in it.
    Checked where the options are read, so a bad pair stops the process at start.
    """
    if timeout >= ttl / 3:
        raise ValueError(
            f"{option} = {ttl:g} s and [etcd] timeout = {timeout:g} s: a lease keepalive "
            f"may wait up to the timeout, which must be below a third of the TTL "
            f"({ttl / 3:.2f} s); raise {option} or lower [etcd] timeout"
        )


class LeasedKeys:
    """A set of keys written under one lease that this object keeps alive."""

    def __init__(self, client: EtcdClient, ttl: int) -> None:
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        self.client = client
        self.ttl = ttl
        self.lease_id = 0
        self.regrants = 0  # leases granted after the first (the old one was lost)
        self._keys: dict[str, str] = {}
        self._dirty: set[str] = set()  # remembered keys whose last write failed
        # Deleted keys whose delete has not reached etcd: the lease lives on, so
        # a failed delete would otherwise leave the key for good (an agent's
        # alive key while its VPP is away).
        self._doomed: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._grants = 0

    # --- public ---------------------------------------------------------------------------
    def put(self, key: str, value: str) -> None:
        """Remember ``key`` and write it under the lease (now, or as soon as etcd is back)."""
        with self._lock:
            self._keys[key] = value
            self._dirty.add(key)
            if self.lease_id:
                self._flush()

    def delete(self, key: str) -> None:
        """Forget ``key`` and delete it from etcd (now, or as soon as etcd is back)."""
        with self._lock:
            self._keys.pop(key, None)
            self._dirty.discard(key)
            self._doomed.add(key)
            self._flush()

    def keys(self) -> dict[str, str]:
        """The remembered keys and values."""
        with self._lock:
            return dict(self._keys)

    def start(self) -> None:
        """Grant the lease, write the keys, start the keepalive thread.

        If etcd is down now, this logs and returns; the thread keeps trying.
        """
        if self._thread is not None:
            return
        try:
            with self._lock:
                self._regrant()
        except EtcdError as exc:
            LOG.warning("leased keys: etcd not ready (%s); will keep trying", exc)
        self._thread = threading.Thread(target=self._run, name="etcd-lease", daemon=True)
        self._thread.start()

    def stop(self, revoke: bool = True) -> None:
        """Stop refreshing; with ``revoke`` the keys disappear now rather than after the TTL."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.client.settings.timeout + 1)
        if revoke and self.lease_id:
            try:
                self.client.lease_revoke(self.lease_id)
            except EtcdError as exc:
                LOG.warning("leased keys: could not revoke lease %x: %s", self.lease_id, exc)
        self.lease_id = 0

    # --- internals ----------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(base=0.2, cap=max(1.0, self.ttl / 3))
        while not self._stop.is_set():
            delay = self.ttl / 3
            try:
                with self._lock:
                    self._tick()
                backoff.reset()
            except EtcdError as exc:
                LOG.warning("leased keys: keepalive of lease %x failed: %s", self.lease_id, exc)
                delay = min(delay, backoff.next_delay())
            except Exception:  # noqa: BLE001 - liveness must survive any surprise
                LOG.exception("leased keys: unexpected keepalive error")
            self._wake.wait(delay)
            self._wake.clear()

    def _tick(self) -> None:
        if not self.lease_id:
            self._regrant()
            return
        remaining = self.client.lease_keepalive(self.lease_id)
        if remaining <= 0:
            LOG.warning("leased keys: lease %x is gone; granting a new one", self.lease_id)
            self._regrant()
        elif self._dirty or self._doomed:
            self._flush()

    def _regrant(self) -> None:
        lease_id = self.client.lease_grant(self.ttl)
        self.lease_id = lease_id
        self._grants += 1
        self.regrants = max(0, self._grants - 1)
        self._dirty = set(self._keys)
        self._doomed.clear()  # whatever the lost lease carried is gone with it
        self._flush()

    def _flush(self) -> None:
        """Delete the doomed keys, write the dirty ones; a lease that vanished under
        us is re-granted."""
        for key in sorted(self._doomed):
            try:
                self.client.delete(key)
            except EtcdError as exc:
                LOG.warning("leased keys: could not delete %s: %s (will retry)", key, exc)
                return
            self._doomed.discard(key)
        if not self.lease_id:
            return  # written once a lease is granted
        for key in sorted(self._dirty):
            try:
                self.client.put(key, self._keys[key], lease=self.lease_id)
            except EtcdNotFound:
                LOG.warning("leased keys: lease %x not found while writing", self.lease_id)
                self.lease_id = 0
                self._wake.set()  # the thread re-grants at once
                return
            except EtcdError as exc:
                LOG.warning("leased keys: could not write %s: %s (will retry)", key, exc)
                return
            self._dirty.discard(key)
