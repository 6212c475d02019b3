"""PrefixWatcher: a mirror of one etcd prefix that never misses nor repeats a change.

Protocol (measured against etcd 3.4, see DESIGN.md):

1. paged full read at one revision R -> ``on_load(snapshot, R)``, a *replacement* of the
   consumer's state, so deletions that happened while we were away are seen;
2. watch from R+1 on the gateway's watch stream;
3. ``last_revision`` is the highest *event* mod_revision applied (never a header revision);
   events at or below it are duplicates from a re-watch and are dropped;
4. stream error, end, or silence past ``idle_timeout`` -> re-watch from last_revision+1 after
   a jittered backoff, on whichever endpoint answers. Silence is normal for a prefix nobody
   writes: the watch asks for etcd's progress notifications, which etcd sends every
   ``--experimental-watch-progress-notify-interval`` (10 minutes by default), so the
   watchdog waits longer than that (``DEFAULT_IDLE_TIMEOUT``) and its re-watch is logged
   as routine; a peer that vanished without a word is found sooner by TCP keepalive on
   the connection (``transport.make_session``);
5. "canceled" with ``compact_revision`` -> our history is gone: full reload (step 1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.errors import EtcdAuthError, EtcdError, WatchSilent
from networking_vpp.common.etcd.stream import Event, WatchStream
from networking_vpp.common.retry import Backoff

__all__ = ["Event", "PrefixWatcher"]

LOG = logging.getLogger(__name__)

LoadCallback = Callable[[dict[str, bytes], int], None]
EventsCallback = Callable[[list[Event]], None]
PageCallback = Callable[[list[codec.KV]], None]

#: Seconds a watch stream may stay silent before it is made again: above etcd's
#: default progress notification interval (10 minutes), so a healthy idle watch,
#: which hears a progress notification every interval, is never cut.
DEFAULT_IDLE_TIMEOUT = 900.0


class PrefixWatcher:
    """Keeps a consumer in step with every key under ``prefix``, in its own daemon thread.

    Callbacks run in the watcher thread, one at a time; an exception they raise is logged
    and the watch goes on. ``idle_timeout`` is the hung-stream watchdog: a stream silent for
    that long is re-created (cheap and exact, since we resume from ``last_revision``).
    """

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        on_load: LoadCallback,
        on_events: EventsCallback,
        name: str = "watch",
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        page_size: int = 1000,
        on_page: PageCallback | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.name = name
        self.idle_timeout = idle_timeout
        self.page_size = page_size
        self._on_load = on_load
        self._on_events = on_events
        self._on_page = on_page  # a head start on each page of a full load (optional)
        self.last_revision = 0
        self.loads = 0  # full loads done (1 + one per compaction we fell behind)
        self.reconnects = 0  # watch streams lost and re-created
        self.progress_notifications = 0  # etcd's word that an idle stream is alive
        self.callback_errors = 0
        self.connected = False  # a watch stream is established now
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._reload_requested = False
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    # --- public control -----------------------------------------------------------------
    def start(self) -> None:
        """Start the watcher thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"etcd-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; returns once the thread is gone (or ``timeout`` passed)."""
        self._stop.set()
        self._close_stream()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_loaded(self, timeout: float) -> bool:
        """Wait for the first full load; False if it did not happen within ``timeout``."""
        return self._loaded.wait(timeout)

    def request_reload(self) -> None:
        """Do a full load again soon (an operator's "resync")."""
        self._reload_requested = True
        self._close_stream()

    @property
    def running(self) -> bool:
        """True while the watcher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # --- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff()
        need_load = True
        while not self._stop.is_set():
            try:
                if need_load or self._reload_requested:
                    self._reload_requested = False
                    self._load()
                    need_load = False
                need_load = self._watch(backoff)
                if need_load or self._reload_requested or self._stop.is_set():
                    continue  # no backoff: etcd is fine, we just need a fresh snapshot
            except WatchSilent as exc:
                # Not trouble: etcd had nothing to say for a long while.
                LOG.info("%s: %s; watching %s again", self.name, exc, self.prefix)
            except EtcdError as exc:
                LOG.warning("%s: etcd trouble on %s: %s", self.name, self.prefix, exc)
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                LOG.exception("%s: unexpected error watching %s", self.name, self.prefix)
            self._stop.wait(backoff.next_delay())
        self.connected = False
        LOG.debug("%s: stopped at revision %d", self.name, self.last_revision)

    def _load(self) -> None:
        on_page = self._on_page
        kvs, revision = self.client.get_prefix(
            self.prefix,
            page_size=self.page_size,
            on_page=None if on_page is None else lambda page: self._call(on_page, page),
        )
        snapshot = {kv.key: kv.value for kv in kvs}
        LOG.info("%s: loaded %d keys under %s at %d", self.name, len(kvs), self.prefix, revision)
        self._call(self._on_load, snapshot, revision)
        self.last_revision = revision
        self.loads += 1
        self._loaded.set()

    def _watch(self, backoff: Backoff) -> bool:
        """Follow one stream until it ends; True if a full reload is needed."""
        stream = WatchStream(
            self.client.transport,
            self.prefix,
            codec.prefix_range_end(self.prefix),
            self.last_revision + 1,
            idle_timeout=self.idle_timeout,
        )
        with self._lock:
            if self._stop.is_set():
                return False
            self._stream = stream
        token = self.client.transport.token
        created = False
        try:
            for reply in stream:
                if reply.canceled:
                    return self._canceled(reply.compact_revision, reply.cancel_reason, token)
                if reply.created:
                    created = self.connected = True
                    backoff.reset()
                if reply.events:
                    self._apply(reply.events)
                elif not reply.created:
                    self.progress_notifications += 1
        finally:
            self.connected = False
            self._close_stream()
            if created and not self._stop.is_set():
                self.reconnects += 1
        if not self._stop.is_set() and not self._reload_requested:
            raise EtcdError("watch stream ended")
        return False

    def _canceled(self, compact_revision: int, reason: str, token: str | None) -> bool:
        if compact_revision:
            LOG.warning(
                "%s: revision %d compacted (now %d): reloading %s",
                self.name,
                self.last_revision + 1,
                compact_revision,
                self.prefix,
            )
            return True
        if "auth token" in reason or "user name is empty" in reason:
            self.client.transport.invalidate_token(token)  # next stream authenticates afresh
            raise EtcdAuthError(f"watch canceled: {reason}")
        raise EtcdError(f"watch canceled: {reason or 'no reason given'}")

    def _apply(self, events: list[Event]) -> None:
        fresh = [e for e in events if e.mod_revision > self.last_revision]
        if not fresh:
            return
        try:
            self._call(self._on_events, fresh)
        finally:
            self.last_revision = max(e.mod_revision for e in fresh)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - bad input must not kill the watch
            self.callback_errors += 1
            LOG.exception("%s: callback %r failed; watch goes on", self.name, callback)

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
