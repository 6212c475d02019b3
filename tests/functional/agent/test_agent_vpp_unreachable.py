"""etcd up, VPP absent: one clear line, not a traceback at every try.

A host where VPP is not running (or not installed: no socket, no API files)
looks for it several times a second (agent.py, _watch_vpp); the failure is
one warning, "VPP not reachable at <socket>: <reason>; retrying", said again
when the reason changes or a minute has passed, and the host is not alive
meanwhile (liveness means the data plane works).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.agent.vpp.connect import papi_client_factory
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.wait import wait_for
from tests.functional.agent.conftest import KEYS, PHYSNETS

SOCKET = "/run/vpp-test-absent/api.sock"


def _no_vpp():  # noqa: ANN202
    raise FileNotFoundError(2, "No such file or directory")


def test_one_line_while_vpp_is_absent(etcd: EtcdClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="networking_vpp")
    agent = Agent(
        AgentSettings(host="compute-9", physnets=dict(PHYSNETS), vpp_reconnect_interval=0.05),
        etcd,
        VppAdapter(_no_vpp, address=SOCKET),
    )
    agent.start()
    try:
        wait_for(lambda: agent.vpp_connect_failures >= 3, what="three failed connections")
    finally:
        agent.stop()
    lines = [
        r for r in caplog.records if r.name == "networking_vpp.agent.agent" and r.levelno >= 30
    ]
    assert len(lines) == 1
    for record in lines:
        assert record.getMessage() == (
            f"VPP not reachable at {SOCKET}: [Errno 2] No such file or directory; retrying"
        )
        assert record.levelno == logging.WARNING
        assert record.exc_info is None
    assert etcd.get(KEYS.alive("compute-9")) is None


def test_missing_api_files_are_said_plainly(tmp_path: Path) -> None:
    pytest.importorskip("vpp_papi")
    adapter = VppAdapter(papi_client_factory(SOCKET, str(tmp_path)), address=SOCKET)
    with pytest.raises(Exception) as caught:
        adapter.connect()
    assert str(caught.value) == (
        f"VPP not reachable at {SOCKET}: no VPP API definitions (*.api.json) under {tmp_path}"
    )
