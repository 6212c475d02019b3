"""The emulator in its own process, reached over a Unix socket like VPP's API.

Fault tests need VPP to outlive a SIGKILLed agent (and an agent to outlive a
killed VPP), so the emulator runs as a process of its own and agents connect
to it as they would to VPP's API socket::

    python -m networking_vpp.testing.vpp.remote --socket /tmp/vpp.sock \\
        --uplink GigabitEthernet0/8/0=52:54:00:00:08:00

``RemoteClient`` has vpp_papi's client surface (for ``VppAdapter``), and
``RemoteEmulator`` gives tests the emulator's hooks (``restart``,
``vm_connect``, ``passes`` ...) and counters. Messages are pickled over
``multiprocessing.connection``; replies travel as plain data and come back as
attribute objects, so nothing depends on dynamically made classes.
"""

from __future__ import annotations

import argparse
import collections
import enum
import ipaddress
import logging
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from networking_vpp.testing.vpp.convert import MACAddress
from networking_vpp.testing.vpp.emulator import VppEmulator
from networking_vpp.testing.vpp.errors import VPPIOError

LOG = logging.getLogger(__name__)
AUTHKEY = b"networking-vpp-emulator"


class Msg:
    """A reply or details message rebuilt from plain data (attribute access)."""

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)
        self._name = name

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "_name")
        return f"{self._name}({body})"


