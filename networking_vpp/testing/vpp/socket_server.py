"""The emulator served on a Unix socket, in VPP's own API socket protocol.

This is the emulator's one front door: a ``vpp_papi.VPPApiClient`` connects
to it exactly as to VPP's ``/run/vpp/api.sock``::

    vpp = VppEmulator()
    server = serve(vpp)                   # <tmp>/api.sock, <tmp>/api/*.api.json
    client = VPPApiClient(apidir=[server.api_dir], server_address=server.path)
    client.connect("agent")               # or server.connect("test"), for tests

The protocol, as VPP's ``socket_api.c`` and vpp_papi's socket transport
speak it: every message is a 16-byte header (``>QII``: a queue word, the
length of the message, a timestamp) and the message, whose first field is
``u16 _vl_msg_id``. The client sends ``sockclnt_create`` as message 15 and
VPP answers ``sockclnt_create_reply`` as message 16 with the client's index
and the message table (``<name>_<crc>`` and the index of each message VPP
has); the client then numbers its messages by that table and finds replies
by their ``context``. A dump is answered with its details and nothing else:
vpp_papi follows it with a ``control_ping`` whose reply ends the dump.
Events (``sw_interface_event``) come unasked to the clients that subscribed,
written before the reply of the call that caused them.
``sockclnt_delete`` is answered, then the socket is closed.

Messages are packed and unpacked by vpp_papi's own serializer, from
``.api.json`` files generated from the emulator's declarations
(``apijson.py``): the client's serializer checks the arguments, and a reply
is VPP's zero-filled message with the fields the handler gave. The handlers
get a request's fields as vpp_papi unpacked them, structs as dicts, MACs as
the emulator's ``MACAddress`` and prefixes sent with host bits marked
(``convert.py``). The emulator's life is the socket's: when it restarts,
every connection is closed (a client's reader sees EOF) and the socket keeps
listening; while it is stopped, the path does not exist and connecting is
refused.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vpp_papi import VPPApiClient
from vpp_papi.macaddress import MACAddress as PapiMACAddress
from vpp_papi.vpp_papi import VPPApiJSONFiles
from vpp_papi.vpp_serializer import VLAList

from networking_vpp.testing.vpp import apijson
from networking_vpp.testing.vpp.convert import MACAddress, mark_host_bits
from networking_vpp.testing.vpp.costs import CostModel
from networking_vpp.testing.vpp.defs import registry
from networking_vpp.testing.vpp.emulator import Request, VppEmulator
from networking_vpp.testing.vpp.errors import ConnectionBroken

LOG = logging.getLogger(__name__)

_HEADER = struct.Struct(">QII")  # queue word, message length, timestamp
_MSG_ID = struct.Struct(">H")
# vpp_papi sends sockclnt_create as 15 and expects its reply as 16 before it has
# a message table (VPP's memclnt messages are the first it registers).
_CREATE_ID, _CREATE_REPLY_ID = 15, 16


_PREFIX_TYPES = frozenset({"vl_api_prefix_t", "vl_api_ip4_prefix_t", "vl_api_ip6_prefix_t"})
_NETWORKS = (ipaddress.IPv4Network, ipaddress.IPv6Network)
_SCALARS = frozenset({int, bool, str, bytes, float})
_ZEROS = bytes(64 * 1024)  # a message of zeros, longer than any declared one


def _arg(value: Any, raw: Any = None) -> Any:
    """A value vpp_papi unpacked, as handlers take it (and vpp_papi packs it):
    structs as dicts, enums as ints, MACs as the emulator's. ``raw``: the same value unpacked
    without type conversion, to mark a prefix sent with host bits (None: the
    message has no prefix)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        if raw is None:
            return [_arg(v) for v in value]
        return [_arg(v, r) for v, r in zip(value, raw, strict=False)]  # (r: see _short)
    fields = getattr(value, "_fields", None)
    if fields is not None and isinstance(value, tuple):
        if raw is None:
            return {n: _arg(v) for n, v in zip(fields, value, strict=True)}
        return {n: _arg(v, r) for n, v, r in zip(fields, value, raw, strict=True)}
    if isinstance(value, int):  # an enum or flags value (IntFlag)
        return int(value)
    if kind is PapiMACAddress:
        return MACAddress(value.packed)
    if (
        raw is not None
        and kind in _NETWORKS
        and _sent_address(raw) not in (None, value.network_address.packed)
    ):
        return mark_host_bits(value)
    return value


