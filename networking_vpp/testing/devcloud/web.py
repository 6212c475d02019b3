"""Tiny JSON over HTTP on loopback: a client (never via a proxy) and a handler base."""

from __future__ import annotations

import json
import logging
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any

LOG = logging.getLogger(__name__)

# An environment's http_proxy must not capture requests to 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request_json(method: str, url: str, body: Any = None, timeout: float = 5.0) -> Any:
    """Send ``body`` (JSON) and return the decoded JSON answer (None if empty)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with _OPENER.open(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode its JSON."""
    return request_json("GET", url, timeout=timeout)


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler base of the dev cloud's small servers (fake Nova, fake hosts)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        LOG.debug("%s " + format, self.client_address[0], *args)

    def reply(self, code: int, body: Any) -> None:
        """Answer with ``body`` as JSON."""
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> Any:
        """The request's JSON body (None if empty)."""
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")
