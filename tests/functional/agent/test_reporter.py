"""The agent's report writer against a real etcd: batching while the agent is busy."""

from __future__ import annotations

import threading

import pytest

from networking_vpp.agent import report
from networking_vpp.agent.report import Reporter
from networking_vpp.common import keys as k
from networking_vpp.common import model

KEYS = k.KeySpace()
HOST = "compute-r"


def programmed(i: int) -> model.Programmed:
    return model.Programmed(
        interface=f"VirtualEthernet0/0/{i}",
        sw_if_index=i,
        bridge_domain=1,
        uplink="GigabitEthernet0/8/0",
        vlan=100,
        mtu=1500,
        mac_address="fa:16:3e:00:00:01",
    )


def paced(reporter: Reporter, ids: range) -> None:
    """Report ports as a busy agent does: one every couple of milliseconds, so
    that a writer which does not gather has time to write each on its own."""
    pace = threading.Event()
    for i in ids:
        reporter.port_active(f"p{i}", f"b{i}", programmed(i))
        pace.wait(0.002)  # the agent's work on the next port


@pytest.fixture
def busy():
    """Whether the agent has more work queued (what the reporter asks)."""
    return threading.Event()


@pytest.fixture
def reporter(etcd, busy, monkeypatch):
    # Long enough that a burst is surely queued within it, and that waiting it
    # out cannot pass for not waiting (half of it is the bound below).
    monkeypatch.setattr(report, "COALESCE_SECONDS", 3.0)
    r = Reporter(etcd, KEYS, HOST, more_coming=busy.is_set)
    r.start()
    yield r
    r.stop()


def test_reports_gather_while_the_agent_is_busy(reporter, busy, etcd):
    busy.set()
    reporter.port_active("p0", "b0", programmed(0))  # the first goes at once
    assert reporter.wait_idle(5)
    assert reporter.flushes == 1
    paced(reporter, range(1, 100))  # then a burst, as a resync makes: one transaction
    assert reporter.wait_idle(10)
    assert reporter.flushes == 2
    states, _ = etcd.get_prefix(KEYS.port_states_prefix(HOST))
    assert len(states) == 100


def test_a_full_batch_does_not_wait(reporter, busy):
    busy.set()
    reporter.port_active("p0", "b0", programmed(0))
    assert reporter.wait_idle(5)
    paced(reporter, range(1, report.MAX_TXN_OPS + 1))
    # A full transaction's worth is written without waiting out the interval.
    assert reporter.wait_idle(report.COALESCE_SECONDS / 2)
    assert reporter.flushes >= 2


def test_an_idle_agent_reports_at_once(reporter, busy):
    reporter.port_active("p0", "b0", programmed(0))
    assert reporter.wait_idle(5)
    reporter.port_active("p1", "b1", programmed(1))  # right after a write: no wait
    assert reporter.wait_idle(report.COALESCE_SECONDS / 2)
    assert reporter.flushes == 2
