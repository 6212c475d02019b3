"""VPP's API socket for a ``VPPApiClient``: vpp_papi's protocol, less per-message work.

vpp_papi 2.4's socket transport spent about 40 % of the agent's CPU while
programming ports (``benchmarks/agent_resync.py``): its reader thread polls
before each message, reads each in two ``recv`` calls, builds a serializer
type per message to see whether the message carries a context (namedtuple
creation, the biggest cost), and hands replies over through a
``multiprocessing.Queue``, which pickles each in a feeder thread and unpickles
it from a pipe. An agent is one process with threads.

:class:`SocketTransport` speaks the same protocol on the same socket and keeps
vpp_papi's transport interface (the client calls ``connect``, ``write``,
``read`` ...), so everything above it is vpp_papi's own: the message table,
packing and unpacking, ``client.api``. What differs:

* the reader takes whatever the socket has (many messages a ``recv``) and
  splits it into messages by their 16-byte header;
* whether a message is a reply (its definition has a ``context``) is looked up
  once per message id, as vpp_papi decides it;
* replies go to a ``queue.SimpleQueue``; events to the client's
  ``msg_handler_async`` on the reader thread, as vpp_papi does;
* a message and its header leave in one ``sendall``;
* once the connection has ended, :meth:`read` says so at once (vpp_papi's
  returns its end once and then waits out the read timeout).
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
from typing import Any

from vpp_papi.vpp_transport_socket import VppTransportSocketIOError

LOG = logging.getLogger(__name__)

# VPP's socket framing: every message is preceded by (queue, length, timestamp),
# big-endian u64, u32, u32.
_HEADER = struct.Struct(">QII")
# memclnt's first messages have fixed ids on every VPP: the handshake that
# fetches the message table cannot look them up (vpp_papi hard-codes them too).
_SOCKCLNT_CREATE_ID = 15
_SOCKCLNT_CREATE_REPLY_ID = 16
_RECV_SIZE = 256 * 1024
_END = None  # what read() returns once the connection has ended


class SocketTransport:
    """A drop-in for vpp_papi's ``VppTransport`` (the socket transport)."""

    VppTransportSocketIOError = VppTransportSocketIOError

    def __init__(self, parent: Any, read_timeout: float, server_address: str) -> None:
        self.parent = parent  # the VPPApiClient
        self.read_timeout = read_timeout if read_timeout > 0 else None
        self.server_address = server_address
        self.connected = False
        self.socket: socket.socket | None = None
        self.socket_index = 0
        self.message_table: dict[str, int] = {}
        self.do_async = False
        self._replies: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._ended = threading.Event()
        self._reader: threading.Thread | None = None
        # message id -> whether it is a reply (has a context), learnt as they come
        self._is_reply: dict[int, bool] = {}

    # --- vpp_papi's transport interface -------------------------------------------
    def connect(
        self, name: str, pfx: Any, msg_handler: Any, rx_qlen: int, do_async: bool = False
    ) -> int:
        """Open the socket, register as a client and learn VPP's message table."""
        if self._reader is not None:
            raise VppTransportSocketIOError(1, "connected already: disconnect first")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.read_timeout)
        sock.connect(self.server_address)
        self.socket = sock
        self.connected = True
        self._replies = queue.SimpleQueue()
        self._ended = threading.Event()
        self._is_reply = {}
        create = self.parent.messages["sockclnt_create"]
        self.write(create.pack({"_vl_msg_id": _SOCKCLNT_CREATE_ID, "name": name, "context": 124}))
        reply = self._read_one(sock)
        if int.from_bytes(reply[:2], "big") != _SOCKCLNT_CREATE_REPLY_ID:
            raise VppTransportSocketIOError(2, "VPP answered the registration with another message")
        r, _ = self.parent.messages["sockclnt_create_reply"].unpack(reply)
        self.socket_index = r.index
        self.message_table = {m.name: m.index for m in r.message_table}
        self.do_async = do_async
        # The socket keeps its timeout: a write that makes no progress for that
        # long (VPP's main thread hung, its socket buffer full) fails instead
        # of holding the agent for ever; the reader takes its timeouts as
        # quiet spells.
        self._reader = threading.Thread(
            target=self._read_loop, args=(sock,), name="vpp-api-reader", daemon=True
        )
        self._reader.start()
        return 0

    def disconnect(self) -> int:
        """Tell VPP we go (if it listens), close, and stop the reader."""
        rv = 0
        if self.connected and not self._ended.is_set():
            try:
                rv = self.parent.api.sockclnt_delete(index=self.socket_index)
            except (OSError, self.parent.VPPApiError):
                pass
        self.connected = False
        sock, self.socket = self.socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv
            except OSError:
                pass
            sock.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join()
        self.message_table = {}  # a restarted VPP may number messages anew
        return rv

    def suspend(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def get_callback(self, do_async: bool) -> Any:
        return self.callback

    def callback(self) -> None:
        raise NotImplementedError

    def get_msg_index(self, name: str) -> int:
        """The id VPP gave ``<name>_<crc>``, 0 if it has no such message."""
        return self.message_table.get(name, 0)

    def msg_table_max_index(self) -> int:
        return max(self.message_table.values() or [0])

    def write(self, buf: bytes) -> None:
        """Send one packed message."""
        sock = self.socket
        if not self.connected or sock is None:
            raise VppTransportSocketIOError(1, "Not connected")
        try:
            sock.sendall(_HEADER.pack(0, len(buf), 0) + buf)
        except OSError as err:
            raise VppTransportSocketIOError(1, f"Sendall error: {err!r}") from err

    def write_many(self, bufs: list[bytes]) -> None:
        """Send packed messages in one system call (a pipeline's requests)."""
        sock = self.socket
        if not self.connected or sock is None:
            raise VppTransportSocketIOError(1, "Not connected")
        pack = _HEADER.pack
        try:
            sock.sendall(b"".join(pack(0, len(b), 0) + b for b in bufs))
        except OSError as err:
            raise VppTransportSocketIOError(1, f"Sendall error: {err!r}") from err

    def pending(self) -> bool:
        """Whether :meth:`read` would return at once (a reply is in, or the end)."""
        return not self._replies.empty() or self._ended.is_set()

    def read(self, timeout: float | None = None) -> bytes | None:
        """The next reply (packed), or None: the connection has ended, or none
        came within ``timeout`` (the read timeout when None)."""
        if not self.connected:
            raise VppTransportSocketIOError(1, "Not connected")
        try:
            return self._replies.get_nowait()
        except queue.Empty:
            pass
        if self._ended.is_set():
            return _END
        try:
            return self._replies.get(timeout=self.read_timeout if timeout is None else timeout)
        except queue.Empty:
            return _END

    # --- the reader ---------------------------------------------------------------
    @staticmethod
    def _read_one(sock: socket.socket) -> bytes:
        """One message, read synchronously (the registration's reply)."""
        header = _recv_exactly(sock, _HEADER.size)
        _, length, _ = _HEADER.unpack(header)
        return _recv_exactly(sock, length)

    def _read_loop(self, sock: socket.socket) -> None:
        buf = bytearray()
        try:
            while True:
                try:
                    chunk = sock.recv(_RECV_SIZE)
                except TimeoutError:
                    continue  # nothing from VPP for a while: normal when idle
                except OSError:
                    chunk = b""
                if not chunk:
                    if self.connected:
                        LOG.debug("VPP's API socket closed")
                    return
                buf += chunk
                used = self._dispatch(buf)
                if used:
                    del buf[:used]
        except Exception:  # noqa: BLE001 - the reader must end by saying so
            LOG.exception("VPP API reader failed")
        finally:
            self._ended.set()
            self._replies.put(_END)

    def _dispatch(self, buf: bytearray) -> int:
        """Hand over every whole message in ``buf``; returns the bytes used."""
        pos, size, header = 0, len(buf), _HEADER.size
        while size - pos >= header:
            _, length, _ = _HEADER.unpack_from(buf, pos)
            end = pos + header + length
            if end > size:
                break
            msg = bytes(buf[pos + header : end])
            pos = end
            if self._reply(msg):
                self._replies.put(msg)
            else:
                self.parent.msg_handler_async(msg)  # decoded, to the event callback
        return pos

    def _reply(self, msg: bytes) -> bool:
        """Whether ``msg`` answers a request (as vpp_papi tells: its
        definition has a context), rather than being an event."""
        if self.do_async:
            return False  # vpp_papi's asynchronous mode: everything to the handler
        msg_id = int.from_bytes(msg[:2], "big")
        known = self._is_reply.get(msg_id)
        if known is None:
            defs = getattr(self.parent, "id_msgdef", None)
            if defs is None:
                return True  # the table is still being read: only replies come then
            msgdef = defs[msg_id] if msg_id < len(defs) else None
            # An unknown id is the reader of replies' to judge (vpp_papi fails it).
            known = msgdef is None or "context" in msgdef.field_by_name
            self._is_reply[msg_id] = known
        return known


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise VppTransportSocketIOError(1, "VPP closed the connection")
        data += chunk
    return bytes(data)
