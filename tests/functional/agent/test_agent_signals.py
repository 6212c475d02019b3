"""``vpp-agent`` as a process: it stops on SIGTERM/SIGINT at any moment,
including while etcd is unreachable at start-up."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from networking_vpp.testing.wait import wait_for


def refusing_endpoint() -> str:
    """An etcd endpoint that refuses connections (a port bound, never listened on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_promptly_while_etcd_refuses_at_start(tmp_path: Path, sig: signal.Signals) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        f"[etcd]\nendpoints = {refusing_endpoint()}\ntimeout = 1.0\n"
        "[vpp_agent]\nhost = compute-sig\n"
        f"vpp_api_socket = {tmp_path}/absent.sock\nvhostuser_socket_dir =\n"
        "watch_tap_devices = false\n"
    )
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "networking_vpp.agent.main", "--config-file", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Stuck on etcd: it has said so at least once (a retry is under way).
        wait_for(lambda: b"etcd unavailable" in log.read_bytes(), 30, "etcd refusals logged")
        sent = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, log.read_text()
    assert took < 5, f"{took:.1f}s to stop"
