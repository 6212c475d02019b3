"""One watch stream on the gateway (``POST /v3/watch``): newline-delimited JSON replies.

No resume logic here: :mod:`watcher` decides what to do when a stream ends or errs. A stream
is used by one thread; :meth:`WatchStream.close` may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, Literal

import requests
import urllib3

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.errors import EtcdError, EtcdUnavailable, WatchSilent
from networking_vpp.common.etcd.transport import Transport, abort_stream, error_from_reply

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A change to one key. ``value`` is None for a delete."""

    kind: Literal["put", "delete"]
    key: str
    value: bytes | None
    mod_revision: int


@dataclasses.dataclass(frozen=True, slots=True)
class WatchReply:
    """One ``WatchResponse`` of the stream."""

    events: list[Event]
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""


def parse_event(raw: dict[str, Any]) -> Event:
    """A gateway ``mvccpb.Event`` -> :class:`Event` (PUT is the omitted default type)."""
    kv = raw.get("kv") or {}
    deleted = raw.get("type") == "DELETE"
    return Event(
        kind="delete" if deleted else "put",
        key=codec.decode_key(kv.get("key")),
        value=None if deleted else codec.unb64(kv.get("value")),
        mod_revision=codec.as_int(kv.get("mod_revision")),
    )


def parse_line(line: bytes) -> WatchReply:
    """One line of the stream; an ``error`` line raises :class:`EtcdError`."""
    message = json.loads(line)
    if "error" in message:
        error = message["error"]
        status = int(error.get("http_code", 0) or 0) if isinstance(error, dict) else 0
        raise error_from_reply(status, str(error), error)
    result = message.get("result") or {}
    return WatchReply(
        events=[parse_event(e) for e in result.get("events") or []],
        created=bool(result.get("created", False)),
        canceled=bool(result.get("canceled", False)),
        compact_revision=codec.as_int(result.get("compact_revision")),
        cancel_reason=str(result.get("cancel_reason", "")),
    )


class WatchStream:
    """Watch ``key`` (up to ``range_end``, if given) from ``start_revision``.

    Iterating yields :class:`WatchReply` objects until the stream ends (normal end of the
    iterator: the caller must treat it as a disconnection). Transport failures raise
    :class:`EtcdUnavailable`; silence longer than ``idle_timeout`` too (the watchdog).
    """

    def __init__(
        self,
        transport: Transport,
        key: str,
        range_end: bytes | None,
        start_revision: int,
        idle_timeout: float | None = 60.0,
        progress_notify: bool = True,
    ) -> None:
        request: dict[str, Any] = {"key": codec.b64(key), "start_revision": start_revision}
        if range_end is not None:
            request["range_end"] = codec.b64(range_end)
        if progress_notify:
            request["progress_notify"] = True
        self._transport = transport
        self._body = {"create_request": request}
        self._idle_timeout = idle_timeout
        self._resp: requests.Response | None = None
        self._closed = threading.Event()
        self.endpoint = ""

    def __iter__(self) -> Iterator[WatchReply]:
        if self._closed.is_set():
            return
        self._resp = self._transport.open_stream("watch", self._body, self._idle_timeout)
        self.endpoint = self._resp.url
        if self._closed.is_set():  # closed while we were connecting
            abort_stream(self._resp)
            return
        try:
            # chunk_size=None: hand over each chunk as it arrives instead of filling a buffer.
            for line in self._resp.iter_lines(chunk_size=None):  # type: ignore[call-overload]
                if line.strip():
                    yield parse_line(line)
        except Exception as exc:
            if self._closed.is_set():
                return  # close() pulled the socket away; whatever broke, we are done
            if _read_timed_out(exc):
                raise WatchSilent(f"watch stream silent for {self._idle_timeout} s: {exc}") from exc
            if isinstance(exc, requests.RequestException | OSError):
                raise EtcdUnavailable(f"watch stream broke: {exc}") from exc
            if isinstance(exc, ValueError):  # a torn JSON line: the connection died mid-reply
                raise EtcdError(f"bad watch reply: {exc}") from exc
            raise
        finally:
            abort_stream(self._resp)

    @property
    def idle_timeout(self) -> float | None:
        """The longest silence the stream takes before it gives up (None: no limit)."""
        return self._idle_timeout

    def close(self) -> None:
        """End the stream now, waking up the reading thread."""
        self._closed.set()
        if self._resp is not None:
            abort_stream(self._resp)


def _read_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is the read timeout (the watchdog), however requests wrapped it."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return True
        todo.extend(a for a in e.args if isinstance(a, BaseException))
        todo.extend(c for c in (e.__cause__, e.__context__) if c is not None)
    return False
