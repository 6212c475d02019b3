"""Detached daemons with PID files, loopback ports, and bounded waits.

Every process the dev cloud starts goes through :func:`spawn`: it gets its own
session (so its whole process group can be stopped by the id in its PID file,
uWSGI workers included), its output goes to one log file, and :func:`stop`
ends exactly that process group and nothing else.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class DevCloudError(RuntimeError):
    """A component did not start, or did not become healthy in time."""


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], str | None] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy, or raise after ``timeout``.

    ``alive`` (if given) is asked on every round whether the process we wait for
    died; its message turns a long useless wait into an immediate error.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the check is a probe; keep probing
            last_error = exc
        if alive is not None:
            dead = alive()
            if dead:
                raise DevCloudError(f"{what}: {dead}")
        if time.monotonic() > deadline:
            hint = f" (last error: {last_error})" if last_error else ""
            raise DevCloudError(f"timed out after {timeout:.0f}s waiting for {what}{hint}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class Daemon:
    """A process :func:`spawn` started, and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log_file: Path

    def died(self) -> str | None:
        """For :func:`wait_until`'s ``alive``: why the process is gone, or None."""
        code = self.proc.poll()
        if code is None:
            return None
        return (
            f"{self.name} exited with status {code}; {self.log_file} ends:\n{tail(self.log_file)}"
        )


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace")
    except OSError:
        return "(no log)"


def spawn(
    name: str,
    argv: Sequence[str],
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> Daemon:
    """Start ``argv`` detached in its own session; write its PID file.

    ``die_with_parent``: the kernel sends SIGTERM to the process if the thread that
    started it ends (a test run killed outright leaves no daemon behind). Off for
    ``up.sh``, whose daemons outlive it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n==== {time.strftime('%F %T')} starting {name}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # pgid == pid: stop() reaches the children too
            preexec_fn=_term_with_parent if die_with_parent else None,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return Daemon(name, proc, log_file)


def _term_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # prctl(PR_SET_PDEATHSIG, SIGTERM)
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def read_pid(pid_file: Path) -> int | None:
    """The PID recorded in ``pid_file``, if the file exists and holds one."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for a group made only of zombies: look closer.
    return any(
        pid_alive(int(p)) for p in os.listdir("/proc") if p.isdigit() and _pgid_of(int(p)) == pgid
    )


def _pgid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal_and_wait(pgid: int, sig: int, timeout: float) -> bool:
    """Signal the group; True once every member is gone within ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pgid)  # the leader may be our own child: reap it, or it stays a zombie
        if not _group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


def stop(pid_file: Path, timeout: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the process group whose leader's PID is in ``pid_file``; remove the file.

    SIGTERM first, SIGKILL after ``timeout``. Only a group led by that PID is
    signalled (the PID file's process started its own session), so a stale PID
    file whose number was reused by an unrelated process is left alone.
    Returns whether something was running.
    """
    pid = read_pid(pid_file)
    if pid is None:
        return False
    running = _pgid_of(pid) == pid and pid_alive(pid)
    if running and not _signal_and_wait(pid, sig, timeout):
        _signal_and_wait(pid, signal.SIGKILL, 5.0)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return running
