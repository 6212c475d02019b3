"""The project's one retry policy: exponential backoff, capped, with jitter.

The n-th retry (n = 0, 1, ...) waits ``min(cap, base * 2**n)``, scaled by a
random factor in 0.5..1 so that a fleet of agents (or API workers) does not
come back in lockstep after etcd or VPP restarts. Three ways to use it:

* :func:`delay`: the n-th delay (the agent's work queue, per key, without
  jitter: one process's keys do not stampede anything, and tests can tell);
* :class:`Backoff`: a stateful counter for loops that wait on something else
  between tries (a stop event, a condition), such as watchers and keepalives;
* :func:`wait`: the same policy as a tenacity wait strategy, for code that
  retries a call with ``tenacity.Retrying``.
"""

from __future__ import annotations

import random

import tenacity


def delay(failures: int, base: float, cap: float, jitter: bool = True) -> float:
    """The wait after ``failures`` earlier failures in a row (0: the first retry)."""
    plain = min(cap, base * (2 ** min(failures, 30)))  # 2**30: past any cap, no overflow
    return plain * random.uniform(0.5, 1.0) if jitter else plain


class Backoff:
    """Delays by :func:`delay`, counting the failures; :meth:`reset` after a success."""

    def __init__(self, base: float = 0.1, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next try; grows with each call."""
        value = delay(self.failures, self.base, self.cap)
        self.failures += 1
        return value

    def reset(self) -> None:
        """Back to short delays after a success."""
        self.failures = 0


class wait(tenacity.wait.wait_base):  # noqa: N801 - named as tenacity's strategies are
    """:func:`delay` as a tenacity wait strategy (``Retrying(wait=retry.wait(b, c))``)."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        # tenacity numbers attempts from 1; the wait after the first is delay(0).
        return delay(retry_state.attempt_number - 1, self.base, self.cap)
