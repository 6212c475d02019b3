"""The project's one retry policy (common/retry.py) and its users."""

from __future__ import annotations

import pytest
import tenacity

from networking_vpp.agent.queue import WorkQueue
from networking_vpp.common import retry


def test_the_delay_doubles_from_base_up_to_the_cap() -> None:
    assert [retry.delay(n, 0.1, 1.0, jitter=False) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )
    assert retry.delay(10_000, 0.1, 1.0, jitter=False) == 1.0  # no overflow


def test_jitter_scales_each_delay_by_half_to_one() -> None:
    for n in range(8):
        plain = retry.delay(n, 0.1, 2.0, jitter=False)
        assert 0.5 * plain <= retry.delay(n, 0.1, 2.0) <= plain


def test_tenacity_waits_by_the_same_policy() -> None:
    slept: list[float] = []
    calls = iter([ConnectionError(), ConnectionError(), ConnectionError(), "ok"])

    def flaky() -> str:
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    retrying = tenacity.Retrying(
        wait=retry.wait(0.1, 0.3),
        retry=tenacity.retry_if_exception_type(ConnectionError),
        sleep=slept.append,
    )
    assert retrying(flaky) == "ok"
    assert len(slept) == 3
    for n, got in enumerate(slept):
        plain = retry.delay(n, 0.1, 0.3, jitter=False)
        assert 0.5 * plain <= got <= plain


def test_the_work_queue_backs_off_by_the_policy() -> None:
    q = WorkQueue(base_delay=0.05, max_delay=0.15)
    q.add("k")
    delays = []
    for _ in range(4):
        assert q.get(timeout=1) == "k"
        delays.append(q.done("k", ok=False))
    assert delays == pytest.approx([retry.delay(n, 0.05, 0.15, jitter=False) for n in range(4)])
