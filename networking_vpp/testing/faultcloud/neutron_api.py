"""Neutron's API over plain HTTP, for fault tests: every outcome distinguishable.

openstacksdk retries and hides what a fault test must see: whether the server
answered, and with what. Here a request either returns the decoded body of a
2xx, raises :class:`ApiError` for a 4xx (the server refused: nothing changed),
or raises :class:`NoAnswer` when the outcome is unknown (the worker died
mid-request, a 5xx, a timeout): the caller must look at the resource to learn
whether the change was applied. One instance per thread (a requests session is
not meant to be shared).
"""

from __future__ import annotations

import time
from typing import Any

import requests

DEFAULT_TIMEOUT = 60.0


class ApiError(Exception):
    """Neutron answered with a 4xx: the request was refused, nothing was changed."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class NoAnswer(Exception):
    """No usable answer (connection lost, 5xx, timeout): the change may or may not be in."""

    def __init__(self, what: str, status: int | None = None) -> None:
        super().__init__(what)
        self.status = status


class NeutronApi:
    """A thin client of ``/v2.0`` (noauth: no token, the default project)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base = url.rstrip("/") + "/v2.0"
        self.timeout = timeout
        self.session = requests.Session()
        # Loopback only: proxy variables of the environment must not reroute us.
        self.session.trust_env = False
        self.requests = 0

    def close(self) -> None:
        """Drop the session."""
        self.session.close()

    # --- the one request primitive ---------------------------------------------------
    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the decoded JSON body of a 2xx (None for 204)."""
        self.requests += 1
        try:
            resp = self.session.request(method, self.base + path, json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            raise NoAnswer(f"{method} {path}: timed out ({exc})") from exc
        except requests.ConnectionError as exc:
            raise NoAnswer(f"{method} {path}: connection lost ({exc})") from exc
        if resp.status_code >= 500:
            raise NoAnswer(f"{method} {path}: HTTP {resp.status_code}", resp.status_code)
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, resp.text)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def call_until_answered(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 120.0
    ) -> Any:
        """Repeat a *read* until the API answers (workers may be restarting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.call(method, path, body)
            except NoAnswer:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # pace the retries of a read; the wait is bounded above

    # --- resources ----------------------------------------------------------------------
    def create(self, collection: str, resource: str, **attrs: Any) -> dict[str, Any]:
        return self.call("POST", f"/{collection}", {resource: attrs})[resource]

    def update(self, collection: str, resource: str, ident: str, **attrs: Any) -> dict[str, Any]:
        return self.call("PUT", f"/{collection}/{ident}", {resource: attrs})[resource]

    def delete(self, collection: str, ident: str) -> None:
        self.call("DELETE", f"/{collection}/{ident}")

    def delete_quietly(self, collection: str, ident: str) -> None:
        """Delete, retried until answered; already gone is fine (cleanup)."""
        try:
            self.call_until_answered("DELETE", f"/{collection}/{ident}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    def get(self, collection: str, resource: str, ident: str) -> dict[str, Any] | None:
        """The resource, or None if it does not exist (retried until the API answers)."""
        try:
            return self.call_until_answered("GET", f"/{collection}/{ident}")[resource]
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, collection: str, **filters: Any) -> list[dict[str, Any]]:
        """Every resource matching ``filters`` (retried until the API answers)."""
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        path = f"/{collection}" + (f"?{query}" if query else "")
        return list(self.call_until_answered("GET", path)[collection.replace("-", "_")])

    # --- ports ---------------------------------------------------------------------------
    def create_port(self, **attrs: Any) -> dict[str, Any]:
        return self.create("ports", "port", **attrs)

    def update_port(self, port_id: str, **attrs: Any) -> dict[str, Any]:
        return self.update("ports", "port", port_id, **attrs)

    def delete_port(self, port_id: str) -> None:
        self.delete("ports", port_id)

    def get_port(self, port_id: str) -> dict[str, Any] | None:
        return self.get("ports", "port", port_id)


def bound_host(port: dict[str, Any]) -> str | None:
    """The host a port is bound to by a VPP vif, or None (unbound or binding failed)."""
    if port.get("binding:vif_type") in ("vhostuser", "tap") and port.get("binding:host_id"):
        return str(port["binding:host_id"])
    return None


__all__ = ["ApiError", "NeutronApi", "NoAnswer", "bound_host"]
