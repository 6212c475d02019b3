"""Real processes for the fault suite: emulated VPP and agents, each its own process.

Every scenario records its figures (operations, faults, lost or reordered
updates, time to converge) with the ``figures`` fixture; they are printed at
the end of the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.testing.vpp.remote import RemoteEmulator
from networking_vpp.testing.wait import wait_for

UPLINK = "GigabitEthernet0/8/0"
_FIGURES: list[str] = []


def dump_state(vpp: RemoteEmulator) -> dict:
    """VPP's interfaces and bridge domains as plain dicts, read through its API."""
    adapter = VppAdapter(vpp.client, name="fault-inspector")
    adapter.connect()
    try:
        return {
            "interfaces": [
                {
                    "sw_if_index": i.sw_if_index,
                    "name": i.name,
                    "tag": i.tag,
                    "admin_up": i.admin_up,
                    "mtu": i.mtu,
                }
                for i in adapter.dump_interfaces()
            ],
            "bridge_domains": [
                {"bd_id": b.bd_id, "tag": b.tag, "members": sorted(b.members)}
                for b in adapter.dump_bridge_domains()
            ],
        }
    finally:
        adapter.disconnect()


class VppProcess:
    """The emulator as a process on a Unix socket; kill it, start it again."""

    def __init__(self, workdir: Path) -> None:
        self.socket = str(workdir / "vpp-api.sock")
        self.log = workdir / "vpp.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.handle: RemoteEmulator | None = None

    def start(self, auto_connect_vms: bool = True) -> RemoteEmulator:
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        cmd = [
            sys.executable,
            "-m",
            "networking_vpp.testing.vpp.remote",
            "--socket",
            self.socket,
            "--uplink",
            f"{UPLINK}=52:54:00:00:08:00",
        ]
        if auto_connect_vms:
            cmd.append("--auto-connect-vms")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.handle = wait_for(self._connect, 20, "emulator process")  # type: ignore[assignment]
        assert self.handle is not None
        return self.handle

    def _connect(self) -> RemoteEmulator | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"emulator exited: {self.log.read_text()[-2000:]}")
        try:
            return RemoteEmulator(self.socket)
        except (FileNotFoundError, ConnectionRefusedError):
            return None

    def kill(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class AgentProcess:
    """The real agent as a process (SIGKILL-able)."""

    def __init__(self, workdir: Path, host: str, etcd: list[str], vpp: VppProcess) -> None:
        self.host = host
        self.log = workdir / f"agent-{host}.log"
        self.cmd = [
            sys.executable,
            "-m",
            "networking_vpp.testing.agent_process",
            "--host",
            host,
            "--vpp-socket",
            vpp.socket,
            "--physnet",
            f"physnet1:{UPLINK}",
        ]
        for endpoint in etcd:
            self.cmd += ["--etcd", endpoint]
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


@pytest.fixture
def vpp_process(tmp_path: Path) -> Iterator[VppProcess]:
    vpp = VppProcess(tmp_path)
    vpp.start()
    yield vpp
    vpp.kill()


@pytest.fixture
def agent_process(tmp_path, etcd_server, vpp_process) -> Iterator[Callable[..., AgentProcess]]:
    made: list[AgentProcess] = []

    def make(host: str = "compute-1", endpoints: list[str] | None = None) -> AgentProcess:
        agent = AgentProcess(tmp_path, host, endpoints or [etcd_server.endpoint], vpp_process)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.kill()


@pytest.fixture
def figures() -> Callable[[str], None]:
    """Record one scenario's figures for the closing summary."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    if _FIGURES:
        terminalreporter.section("fault suite figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