def _sent_address(raw: Any) -> bytes | None:
    """The address bytes of a prefix as sent (unpacked without type conversion)."""
    address = getattr(raw, "address", None)
    if address is None:
        return None
    if isinstance(address, bytes):  # vl_api_ip4_prefix_t, vl_api_ip6_prefix_t
        return address
    return bytes(address.un.ip6 if address.af == 1 else address.un.ip4)


class _Message:
    """One message of the table: its index, vpp_papi's packer, its request if any."""

    __slots__ = ("name", "index", "papi", "fields", "request", "has_prefix", "_zeros")

    def __init__(
        self, name: str, index: int, papi: Any, request: Request | None, has_prefix: bool
    ) -> None:
        self.name = name
        self.index = index
        self.papi = papi  # vpp_papi's VPPMessage
        self.fields: tuple[str, ...] = tuple(papi.fields)
        self.request = request
        self.has_prefix = has_prefix  # a prefix field, whose host bits a handler may check
        self._zeros: dict[str, Any] | None = None

    def pack(self, values: dict[str, Any], context: int | None = None) -> bytes:
        """The message with these fields, the others zero (as VPP fills a reply)."""
        zeros = self._zeros
        if zeros is None:
            # vpp_papi's own values for a zero-filled message (structs as dicts).
            decoded, _ = self.papi.unpack(_ZEROS)
            zeros = self._zeros = dict(zip(self.fields, map(_arg, decoded), strict=True))
        data = zeros.copy()
        data.update(values)
        data["_vl_msg_id"] = self.index
        if context is not None:
            data["context"] = context
        return bytes(self.papi.pack(data))

    def args(self, body: bytes) -> dict[str, Any] | None:
        """A request's fields, unpacked by vpp_papi, as the handler takes them
        (None: a message this short cannot be read)."""
        try:
            decoded, _ = self.papi.unpack(body)
        except (struct.error, ValueError):
            short = self._short(body)
            if short is None:
                return None
            decoded, body = short
        if not self.has_prefix:
            return {n: _arg(v) for n, v in zip(self.fields, decoded, strict=True)}
        raw, _ = self.papi.unpack(body, ntc=True)
        return {n: _arg(v, r) for n, v, r in zip(self.fields, decoded, raw, strict=True)}

    def _short(self, body: bytes) -> tuple[tuple[Any, ...], bytes] | None:
        """A message with fewer elements than its count says (vpp_papi packs
        ``count=2, r=[]`` so), as VPP gets it: the variable array, the last
        field, holds only the elements that came; the handler decides
        (``verify_message_len``). Returns the fields and the padded message."""
        vla = self.papi.packers[-1]
        if not isinstance(vla, VLAList) or vla.size == 0:
            return None
        padded = body + _ZEROS
        try:
            decoded, total = self.papi.unpack(padded)
        except (struct.error, ValueError):
            return None
        start = total - len(decoded[-1]) * vla.size  # where the array begins
        came = max(0, (len(body) - start) // vla.size)
        return (*decoded[:-1], decoded[-1][:came]), padded


class _Session:
    """One client's connection: read, dispatch, answer; events written from any thread.

    It is what the emulator calls a client (``emulator.ApiClient``:
    ``_attach``/``_detach``, ``_deliver`` for events, ``_stop_events`` when
    VPP's process ends). Writes take ``send_lock``, and only this session's own thread closes the
    socket (under that lock), so no write lands on a descriptor number reused
    by a later connection.
    """

    def __init__(self, server: ApiServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.send_lock = threading.Lock()
        self.closed = False
        self.name = ""
        self.client_index = -1
        self.generation = -1
        self.connected = False

    # --- what the emulator calls -----------------------------------------------------
    def _deliver(self, events: list[dict[str, Any]]) -> None:
        event = self.server.table_by_name["sw_interface_event"]
        self._write(b"".join(_frame(event.pack(m)) for m in events))

    def _stop_events(self) -> None:
        """VPP's process ended: the client's reader sees EOF (the socket is closed
        by this session's thread, which wakes up from its read)."""
        self.connected = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # --- the connection ------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        with self.send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                LOG.debug("API client %s gone while writing", self.name)

    def _read_exact(self, size: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < size:
            chunk = self.sock.recv(size - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def run(self) -> None:
        """Serve the connection until the client leaves or VPP closes it."""
        try:
            while True:
                header = self._read_exact(_HEADER.size)
                if header is None:
                    return
                _, length, _ = _HEADER.unpack(header)
                body = self._read_exact(length)
                if body is None or not self._handle(body):
                    return
        except OSError:
            return  # shut down by a restart, or the client vanished
        finally:
            self.server.emulator._detach(self)
            with self.send_lock:
                self.closed = True
                self.sock.close()
            self.server._forget(self)

    def _handle(self, body: bytes) -> bool:
        """Answer one message; False ends the connection."""
        arrived = time.monotonic()
        (msg_id,) = _MSG_ID.unpack_from(body)
        msg = self.server.table_by_id.get(msg_id)
        if msg is None:
            # VPP drops a message it has no handler for; a test should hear of it.
            LOG.error("API client %s sent unknown message id %d", self.name, msg_id)
            return False
        if msg.request is None:
            decoded, _ = msg.papi.unpack(body)
            fields = dict(zip(msg.fields, decoded, strict=True))
            if msg.name == "sockclnt_create":
                return self._create(fields)
            if msg.name == "sockclnt_delete":
                # Gone before the reply, as in VPP: a client that reads the reply finds
                # its registration (and subscriptions) deleted.
                self.server.emulator._detach(self)
                reply = self.server.table_by_name["sockclnt_delete_reply"]
                self._write(_frame(reply.pack({"response": 0}, fields["context"])))
                return False
            LOG.error("API client %s sent %s, which is no request", self.name, msg.name)
            return False
        args = msg.args(body)
        if args is None:
            LOG.error("API client %s sent a %s too short to read", self.name, msg.name)
            return False
        context = args.pop("context")
        del args["_vl_msg_id"]
        args.pop("client_index", None)  # the emulator knows its client
        log = self.server.call_log
        if log is not None:  # copied now: the emulator's call may change the dict
            arguments = dict(args)
        try:
            answer = self.server.emulator._call(self, msg.request, args)
        except ConnectionBroken:
            return False  # an injected I/O failure, or VPP restarted meanwhile: the socket breaks
        if log is not None:
            log.record(msg.name, arguments)
        data = self.server.encode(msg.request, answer, context)
        costs = self.server.costs
        if costs is not None:
            # Held until VPP's main thread would have answered: this session's
            # next message is read only then, as VPP reads a client's in order.
            costs.wait_until(costs.charge(arrived, msg.name, _details(msg.request, answer)))
        self._write(data)
        return True

    def _create(self, fields: dict[str, Any]) -> bool:
        self.name = fields["name"]
        try:
            self.server.emulator._attach(self)
        except ConnectionRefusedError:
            return False  # stopped between accept and create
        reply = self.server.table_by_name["sockclnt_create_reply"]
        table = self.server.message_table
        data = {"index": self.client_index, "count": len(table), "message_table": table}
        self._write(_frame(reply.pack(data, fields["context"])))
        return True


class CallLog:
    """The messages a server answered, in the order it served them: (name, arguments).

    A test's record of what the agent asked of VPP (``take()`` empties it);
    ``arguments`` are the message's fields as the client sent them, without
    the ``context`` and ``client_index`` vpp_papi adds. Requests that broke the
    connection (an injected I/O failure, a restart) were not served and are
    not in it; requests VPP refused with an error are.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[str, dict[str, Any]]] = []

    def record(self, name: str, arguments: dict[str, Any]) -> None:
        """Note one served message (sessions serve on threads of their own)."""
        with self._lock:
            self._calls.append((name, arguments))

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """The messages served since the last take, oldest first."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls


def _details(request: Request, answer: Any) -> int:
    """How many details a dump's answer holds (0 for other messages)."""
    return len(answer) if request.stream else 0


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(0, len(payload), 0) + payload


class ApiServer:
    """Serves one emulator's API on a Unix socket path.

    ``api_dir`` (default: ``api/`` beside the socket) receives the generated
    ``.api.json`` files a client loads. ``close()`` stops serving. A test's
    vpp_papi clients: ``client()`` (unconnected: a ``VppAdapter``'s factory)
    and ``connect(name)``.
    ``costs``: VPP's service times, charged to every request (``costs.py``);
    None answers as fast as the emulator can. ``call_log``: where every
    served message is noted (none by default: a long-lived server's log
    would only grow).
    """

    def __init__(
        self,
        emulator: VppEmulator,
        path: str,
        api_dir: str | None = None,
        costs: CostModel | None = None,
        call_log: CallLog | None = None,
    ) -> None:
        self.emulator = emulator
        self.costs = costs
        self.call_log = call_log
        self.path = path
        self.api_dir = api_dir or api_dir_for(path)
        files = [str(p) for p in apijson.write_api_files(self.api_dir)]
        _, papi_messages, _ = VPPApiJSONFiles.load_api(apifiles=files)
        self.table_by_name: dict[str, _Message] = {}
        self.table_by_id: dict[int, _Message] = {}
        reg = registry()
        index = 1
        requests = emulator.requests
        for name in reg.messages:
            if name == "sockclnt_create":
                msg_index = _CREATE_ID
            elif name == "sockclnt_create_reply":
                msg_index = _CREATE_REPLY_ID
            else:
                if index in (_CREATE_ID, _CREATE_REPLY_ID):
                    index = _CREATE_REPLY_ID + 1
                msg_index, index = index, index + 1
            has_prefix = name in requests and bool(_PREFIX_TYPES & reg.referenced_types([name]))
            msg = _Message(name, msg_index, papi_messages[name], requests.get(name), has_prefix)
            self.table_by_name[name] = msg
            self.table_by_id[msg_index] = msg
        #: sockclnt_create_reply's message_table: what a client may send and receive
        self.message_table = [
            {"index": m.index, "name": f"{m.name}_{m.papi.crc[2:]}"}
            for m in self.table_by_id.values()
        ]
        self._lock = threading.Lock()
        self._sessions: set[_Session] = set()
        self._clients: list[Any] = []  # connect()'s
        #: a directory that close() removes (serve()'s temporary one)
        self.temp_dir: str | None = None
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._closed = False
        emulator.on_running.append(self._running)
        if emulator.running:
            self._listen()

    # --- listening ---------------------------------------------------------------------
    def _listen(self) -> None:
        with self._lock:
            if self._listener is not None or self._closed:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # a previous life's socket file
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.path)
            listener.listen(64)
            self._listener = listener
            self._accepter = threading.Thread(
                target=self._accept, args=(listener,), name=f"vpp-api {self.path}", daemon=True
            )
            self._accepter.start()

    def _unlisten(self) -> None:
        """Stop accepting: the path goes, so connecting is refused (as with VPP down)."""
        with self._lock:
            listener, self._listener = self._listener, None
            accepter, self._accepter = self._accepter, None
        if listener is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        if accepter is not None:
            accepter.join()
        listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # shut down
            session = _Session(self, sock)
            with self._lock:
                self._sessions.add(session)
            threading.Thread(target=session.run, name="vpp-api-client", daemon=True).start()

    def _forget(self, session: _Session) -> None:
        with self._lock:
            self._sessions.discard(session)

    def _running(self, running: bool) -> None:
        if running:
            self._listen()
        else:
            self._unlisten()

    def close(self) -> None:
        """Disconnect ``connect()``'s clients, stop listening and close every connection."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):  # vpp_papi's, on a connection gone already
                client.disconnect()
        with self._lock:
            self._closed = True
            sessions = list(self._sessions)
        with contextlib.suppress(ValueError):
            self.emulator.on_running.remove(self._running)
        self._unlisten()
        for session in sessions:
            session._stop_events()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    # --- replies -----------------------------------------------------------------------
    def encode(self, request: Request, answer: Any, context: int) -> bytes:
        """The framed messages answering ``request``: its reply, or a dump's details
        (the client's control_ping ends a dump)."""
        reply = self.table_by_name[request.reply]
        if not request.stream:
            return _frame(reply.pack(answer, context))
        return b"".join(_frame(reply.pack(row, context)) for row in answer)

    # --- clients, for tests --------------------------------------------------------------
    def client(self) -> Any:
        """A vpp_papi client of this socket, not connected yet (``VppAdapter``'s factory)."""
        return VPPApiClient(apidir=[self.api_dir], server_address=self.path, read_timeout=5)

    def connect(self, name: str = "test") -> Any:
        """A connected vpp_papi client of this socket; ``close()`` disconnects it."""
        client = self.client()
        client.connect(name)
        with self._lock:
            self._clients.append(client)
        return client


def api_dir_for(api_socket: str) -> str:
    """Where a server on ``api_socket`` writes its ``.api.json`` files by default."""
    return str(Path(api_socket).parent / "api")


def serve(
    emulator: VppEmulator,
    directory: str | None = None,
    costs: CostModel | None = None,
    call_log: CallLog | None = None,
) -> ApiServer:
    """Serve ``emulator`` on ``<directory>/api.sock``.

    By default in a new temporary directory, which ``close()`` removes.
    """
    base = directory or tempfile.mkdtemp(prefix="vpp-emulator-")
    sock, api_dir = os.path.join(base, "api.sock"), os.path.join(base, "api")
    server = ApiServer(emulator, sock, api_dir, costs, call_log)
    if directory is None:
        server.temp_dir = base
    return server
