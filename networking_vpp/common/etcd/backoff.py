"""Jittered exponential backoff for loops that retry forever (watchers, keepalives)."""

from __future__ import annotations

import random


class Backoff:
    """Delays of ``base * 2**n`` capped at ``cap``, each scaled by a random 0.5..1.

    The jitter keeps a fleet of agents from reconnecting in lockstep after an etcd restart.
    """

    def __init__(self, base: float = 0.1, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next try; grows with each call."""
        delay = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        """Back to short delays after a success."""
        self.failures = 0
