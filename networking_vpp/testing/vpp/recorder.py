"""A client factory that records the adapter's traffic: every call, reply and event.

The fidelity tests pack what it records with vpp_papi's serializer (the
agent's own CPU for it, on a real agent's traffic, is in what
``benchmarks/agent_resync.py`` prints: its agent speaks vpp_papi on the socket).
"""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp.emulator import VppEmulator


class Recorder:
    """A client factory whose clients record every call, reply and event."""

    def __init__(self, emulator: VppEmulator) -> None:
        self.emulator = emulator
        self.calls: list[tuple[str, dict[str, Any], Any]] = []
        self.events: list[Any] = []

    def __call__(self) -> RecordingClient:
        return RecordingClient(self, self.emulator.client())


class RecordingClient:
    """An emulator client (vpp_papi's surface) that notes what passes through it."""

    def __init__(self, recorder: Recorder, inner: Any) -> None:
        self._rec = recorder
        self._inner = inner

    def connect(self, name: str) -> int:
        """Connect the emulator client."""
        return self._inner.connect(name)

    def disconnect(self) -> int:
        """Disconnect the emulator client."""
        return self._inner.disconnect()

    def register_event_callback(self, cb: Any) -> None:
        """Pass events to ``cb``, noting each."""

        def record(name: str, msg: Any) -> None:
            self._rec.events.append(msg)
            cb(name, msg)

        self._inner.register_event_callback(record)

    @property
    def api(self) -> Any:
        """The emulator client's messages, each call noted with its reply."""
        rec, inner = self._rec, self._inner.api

        class Api:
            def __getattr__(self, name: str) -> Any:
                fn = getattr(inner, name)

                def call(**kwargs: Any) -> Any:
                    reply = fn(**kwargs)
                    rec.calls.append((name, dict(kwargs), reply))
                    return reply

                return call

        return Api()


def to_papi(value: Any) -> Any:
    """A reply value as vpp_papi's pack wants it (nested namedtuples as dicts)."""
    if hasattr(value, "_fields"):
        return {k: to_papi(v) for k, v in zip(type(value)._fields, value, strict=True)}
    if isinstance(value, list):
        return [to_papi(v) for v in value]
    return value
