"""An API client with vpp_papi's ``VPPApiClient`` surface, talking to the emulator.

``client.connect(name)``, ``client.disconnect()``,
``client.register_event_callback(cb)`` and ``client.api.<message>(**fields)``
behave as vpp_papi 2.4.2's: ``api`` raises ``VPPApiError`` before the first
connect; a message VPP does not have is an ``AttributeError``; only keyword
arguments are accepted; a non-zero ``retval`` is returned in the reply, never
raised; once the connection is gone (VPP restarted, or after
``disconnect()``) every call raises an ``IOError`` (``VPPIOError``); and a
second ``connect()`` needs a ``disconnect()`` first.

Events (``sw_interface_event``) reach the registered callback as
``cb(msg_name, msg)`` on the client's own event thread, as vpp_papi's socket
reader thread runs them. Like that thread, which reads one socket in order and
hands a reply over only after the callbacks of the events before it have
returned, no reply is returned before the events queued ahead of it are
delivered: a caller that reads state after a change never hears an older event
afterwards. A callback may call back into the API here (vpp_papi's reader
thread would wait for its own reply until the read timeout: the agent's
callback never calls). If the callback raises, that thread stops delivering
(vpp_papi's thread dies); the emulator records the exception in
``VppEmulator.event_errors``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from networking_vpp.testing.vpp.errors import (
    VPPApiError,
    VPPIOError,
    VPPSerializerValueError,
    VPPValueError,
)

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.emulator import Request, VppEmulator

LOG = logging.getLogger(__name__)
EventCallback = Callable[[str, Any], None]
_STOP = object()


class _Api:
    """Holder of one callable per request message (vpp_papi's ``VppApiDynamicMethodHolder``)."""


class _NotConnected:
    """``client.api`` before the first connect, which raises as vpp_papi's property does.

    A descriptor without ``__set__``: the holder that ``connect`` stores in the
    instance shadows it, so reading ``client.api`` (once per call) is a plain
    attribute read rather than a property's call.
    """

    def __get__(self, client: Any, owner: Any = None) -> Any:
        if client is None:
            return self
        raise VPPApiError("Not connected, api definitions not available")


class _Dispatcher:
    """The client's event thread: one at a time, in order, outside the emulator's lock.

    The queue carries one batch per API call (the events it caused); a
    ``SimpleQueue`` puts and gets in C. ``pending`` counts the batches not yet
    delivered, so ``drain`` also waits for events that a callback's own API
    calls cause while it runs. ``pending`` is guarded by ``lock`` itself (a
    Condition's ``with`` is two Python calls), and ``idle`` is notified only
    when a ``drain`` waits.
    """

    def __init__(self, client: EmulatorClient, threaded: bool) -> None:
        self.client = client
        self.threaded = threaded
        self.dead = False
        self.stopped = False
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending = 0
        self.draining = 0  # threads waiting in drain
        self.lock = threading.Lock()  # guards pending and draining
        self.idle = threading.Condition(self.lock)
        self.thread: threading.Thread | None = None
        if threaded:
            self.thread = threading.Thread(
                target=self._run, name=f"vpp-emulator-events-{client.client_index}", daemon=True
            )
            self.thread.start()

    def deliver(self, msgs: list[Any]) -> None:
        if self.threaded:
            with self.lock:
                self.pending += 1
            self.queue.put(msgs)
        else:
            self._batch(msgs)

    def _batch(self, msgs: list[Any]) -> None:
        client = self.client
        for msg in msgs:
            callback = client.event_callback
            if self.dead or callback is None:
                return
            try:
                callback(type(msg).__name__, msg)
            except BaseException as exc:  # noqa: BLE001 - vpp_papi's event thread would die here
                self.dead = True
                LOG.exception("event callback raised; no more events for this client")
                client.emulator.event_errors.append(exc)

    def catch_up(self, timeout: float) -> bool:
        """Wait until the events queued so far are delivered (before a reply is
        returned); False if the callback did not return within ``timeout``."""
        if not self.pending or self.stopped or self.thread is threading.current_thread():
            return True
        # A lock taken here and released by the event thread once it reaches
        # it: a hand-over in C, only when events are outstanding.
        reached = threading.Lock()
        reached.acquire()
        self.queue.put(reached)
        return reached.acquire(timeout=timeout)

    def _run(self) -> None:
        get = self.queue.get
        lock_type = type(self.lock)
        while True:
            msgs = get()
            if msgs is _STOP:
                return
            if type(msgs) is lock_type:
                msgs.release()  # a caller waits for what came before (catch_up)
                continue
            try:
                self._batch(msgs)
            finally:
                with self.lock:
                    self.pending -= 1
                    if not self.pending and self.draining:
                        self.idle.notify_all()

    def stop(self) -> None:
        if self.thread is not None and not self.stopped:
            self.stopped = True  # what is queued is still delivered, as vpp_papi's thread does
            self.queue.put(_STOP)

    def drain(self, timeout: float) -> bool:
        if self.thread is None or self.thread is threading.current_thread():
            return True
        with self.idle:
            self.draining += 1
            try:
                return self.idle.wait_for(lambda: self.pending == 0, timeout)
            finally:
                self.draining -= 1


class EmulatorClient:
    """One API connection to a :class:`VppEmulator`."""

    VPPApiError = VPPApiError
    VPPIOError = VPPIOError
    VPPValueError = VPPValueError
    VPPSerializerValueError = VPPSerializerValueError

    def __init__(self, emulator: VppEmulator) -> None:
        self.emulator = emulator
        self.event_callback: EventCallback | None = None
        self.name = ""
        self.client_index = -1
        self.generation = -1  # the emulator life this client is connected to
        self.connected = False
        self._was_connected = False
        self._contexts = itertools.count(1)
        self._dispatcher: _Dispatcher | None = None

    #: One function per request message: ``client.api.sw_interface_dump(...)``.
    api: Any = _NotConnected()

    def connect(
        self, name: str, chroot_prefix: str | None = None, do_async: bool = False, rx_qlen: int = 32
    ) -> int:
        """Attach to the emulated VPP; ConnectionRefusedError if it is stopped."""
        if self._was_connected:
            raise VPPIOError(1, "PAPI socket transport connect: Need to disconnect first.")
        self.name = name
        self.emulator._attach(self)  # sets client_index, generation, connected
        self._was_connected = True
        api = _Api()
        for req in self.emulator.requests.values():
            setattr(api, req.name, self._method(req))
        self.api = api  # shadows the class's _NotConnected from now on
        self._dispatcher = _Dispatcher(self, self.emulator.event_delivery == "thread")
        return 0

    def _method(self, req: Request) -> Callable[..., Any]:
        call = self.emulator._call

        def method(**kwargs: Any) -> Any:
            return call(self, req, kwargs)

        method.__name__ = req.name
        method.__doc__ = ", ".join(req.codec.fields)
        return method

    def disconnect(self) -> int:
        """Detach; later calls raise ``VPPIOError``. Safe to call when VPP is gone."""
        if self.connected:
            self.emulator._detach(self)
        self.connected = False
        self._was_connected = False
        if self._dispatcher is not None:
            self._dispatcher.stop()
        return 0

    def register_event_callback(self, callback: EventCallback | None) -> None:
        """``callback(msg_name, msg)`` for async messages; ``None`` disables it."""
        self.event_callback = callback

    def next_context(self) -> int:
        """A context for a request that did not bring its own."""
        return next(self._contexts)

    def _stop_events(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.stop()

    def _deliver(self, msgs: list[Any]) -> None:
        if self._dispatcher is not None:
            self._dispatcher.deliver(msgs)

    def _drain(self, timeout: float) -> bool:
        return self._dispatcher is None or self._dispatcher.drain(timeout)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<EmulatorClient {self.name!r} #{self.client_index} {state}>"