def _plain(value: Any) -> Any:
    """Picklable plain data of a reply (namedtuples of dynamic classes are not)."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (
            "__msg__",
            type(value).__name__,
            {f: _plain(getattr(value, f)) for f in value._fields},
        )
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, MACAddress):
        return str(value)
    if isinstance(value, enum.IntEnum | enum.IntFlag):
        return int(value)
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


class EmulatorServer:
    """Serves one emulator to API clients and to a test's control connection."""

    def __init__(self, emulator: VppEmulator, path: str) -> None:
        self.emulator = emulator
        self._listener = Listener(path, family="AF_UNIX", authkey=AUTHKEY)
        #: mutating calls made through API connections: (message, fields)
        self.log: list[tuple[str, dict[str, Any]]] = []

    def serve_forever(self) -> None:
        """Accept connections until the process ends."""
        while True:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError, AuthenticationError) as exc:
                # One client's failed handshake (killed mid-way, or garbled) must not
                # end the emulator: VPP keeps serving its other clients.
                LOG.warning("API connection refused during the handshake: %r", exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            kind = conn.recv()
            if kind == "control":
                self._control(conn)
            else:
                self._api(conn)
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def _control(self, conn: Connection) -> None:
        while True:
            op, name, args, kwargs = conn.recv()
            try:
                if op == "attr":
                    result = getattr(self.emulator, name)
                    if isinstance(result, collections.Counter):
                        result = dict(result)
                elif op == "log":
                    result, self.log = self.log, [] if args and args[0] else self.log
                else:
                    result = getattr(self.emulator, name)(*args, **kwargs)
                conn.send(("ok", _plain(result)))
            except Exception as exc:  # noqa: BLE001 - reported to the test
                conn.send(("error", repr(exc)))

    def _api(self, conn: Connection) -> None:
        client = self.emulator.client()
        # Sends (replies, and events from the emulator's threads) and the close are
        # serialised: a send racing the close could write into the descriptor number
        # the next accepted client already reuses, garbling its handshake.
        send_lock = threading.Lock()
        closed = False

        def on_event(name: str, msg: Any) -> None:
            with send_lock:
                if not closed:
                    conn.send(("event", name, _plain(msg)))

        try:
            while True:
                op, name, kwargs = conn.recv()
                try:
                    if op == "connect":
                        client.connect(name)
                        client.register_event_callback(on_event)
                        result: Any = None
                    elif op == "disconnect":
                        result = client.disconnect()
                    else:
                        result = getattr(client.api, name)(**kwargs)
                        self.log.append((name, kwargs))
                    reply: tuple[Any, ...] = ("ok", _plain(result))
                except OSError as exc:
                    reply = ("ioerror", str(exc))
                except Exception as exc:  # noqa: BLE001 - raised again in the client
                    reply = ("error", exc)
                with send_lock:
                    conn.send(reply)
        finally:
            try:
                client.disconnect()
            except OSError:
                pass
            with send_lock:
                closed = True
                conn.close()


# --- clients --------------------------------------------------------------------------------


def _shutdown(conn: Connection) -> None:
    """Shut a connection's socket down both ways (a blocked reader sees EOF); keep the fd."""
    try:
        dup = socket.socket(fileno=os.dup(conn.fileno()))
    except OSError:
        return  # already closed
    try:
        dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the peer is gone already
    finally:
        dup.close()  # closes only the duplicate descriptor


class _RemoteApi:
    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return lambda **kwargs: self._call("call", name, kwargs)


class RemoteClient:
    """vpp_papi's client surface over the emulator's socket (for VppAdapter)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: Connection | None = None
        self._replies: queue.Queue[Any] = queue.Queue()
        self._events: queue.Queue[Any] = queue.Queue()
        self._callback: Callable[[str, Any], None] | None = None
        self.api = _RemoteApi(self._request)

    def connect(self, name: str) -> None:
        """Connect to the emulator process (ConnectionRefusedError if it is not there)."""
        try:
            self._conn = Client(self._path, family="AF_UNIX", authkey=AUTHKEY)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConnectionRefusedError(111, f"VPP API socket {self._path}: {exc}") from exc
        self._conn.send("api")
        threading.Thread(target=self._read, args=(self._conn,), daemon=True).start()
        threading.Thread(target=self._dispatch, daemon=True).start()
        self._request("connect", name, {})

    def disconnect(self) -> None:
        """Close the connection.

        The socket is shut down, not closed: the reader thread, blocked in ``recv``
        on it, wakes up with EOF and closes it. Closing it here would free the
        descriptor number under the reader, and the next connection (this process
        often reconnects at once) would get that number: the old reader would then
        read the new connection's bytes.
        """
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.send(("disconnect", "", {}))
            except OSError:
                pass
            _shutdown(conn)
        self._events.put(None)

    def register_event_callback(self, callback: Callable[[str, Any], None] | None) -> None:
        """As vpp_papi: events reach ``callback(name, msg)`` on another thread."""
        self._callback = callback

    def _request(self, op: str, name: str, kwargs: dict[str, Any]) -> Any:
        conn = self._conn
        if conn is None:
            raise VPPIOError(2, "VPP API client: not connected")
        try:
            conn.send((op, name, kwargs))
        except OSError as exc:
            raise VPPIOError(2, f"VPP API client: write failed: {exc}") from exc
        status, payload = self._replies.get()
        if status == "ok":
            return _rebuild(payload)
        if status == "ioerror":
            raise VPPIOError(2, payload)
        raise payload

    def _read(self, conn: Connection) -> None:
        """Read replies and events of ``conn`` until it ends; then close it (its owner)."""
        try:
            while True:
                msg = conn.recv()
                if msg[0] == "event":
                    self._events.put((msg[1], _rebuild(msg[2])))
                else:
                    self._replies.put(msg)
        except (EOFError, OSError, TypeError, ValueError):
            self._replies.put(("ioerror", "VPP API client: read failed (connection closed)"))
            self._events.put(None)
        finally:
            conn.close()

    def _dispatch(self) -> None:
        while (item := self._events.get()) is not None:
            if self._callback is not None:
                try:
                    self._callback(*item)
                except Exception:  # noqa: BLE001 - as vpp_papi, an event bug is logged
                    LOG.exception("event callback failed")


class RemoteEmulator:
    """A test's handle on the emulator process: hooks and counters."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = Client(path, family="AF_UNIX", authkey=AUTHKEY)
        self._conn.send("control")
        self._lock = threading.Lock()

    def client(self) -> RemoteClient:
        """A new API client (use as VppAdapter's client factory)."""
        return RemoteClient(self.path)

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
        """The API calls made through the socket since the last take."""
        return self._ask("log", "", True)

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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    emulator = VppEmulator()
    emulator.auto_connect_vms = args.auto_connect_vms
    for spec in args.uplink:
        name, mac = spec.split("=")
        emulator.add_hardware_interface(name, mac)
    server = EmulatorServer(emulator, args.socket)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    server.serve_forever()


if __name__ == "__main__":
    main()
