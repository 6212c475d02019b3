"""A host for fault tests: the emulated VPP and the real agent, each a process of its own.

So that either can be SIGKILLed while the other lives on, as on a real host::

    vpp = VppProcess(workdir)                      # emulator on a Unix socket
    vpp.start()
    agent = AgentProcess(workdir, "compute-1", ["http://127.0.0.1:2379"], vpp)
    agent.start(); agent.kill(); agent.start()     # SIGKILL and start again
    vpp.kill(); vpp.start()                        # VPP crashes and comes back empty

:func:`dump_state` reads VPP's interfaces and bridge domains through its API, as
a test inspecting the host would.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.testing.vpp.remote import RemoteEmulator, control_path
from networking_vpp.testing.wait import wait_for

UPLINK = "GigabitEthernet0/8/0"
UPLINK_MAC = "52:54:00:00:08:00"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # PR_SET_PDEATHSIG: SIGKILL the child when the thread that started it ends, so a
    # test run killed outright leaves no emulator or agent behind. Start (and restart)
    # them from a long-lived thread.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def dump_state(vpp: RemoteEmulator) -> dict[str, Any]:
    """VPP's interfaces and bridge domains as plain dicts, read through its API.

    An interface's ``rx_modes`` are its receive queues' modes (sorted; none
    for a vhost-user interface whose VM has not started a queue).
    """
    adapter = vpp_adapter(vpp.path, vpp.api_dir, name="fault-inspector")
    adapter.connect()
    try:
        rx_modes = adapter.dump_rx_modes()
        return {
            "interfaces": [
                {
                    "sw_if_index": i.sw_if_index,
                    "name": i.name,
                    "tag": i.tag,
                    "admin_up": i.admin_up,
                    "mtu": i.mtu,
                    "rx_modes": sorted(rx_modes.get(i.sw_if_index, ())),
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
    """The emulator as a process on a Unix socket; kill it, start it again.

    ``uplinks`` maps each uplink NIC's name to its MAC (one per physnet).
    ``call_log``: the emulator notes every API message it serves, for the
    handle's ``take_log()`` (off for long-lived rigs, whose log would only grow).
    """

    def __init__(
        self, workdir: Path, uplinks: Mapping[str, str] | None = None, call_log: bool = False
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = str(workdir / "vpp-api.sock")
        self.log = workdir / "vpp.log"
        self.uplinks = dict(uplinks or {UPLINK: UPLINK_MAC})
        self.call_log = call_log
        self.proc: subprocess.Popen[bytes] | None = None
        self.handle: RemoteEmulator | None = None
        self.starts = 0

    def start(self, auto_connect_vms: bool = True) -> RemoteEmulator:
        """Start the emulator (empty, as VPP after a crash) and connect to its control side."""
        for stale in (self.socket, control_path(self.socket)):  # a killed process's
            if os.path.exists(stale):
                os.unlink(stale)
        cmd = [sys.executable, "-m", "networking_vpp.testing.vpp.remote", "--socket", self.socket]
        for name, mac in self.uplinks.items():
            cmd += ["--uplink", f"{name}={mac}"]
        if auto_connect_vms:
            cmd.append("--auto-connect-vms")
        if self.call_log:
            cmd.append("--call-log")
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
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
        """SIGKILL the emulator (VPP crashes: its state is gone)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        """Whether the emulator process runs."""
        return self.proc is not None and self.proc.poll() is None


class AgentProcess:
    """The real agent as a process (SIGKILL-able) on a :class:`VppProcess`'s socket.

    ``physnets`` maps physnet names to uplink NIC names (default: physnet1 on
    the emulator's default uplink). ``etcd_identity``: the host's ``[etcd]`` snippet
    (``networking-vpp etcd-setup``) when etcd has auth on. ``vhostuser_socket_dir``:
    the server's, where bindings' sockets must lie (default: the functional rig's).
    """

    def __init__(
        self,
        workdir: Path,
        host: str,
        etcd: list[str],
        vpp: VppProcess,
        physnets: Mapping[str, str] | None = None,
        etcd_identity: Path | None = None,
        vhostuser_socket_dir: str | None = None,
    ) -> None:
        self.host = host
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"agent-{host}.log"
        self.cmd = [
            sys.executable,
            "-m",
            "networking_vpp.testing.agent_process",
            "--host",
            host,
            "--vpp-socket",
            vpp.socket,
        ]
        for name, interface in (physnets or {"physnet1": UPLINK}).items():
            self.cmd += ["--physnet", f"{name}:{interface}"]
        for endpoint in etcd:
            self.cmd += ["--etcd", endpoint]
        if etcd_identity is not None:
            self.cmd += ["--etcd-identity", str(etcd_identity)]
        if vhostuser_socket_dir is not None:
            self.cmd += ["--vhostuser-socket-dir", vhostuser_socket_dir]
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the agent (it loads etcd, adopts what VPP has, and reconciles)."""
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the agent (SIGKILL by default) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # SIGTERM ignored by a wedged agent
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        """Whether the agent process runs."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        """The end of the agent's log, for assertion messages."""
        return self.log.read_text()[-3000:]


__all__ = ["UPLINK", "AgentProcess", "VppProcess", "dump_state"]
