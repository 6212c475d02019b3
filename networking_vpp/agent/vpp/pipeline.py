"""Many requests in flight on one vpp_papi connection, replies matched by context.

vpp_papi's synchronous call writes one request and blocks until its reply:
one round trip a call (>= 0.38 ms on a real VPP, most of it transport). VPP
itself reads a connection's messages in order and answers each in turn, so
nothing forces the wait: :class:`Pipeline` packs requests with the client's
message classes (numbered by the message table VPP sent, each with a context
of its own counter), sends those packed so far in one write when a reply is
awaited (with our transport, ``transport.py``; vpp_papi's own sends each at
once), and reads the replies, in order, from the queue the transport's reader
thread fills, matching them to the requests by ``context``. A dump is
followed by a ``control_ping`` of the same context, as vpp_papi does: its
reply ends the dump's details.

The client's reader thread hands replies (messages with a context) to that
queue and events to the event callback, as in synchronous mode; a reply that
is none of ours goes where vpp_papi puts such strays (its event queue).
Nothing here is thread-safe: the adapter's lock serialises every use of a
connection.
"""

from __future__ import annotations

import dataclasses
from typing import Any

ONE_REPLY, OLD_STREAM, NEW_STREAM = 0, 1, 2
# Our contexts have the top bit set; vpp_papi's counter starts at 1.
_CONTEXT_BASE = 0x80000000
_CONTEXT_MASK = 0x7FFFFFFF


class PipelineBroken(ConnectionError):
    """The connection ended (or VPP stopped answering) with replies outstanding."""


@dataclasses.dataclass
class Sent:
    """A request on the wire: what ends its answer, and the answer so far."""

    message: str
    context: int
    kind: int
    end: str  # the reply message that completes the answer
    details: list[Any] = dataclasses.field(default_factory=list)
    reply: Any = None
    done: bool = False


class Pipeline:
    """Writes requests on a ``VPPApiClient``'s transport; collects their replies."""

    def __init__(self, client: Any, timeout: float | None = None) -> None:
        """``timeout``: how long to wait for a reply (None: the transport's read timeout)."""
        self._client = client
        self._transport = client.transport
        self._timeout = timeout
        self._index: dict[str, int] = {}
        # Requests packed but not yet sent: they leave together when a reply
        # is awaited (one system call, and one wake-up of VPP's reader).
        self._unsent: list[bytes] = []
        self._write_many = getattr(self._transport, "write_many", None)
        # Contexts of our own, apart from those vpp_papi's synchronous calls
        # take from its counter (which costs a multiprocessing lock a call).
        self._context = _CONTEXT_BASE

    @staticmethod
    def supports(client: Any) -> bool:
        """Whether ``client`` is a vpp_papi socket client (anything else is
        called one request at a time)."""
        return hasattr(client, "transport") and hasattr(client, "decode_incoming_msg")

    def _msg_index(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            msg = self._client.messages[name]
            index = self._transport.get_msg_index(f"{name}_{msg.crc[2:]}")
            if index <= 0:
                raise ValueError(f"VPP does not know {name} (or its CRC differs)")
            self._index[name] = index
        return index

    def _write(self, name: str, fields: dict[str, Any], context: int) -> None:
        msg = self._client.messages[name]
        data = dict(fields)
        data["_vl_msg_id"] = self._msg_index(name)
        data["context"] = context
        if "client_index" in msg.field_by_name:
            data["client_index"] = self._transport.socket_index
        self._client.validate_args(msg, data)
        packed = msg.pack(data)
        if self._write_many is None:
            self._transport.write(packed)
        else:
            self._unsent.append(packed)

    def flush(self) -> None:
        """Send the requests packed so far."""
        if self._unsent:
            unsent, self._unsent = self._unsent, []
            assert self._write_many is not None
            self._write_many(unsent)

    def send(self, message: str, fields: dict[str, Any]) -> Sent:
        """Write one request (a dump with its control_ping); returns its record."""
        service = self._client.services[message]
        self._context = context = _CONTEXT_BASE | ((self._context + 1) & _CONTEXT_MASK)
        if "stream" not in service:
            kind, end = ONE_REPLY, service["reply"]
        elif "stream_msg" in service:
            kind, end = NEW_STREAM, service["reply"]
        else:
            kind, end = OLD_STREAM, "control_ping_reply"
        self._write(message, fields, context)
        if kind == OLD_STREAM:
            self._write("control_ping", {}, context)
        return Sent(message, context, kind, end)

    def collect(self, outstanding: list[Sent]) -> bool:
        """Read replies until every request of ``outstanding`` is answered;
        returns whether that meant waiting for VPP (a round trip) rather than
        only reading replies already in."""
        waiting = {s.context: s for s in outstanding if not s.done}
        self.flush()
        pending = getattr(self._transport, "pending", None)
        waited = False
        while waiting:
            if not waited:
                waited = pending is None or not pending()
            raw = self._transport.read(timeout=self._timeout)
            if not raw:
                # EOF (the reader thread's None) or nothing for read_timeout.
                raise PipelineBroken(
                    f"no reply to {next(iter(waiting.values())).message}: connection lost"
                )
            msg = self._client.decode_incoming_msg(raw)
            if msg is None:
                continue
            sent = waiting.get(getattr(msg, "context", 0))
            if sent is None:
                self._client.message_queue.put_nowait(msg)  # as vpp_papi does with strays
                continue
            if type(msg).__name__ != sent.end:
                sent.details.append(msg)
                continue
            sent.reply = msg
            sent.done = True
            del waiting[sent.context]
        return waited

    @staticmethod
    def answer(sent: Sent) -> Any:
        """The answer as vpp_papi's synchronous call returns it."""
        if sent.kind == OLD_STREAM:
            return sent.details
        if sent.kind == NEW_STREAM:
            return sent.reply, sent.details
        return sent.reply
