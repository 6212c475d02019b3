"""Tiny JSON-over-HTTP helpers for talking to loopback services (never via a proxy)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

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
