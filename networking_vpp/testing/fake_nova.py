"""A fake Nova that records the external events Neutron sends it.

Neutron's Nova notifier (``[nova] auth_type = none``, ``endpoint =
http://127.0.0.1:<port>/v2.1``) POSTs batches to
``/v2.1/os-server-external-events``. This server answers them the way Nova
does (every event accepted, ``code`` 200) and keeps each event with the wall
clock time it arrived, so a test can tell whether Nova heard
``network-vif-plugged`` before or after the agent reported the port.

Read-only views for tests and the tour::

    GET    /events[?name=network-vif-plugged&tag=<port_id>]   {"events": [{"received_at", ...}]}
    DELETE /events                                             forget everything
    GET    /health                                             {"ok": true}

Run: ``python -m networking_vpp.testing.fake_nova --port 8774``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from networking_vpp.testing.devcloud.web import JsonHandler

LOG = logging.getLogger("fake_nova")

EVENTS_PATH = "/v2.1/os-server-external-events"


class EventLog:
    """The events received so far, in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def add(self, events: list[dict[str, Any]], received_at: float) -> None:
        with self._lock:
            self._events.extend({**e, "received_at": received_at} for e in events)

    def query(self, name: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for e in self._events
                if (name is None or e.get("name") == name) and (tag is None or e.get("tag") == tag)
            ]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()


class _Handler(JsonHandler):
    server: FakeNovaServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        received_at = time.time()  # before parsing: the arrival time is what tests compare
        if urlsplit(self.path).path.rstrip("/") != EVENTS_PATH:
            self.reply(404, {"itemNotFound": {"code": 404, "message": self.path}})
            return
        try:
            events = self.read_json()["events"]
            assert isinstance(events, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            self.reply(400, {"badRequest": {"code": 400, "message": "malformed events"}})
            return
        self.server.events.add(events, received_at)
        for event in events:
            LOG.info(
                "event %s server %s tag %s status %s",
                event.get("name"),
                event.get("server_uuid"),
                event.get("tag"),
                event.get("status"),
            )
        self.reply(200, {"events": [{**e, "code": 200} for e in events]})

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/health":
            self.reply(200, {"ok": True})
        elif url.path == "/events":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            events = self.server.events.query(query.get("name"), query.get("tag"))
            self.reply(200, {"events": events})
        elif url.path.rstrip("/") in ("", "/v2.1"):
            # Version discovery, in case a client asks.
            self.reply(
                200,
                {
                    "version": {
                        "id": "v2.1",
                        "status": "CURRENT",
                        "version": "2.93",
                        "min_version": "2.1",
                    }
                },
            )
        else:
            self.reply(404, {"itemNotFound": {"code": 404, "message": self.path}})

    def do_DELETE(self) -> None:  # noqa: N802
        if urlsplit(self.path).path == "/events":
            self.server.events.clear()
            self.reply(200, {"events": []})
        else:
            self.reply(404, {"itemNotFound": {"code": 404, "message": self.path}})


class FakeNovaServer(ThreadingHTTPServer):
    """The HTTP server, with the event log it fills."""

    daemon_threads = True

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.events = EventLog()
        super().__init__((host, port), _Handler)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="fake_nova", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8774)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    server = FakeNovaServer(args.port)
    # shutdown() must come from another thread than serve_forever's.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=server.shutdown).start())
    LOG.info("fake Nova listening on 127.0.0.1:%d", args.port)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
