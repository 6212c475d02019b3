"""A work queue of reconcile keys, in the style of Kubernetes controllers.

Keys are deduplicated while they wait; a key that fails is retried later with
exponential backoff (the project's policy, ``common/retry.py``), without
holding up any other key; a key is never handed to two workers at once (a
key that changes while being worked on is queued again and handed out after
the current run).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from networking_vpp.common import retry

Key = Hashable


class WorkQueue:
    """Deduplicating FIFO of keys with per-key retry backoff."""

    def __init__(self, base_delay: float = 0.05, max_delay: float = 30.0) -> None:
        self._ready: OrderedDict[Key, None] = OrderedDict()
        self._delayed: list[tuple[float, int, Key]] = []  # (due, seq, key)
        self._seq = 0
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()  # re-added while active
        self._failures: dict[Key, int] = {}
        self._cond = threading.Condition()
        self._base = base_delay
        self._max = max_delay
        self._closed = False

    def add(self, key: Key) -> None:
        """Queue ``key`` now (a no-op if it already waits)."""
        with self._cond:
            if key in self._active:
                self._dirty.add(key)
                return
            self._ready[key] = None
            self._cond.notify()

    def add_first(self, key: Key) -> None:
        """Queue ``key`` ahead of everything waiting (e.g. a resync that others depend on)."""
        with self._cond:
            if key in self._active:
                self._dirty.add(key)
                return
            self._ready[key] = None
            self._ready.move_to_end(key, last=False)
            self._cond.notify()

    def add_all(self, keys: Iterable[Key]) -> None:
        """Queue several keys."""
        keys = list(keys)
        if not keys:
            return  # most reconciles queue nothing: no lock, no wake-up
        with self._cond:
            for key in keys:
                if key in self._active:
                    self._dirty.add(key)
                else:
                    self._ready[key] = None
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Key | None:
        """Next key to work on; None on timeout or after close()."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                self._promote_due()
                if self._ready:
                    key, _ = self._ready.popitem(last=False)
                    self._active.add(key)
                    return key
                wait = self._next_due_in()
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def take_more(self, kind: str, limit: int) -> list[Key]:
        """Up to ``limit`` more keys ``(kind, ...)`` from the head of the queue,
        to be worked on with one just taken: only those in a row, so that no
        key is worked on before one queued ahead of it of another kind."""
        taken: list[Key] = []
        with self._cond:
            self._promote_due()
            while self._ready and len(taken) < limit:
                key = next(iter(self._ready))
                if not (isinstance(key, tuple) and key[0] == kind):
                    break
                del self._ready[key]
                self._active.add(key)
                taken.append(key)
        return taken

    def done(self, key: Key, ok: bool) -> float | None:
        """Finish work on ``key``; on failure schedule a retry and return its delay."""
        with self._cond:
            self._active.discard(key)
            delay = None
            if ok:
                self._failures.pop(key, None)
            else:
                n = self._failures.get(key, 0)
                self._failures[key] = n + 1
                delay = retry.delay(n, self._base, self._max, jitter=False)
            if key in self._dirty:
                self._dirty.discard(key)
                self._ready[key] = None
            elif delay is not None:
                self._seq += 1
                heapq.heappush(self._delayed, (time.monotonic() + delay, self._seq, key))
            self._cond.notify()
            return delay

    def failures(self, key: Key) -> int:
        """How many times in a row ``key`` has failed."""
        return self._failures.get(key, 0)

    def failing(self) -> list[Key]:
        """Keys whose last run failed (retried later), oldest failure streak first."""
        with self._cond:
            return list(self._failures)

    def idle(self) -> bool:
        """Nothing waiting, nothing being worked on, nothing to retry."""
        with self._cond:
            return not (self._ready or self._active or self._delayed)

    def ready(self) -> int:
        """How many keys wait to be worked on now (not counting those in hand)."""
        with self._cond:
            return len(self._ready)

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._delayed) + len(self._active)

    def close(self) -> None:
        """Wake every waiting worker and make get() return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _promote_due(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key not in self._active:
                self._ready[key] = None

    def _next_due_in(self) -> float | None:
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - time.monotonic())
