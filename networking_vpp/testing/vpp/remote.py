"""The emulator in its own process: VPP's API socket and a test's control socket.

Fault tests need VPP to outlive a SIGKILLed agent (and an agent to outlive a
killed VPP), so the emulator runs as a process of its own. Agents connect to
its API socket with vpp_papi, as to VPP (``socket_server.py``; the
``.api.json`` files are written to ``api/`` beside the socket); tests reach
the emulator's hooks (``restart``, ``vm_connect``, ``passes`` ...), its
counters and, with ``--call-log``, the messages its API socket served
(``take_log()``) through ``RemoteEmulator`` on ``<socket>.control``::

    python -m networking_vpp.testing.vpp.remote --socket /tmp/vpp.sock \\
        --uplink GigabitEthernet0/8/0=52:54:00:00:08:00

Control requests are pickled over ``multiprocessing.connection``; results
travel as plain data and come back as attribute objects, so nothing depends
on dynamically made classes.
"""

from __future__ import annotations

import argparse
import collections
import enum
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from networking_vpp.testing.vpp.convert import MACAddress
from networking_vpp.testing.vpp.costs import CostModel
from networking_vpp.testing.vpp.emulator import VppEmulator
from networking_vpp.testing.vpp.socket_server import ApiServer, CallLog, api_dir_for

LOG = logging.getLogger(__name__)
AUTHKEY = b"networking-vpp-emulator"


def control_path(api_socket: str) -> str:
    """Where the emulator process beside ``api_socket`` takes control requests."""
    return api_socket + ".control"


class Msg:
    """A result rebuilt from plain data (attribute access)."""

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)
        self._name = name

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "_name")
        return f"{self._name}({body})"


def _plain(value: Any) -> Any:
    """Picklable plain data of a result (namedtuples of dynamic classes are not)."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (
            "__msg__",
            type(value).__name__,
            {f: _plain(getattr(value, f)) for f in value._fields},
        )
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):  # a call log's arguments
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, MACAddress):
        return str(value)
    if isinstance(value, enum.IntEnum | enum.IntFlag):
        return int(value)
    if isinstance(value, enum.Enum):  # vpp_papi's enum and flag classes are made at load
        return value.value
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    return value


def _rebuild(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "__msg__":
        return Msg(value[1], {k: _rebuild(v) for k, v in value[2].items()})
    if isinstance(value, list | tuple):
        return type(value)(_rebuild(v) for v in value)
    return value


# --- server -------------------------------------------------------------------------------


class ControlServer:
    """Serves one emulator's hooks and counters to tests' control connections.

    ``call_log``: the API server's record of served messages, taken by ``take_log``.
    """

    def __init__(self, emulator: VppEmulator, path: str, call_log: CallLog | None = None) -> None:
        self.emulator = emulator
        self.call_log = call_log
        self._listener = Listener(path, family="AF_UNIX", authkey=AUTHKEY)

    def serve_forever(self) -> None:
        """Accept connections until the process ends."""
        while True:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError, AuthenticationError) as exc:
                # One test's failed handshake must not end the emulator.
                LOG.warning("control connection refused during the handshake: %r", exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            while True:
                op, name, args, kwargs = conn.recv()
                try:
                    if op == "attr":
                        result = getattr(self.emulator, name)
                        if isinstance(result, collections.Counter):
                            result = dict(result)
                    elif op == "log":
                        if self.call_log is None:
                            raise RuntimeError("the emulator was started without --call-log")
                        result = self.call_log.take()
                    else:
                        result = getattr(self.emulator, name)(*args, **kwargs)
                    conn.send(("ok", _plain(result)))
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    conn.send(("error", repr(exc)))
        except (EOFError, OSError):
            pass
        finally:
            conn.close()


# --- the test's side --------------------------------------------------------------------


class RemoteEmulator:
    """A test's handle on the emulator process: hooks and counters.

    ``path`` is the API socket (agents connect there with vpp_papi, and
    ``api_dir`` holds the ``.api.json`` files they load).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.api_dir = api_dir_for(path)
        self._conn = Client(control_path(path), family="AF_UNIX", authkey=AUTHKEY)
        self._lock = threading.Lock()

    def _ask(self, op: str, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send((op, name, args, kwargs))
            status, payload = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulator {name} failed: {payload}")
        return _rebuild(payload)

    def attr(self, name: str) -> Any:
        """An attribute of the emulator (``mutations``, ``calls`` ...)."""
        return self._ask("attr", name)

    def take_log(self) -> list[tuple[str, dict[str, Any]]]:
        """The messages the API socket served since the last take: (name, arguments)."""
        return self._ask("log", "take_log")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._ask("call", name, *args, **kwargs)

    def close(self) -> None:
        """Drop the control connection."""
        self._conn.close()


def main() -> None:
    """Run an emulator process until SIGTERM."""
    parser = argparse.ArgumentParser(description="VPP emulator on a Unix socket")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--uplink", action="append", default=[], help="NAME=MAC")
    parser.add_argument("--auto-connect-vms", action="store_true")
    parser.add_argument(
        "--costs",
        default=None,
        help="charge VPP's service times (costs.py): 'default', or <message>=<seconds>,...",
    )
    parser.add_argument(
        "--call-log",
        action="store_true",
        help="note every served API message for the control channel's take_log",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    emulator = VppEmulator()
    emulator.auto_connect_vms = args.auto_connect_vms
    for spec in args.uplink:
        name, mac = spec.split("=")
        emulator.add_hardware_interface(name, mac)
    costs = None
    if args.costs is not None:
        costs = CostModel.parse("" if args.costs == "default" else args.costs)
    call_log = CallLog() if args.call_log else None
    ApiServer(emulator, args.socket, costs=costs, call_log=call_log)  # serves on its own threads
    control = ControlServer(emulator, control_path(args.socket), call_log)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    control.serve_forever()


if __name__ == "__main__":
    main()
