"""Daemons with PID files: started detached, stopped with their children, never a stranger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from networking_vpp.testing.devcloud import procs

# A parent that starts a child in its own process group and then waits: like uWSGI.
PARENT_AND_CHILD = (
    "import subprocess, sys, time;"
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "print(c.pid, flush=True); time.sleep(60)"
)


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    pid_file, log = tmp_path / "p.pid", tmp_path / "p.log"
    daemon = procs.spawn("p", [sys.executable, "-c", PARENT_AND_CHILD], pid_file, log)

    def child_pid() -> int | None:
        last = log.read_text().splitlines()[-1]
        return int(last) if last.isdigit() else None

    child = procs.wait_until(child_pid, 10, "the child's pid in the log")
    assert daemon.died() is None
    assert procs.read_pid(pid_file) == daemon.proc.pid

    assert procs.stop(pid_file, timeout=5) is True
    assert not pid_file.exists()
    assert not procs.pid_alive(daemon.proc.pid)
    procs.wait_until(lambda: not procs.pid_alive(child), 5, "the child gone")
    assert procs.stop(pid_file) is False  # nothing left to stop


def test_stale_pid_file_never_signals_a_stranger(tmp_path: Path) -> None:
    # A PID file naming a process that does not lead its own group (here: a plain
    # child of this test, in our process group) is stale: it is removed, nothing is killed.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = tmp_path / "stale.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        assert procs.stop(pid_file) is False
        assert stranger.poll() is None
        assert not pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_died_reports_the_log_tail(tmp_path: Path) -> None:
    daemon = procs.spawn(
        "crash",
        [sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(3)"],
        tmp_path / "c.pid",
        tmp_path / "c.log",
    )
    with pytest.raises(procs.DevCloudError, match="(?s)status 3.*boom: no config"):
        procs.wait_until(lambda: False, 10, "never", alive=daemon.died)


def test_wait_until_times_out_with_the_last_error() -> None:
    def probe() -> None:
        raise ConnectionRefusedError("nobody there")

    with pytest.raises(procs.DevCloudError, match="timed out.*nobody there"):
        procs.wait_until(probe, 0.2, "a service", interval=0.01)
