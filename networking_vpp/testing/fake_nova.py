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

With ``--metadata-port``, it also serves a minimal metadata API, as Nova's
metadata service does behind Neutron's metadata agent: the agent proxies a VM's
``http://169.254.169.254/...`` with ``X-Instance-ID``, ``X-Tenant-ID``,
``X-Forwarded-For`` (the VM's address) and ``X-Instance-ID-Signature``, the
HMAC-SHA256 of the instance id under ``metadata_proxy_shared_secret``. A request
without a valid signature is refused (403), as Nova refuses it::

    GET /                                 "latest"
    GET /latest/meta-data/                the keys below
    GET /latest/meta-data/instance-id     (and local-ipv4, hostname)
    GET /openstack/latest/meta_data.json  {"uuid", "project_id", "hostname"}

Run: ``python -m networking_vpp.testing.fake_nova --port 8774 [--metadata-port 8775
--metadata-secret-file FILE]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import signal
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
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


def instance_signature(secret: str, instance_id: str) -> str:
    """What Neutron's metadata agent sends as ``X-Instance-ID-Signature``."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class _MetadataHandler(JsonHandler):
    server: MetadataServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        instance = self.headers.get("X-Instance-ID") or ""
        signature = self.headers.get("X-Instance-ID-Signature") or ""
        expected = instance_signature(self.server.secret, instance)
        if not instance or not hmac.compare_digest(signature, expected):
            LOG.warning(
                "metadata: refused %s for instance %r from %s: bad signature",
                self.path,
                instance,
                self.headers.get("X-Forwarded-For"),
            )
            self._text(403, "403 Forbidden: bad X-Instance-ID-Signature\n")
            return
        address = self.headers.get("X-Forwarded-For") or ""
        hostname = f"vm-{instance[:8]}"
        meta = {"instance-id": instance, "local-ipv4": address, "hostname": hostname}
        path = urlsplit(self.path).path
        LOG.info("metadata: %s for instance %s at %s", path, instance, address)
        if path in ("", "/"):
            self._text(200, "latest")
        elif path.rstrip("/") == "/latest/meta-data":
            self._text(200, "\n".join(meta))
        elif path.startswith("/latest/meta-data/") and path.rsplit("/", 1)[1] in meta:
            self._text(200, meta[path.rsplit("/", 1)[1]])
        elif path == "/openstack/latest/meta_data.json":
            body = {
                "uuid": instance,
                "project_id": self.headers.get("X-Tenant-ID"),
                "hostname": hostname,
            }
            self._text(200, json.dumps(body), "application/json")
        else:
            self._text(404, "404 Not Found\n")

    def _text(self, code: int, text: str, content_type: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class MetadataServer(ThreadingHTTPServer):
    """Nova's metadata API, minimal: checks the metadata agent's signature."""

    daemon_threads = True

    def __init__(self, port: int, secret: str, host: str = "127.0.0.1") -> None:
        self.secret = secret
        super().__init__((host, port), _MetadataHandler)


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
    parser.add_argument("--metadata-port", type=int, default=0, help="0: no metadata API")
    parser.add_argument(
        "--metadata-secret-file", type=Path, help="metadata_proxy_shared_secret, in a file"
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if args.metadata_port and args.metadata_secret_file is None:
        parser.error("--metadata-port needs --metadata-secret-file")
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    servers: list[ThreadingHTTPServer] = [FakeNovaServer(args.port)]
    if args.metadata_port:
        secret = args.metadata_secret_file.read_text().strip()
        servers.append(MetadataServer(args.metadata_port, secret))
        LOG.info("metadata API listening on 127.0.0.1:%d", args.metadata_port)
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, args=(0.2,), daemon=True).start()

    def shutdown() -> None:
        for each in servers:
            each.shutdown()

    # shutdown() must come from another thread than serve_forever's.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=shutdown).start())
    LOG.info("fake Nova listening on 127.0.0.1:%d", args.port)
    servers[0].serve_forever(poll_interval=0.2)
    for each in servers:
        each.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
