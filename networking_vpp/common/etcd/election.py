"""Election: at most one leader per key in the whole cloud, chosen through an etcd lease.

Campaign: ``txn(create_revision(key) == 0 -> put key=identity under our lease)``. The leader
refreshes the lease at ttl/3 and checks that the key is still its own; if it cannot reach
etcd for long enough that the lease may have expired, it steps down *before* anyone else can
win (``on_lost``). Followers watch the key and campaign as soon as it is deleted, so a
SIGKILLed leader is replaced within about ``ttl`` seconds (its lease expiring), and a
stopped one (which revokes its lease) at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.errors import EtcdError, EtcdNotFound
from networking_vpp.common.etcd.stream import WatchStream
from networking_vpp.common.retry import Backoff

LOG = logging.getLogger(__name__)


class Election:
    """Campaigns for ``key`` as ``identity`` in a daemon thread until stopped."""

    def __init__(
        self,
        client: EtcdClient,
        key: str,
        identity: str,
        ttl: int = 5,
        on_elected: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.identity = identity
        self.ttl = max(2, int(ttl))  # etcd rounds smaller TTLs up anyway
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.lease_id = 0
        self.terms = 0  # times this candidate became leader
        self._granted_ttl = self.ttl
        self._lease_expires = 0.0
        self._leader = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """True while this candidate holds the key (as far as it can tell)."""
        return self._leader.is_set()

    def wait_leader(self, timeout: float) -> bool:
        """Wait until this candidate leads; False after ``timeout``."""
        return self._leader.wait(timeout)

    def start(self) -> None:
        """Start campaigning."""
        if self._thread is None:
            name = f"etcd-election-{self.identity}"
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Resign: revoke the lease so that another candidate takes over at once."""
        self._stop.set()
        self._close_stream()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.client.settings.timeout + 1)
        self._step_down("stopped")
        if self.lease_id:
            try:
                self.client.lease_revoke(self.lease_id)
            except EtcdError as exc:
                LOG.warning("election %s: could not resign: %s", self.key, exc)
            self.lease_id = 0

    # --- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(base=0.1, cap=1.0)
        while not self._stop.is_set():
            try:
                revision = self._campaign()
                backoff.reset()
                if self.is_leader:
                    self._lead()
                else:
                    self._wait_for_vacancy(revision)
                continue
            except EtcdError as exc:
                LOG.warning("election %s: %s", self.key, exc)
            except Exception:  # noqa: BLE001 - keep campaigning whatever happens
                LOG.exception("election %s: unexpected error", self.key)
            self._stop.wait(backoff.next_delay())
        LOG.debug("election %s: %s stopped campaigning", self.key, self.identity)

    def _campaign(self) -> int:
        """Take the key if it is free; returns the revision the outcome was seen at."""
        # Read first: a follower only spends a lease grant (a raft write) on a vacancy.
        seen = self.client.txn([], [codec.range_op(self.key)])
        kvs = seen["responses"][0]["response_range"]["kvs"]
        if kvs and (not self.lease_id or kvs[0].lease != self.lease_id):
            return int(seen["header"]["revision"])
        if not kvs:
            self._fresh_lease()
            try:
                resp = self.client.txn(
                    [codec.compare(self.key, "CREATE", "EQUAL", 0)],
                    [codec.put_op(self.key, self.identity, self.lease_id)],
                    [codec.range_op(self.key)],
                )
            except EtcdNotFound:  # the lease expired between grant and put (a long pause)
                self.lease_id = 0
                return 0
            if not resp["succeeded"]:
                kvs = resp["responses"][0]["response_range"]["kvs"]
                if not kvs or kvs[0].lease != self.lease_id:
                    return int(resp["header"]["revision"]) if kvs else 0
        # Here the key holds our lease: we won now, or our earlier put landed unanswered.
        self.terms += 1
        LOG.info("election %s: %s is the leader", self.key, self.identity)
        self._leader.set()
        self._callback(self.on_elected)
        return 0

    def _fresh_lease(self) -> None:
        """Make sure we hold a lease that will not expire in the next moment."""
        if self.lease_id and time.monotonic() < self._lease_expires - 1.0:
            return
        self.lease_id, self._granted_ttl = self.client.lease_grant_ttl(self.ttl)
        self._lease_expires = time.monotonic() + self._granted_ttl

    def _lead(self) -> None:
        """Keep the lease alive while leading; return after stepping down."""
        interval = self._granted_ttl / 3
        last_ok = time.monotonic()
        while not self._stop.wait(interval):
            try:
                started = time.monotonic()
                remaining = self.client.lease_keepalive(self.lease_id)
                if remaining <= 0:
                    self.lease_id = 0
                    self._step_down("lease lost")
                    return
                self._lease_expires = started + remaining
                kv = self.client.get(self.key)
                last_ok = started
                if kv is None or kv.lease != self.lease_id:
                    self._step_down("key taken away")
                    return
            except EtcdError as exc:
                LOG.warning("election %s: keepalive failed: %s", self.key, exc)
                # Step down while the lease surely still holds: nobody else can have won yet.
                if time.monotonic() - last_ok > self._granted_ttl - interval:
                    self._step_down("etcd unreachable")
                    return

    def _wait_for_vacancy(self, revision: int) -> None:
        """Watch the key from ``revision`` until it is deleted (or ttl passes: re-check)."""
        if not revision:
            return
        stream = WatchStream(
            self.client.transport, self.key, None, revision + 1, idle_timeout=self.ttl
        )
        with self._lock:
            if self._stop.is_set():
                return
            self._stream = stream
        try:
            for reply in stream:
                if reply.canceled or any(e.kind == "delete" for e in reply.events):
                    return
        except EtcdError:
            pass  # includes the idle timeout: campaign again, which re-reads the key
        finally:
            self._close_stream()

    def _step_down(self, why: str) -> None:
        if self._leader.is_set():
            LOG.warning(
                "election %s: %s is no longer the leader (%s)", self.key, self.identity, why
            )
            self._leader.clear()
            self._callback(self.on_lost)

    def _callback(self, callback: Callable[[], None] | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # noqa: BLE001 - a failing callback must not end the election
            LOG.exception("election %s: callback failed", self.key)

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
