"""HTTP to etcd's v3 JSON gateway: one shared session, endpoint failover, token auth.

This is the only module that talks HTTP. It posts to the gateway itself, on the same kind of
``requests`` session etcd3gw uses, because etcd3gw's ``post()`` hides what we must see: the
HTTP status (401 means "re-authenticate"), and whether a failed request was ever sent (a
refused connection is safe to retry anywhere; a timeout after sending may have been applied).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter

from networking_vpp.common.etcd.errors import (
    EtcdAuthError,
    EtcdCompacted,
    EtcdError,
    EtcdNotFound,
    EtcdUnavailable,
)
from networking_vpp.common.etcd.settings import EtcdSettings

LOG = logging.getLogger(__name__)

# gRPC codes etcd puts in error bodies.
_GRPC_DEADLINE_EXCEEDED = 4
_GRPC_NOT_FOUND = 5
_GRPC_PERMISSION_DENIED = 7
_GRPC_UNAVAILABLE = 14
_GRPC_UNAUTHENTICATED = 16


class _TryNext(Exception):
    """This endpoint failed in a way that is safe to retry on another one."""


class _RoundFailed(Exception):
    """Every endpoint failed once."""


#: TCP keepalive on every etcd connection: after 30 s without traffic, a probe
#: every 10 s, and the connection is given up after 3 unanswered ones. A watch
#: stream is silent for minutes when nothing changes (etcd's progress comes every
#: 10 minutes by default), so this, not the stream's watchdog, is what finds a
#: peer that went without closing the connection (host down, partition).
KEEPALIVE_OPTIONS: list[tuple[int, int, int]] = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    *(
        (socket.IPPROTO_TCP, getattr(socket, name), value)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
        if hasattr(socket, name)  # Linux names; elsewhere the system's defaults
    ),
]


class _KeepaliveAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections use TCP keepalive (``KEEPALIVE_OPTIONS``)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["socket_options"] = [
            *urllib3.connection.HTTPConnection.default_socket_options,
            *KEEPALIVE_OPTIONS,
        ]
        super().init_poolmanager(*args, **kwargs)


def make_session(settings: EtcdSettings) -> requests.Session:
    """A session with our CA and client certificate, blind to the environment,
    whose connections use TCP keepalive.

    ``trust_env = False``: otherwise ``REQUESTS_CA_BUNDLE`` silently replaces ``verify``
    (psf/requests#3829) and proxies from the environment apply to etcd.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = settings.ca_cert or True
    if settings.cert_file and settings.key_file:
        session.cert = (settings.cert_file, settings.key_file)
    adapter = _KeepaliveAdapter(
        pool_connections=max(4, len(settings.endpoints)),
        pool_maxsize=settings.pool_size,
        max_retries=0,  # retries are ours: urllib3 cannot tell which requests are idempotent
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _never_sent(exc: requests.RequestException) -> bool:
    """True if the request cannot have reached etcd (no connection was made)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def error_from_reply(status: int, text: str, payload: Any) -> EtcdError:
    """Map a gateway error reply (``{"error", "message", "code"}``) to our exceptions."""
    message, code = text.strip()[:500], None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        payload = payload["error"]  # stream calls nest it: {"error": {"grpc_code", "message"}}
    if isinstance(payload, dict):
        message = str(payload.get("message") or payload.get("error") or message)
        raw_code = payload.get("code", payload.get("grpc_code"))
        if isinstance(raw_code, int | str) and str(raw_code).isdigit():
            code = int(raw_code)
    if "compacted" in message:
        return EtcdCompacted(message, code, status)
    if status == 404 or code == _GRPC_NOT_FOUND:
        return EtcdNotFound(message, code, status)
    if (
        status in (401, 403)
        or code in (_GRPC_UNAUTHENTICATED, _GRPC_PERMISSION_DENIED)
        or "authentication failed" in message
        or "user name is empty" in message
    ):
        return EtcdAuthError(message, code, status)
    if status in (503, 504) or code in (_GRPC_UNAVAILABLE, _GRPC_DEADLINE_EXCEEDED):
        return EtcdUnavailable(message, code, status)
    return EtcdError(message, code, status)


def _wants_token(error: EtcdError) -> bool:
    """etcd rejected our token (expired, or lost in a restart) or wanted one we lacked."""
    return isinstance(error, EtcdAuthError) and (
        error.status == 401 or "user name is empty" in str(error)
    )


def _reply_error(resp: requests.Response) -> EtcdError:
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    return error_from_reply(resp.status_code, resp.text, payload)


class Transport:
    """Posts JSON to one endpoint at a time, failing over and re-authenticating as needed."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self.session = make_session(settings)
        self.endpoints = list(settings.endpoints)
        self._current = 0
        self._token: str | None = None
        self._auth_lock = threading.Lock()
        self.failovers = 0  # times we moved to another endpoint (for tests and status)
        self.authentications = 0

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to first."""
        return self.endpoints[self._current]

    @property
    def _timeouts(self) -> tuple[float, float]:
        timeout = self.settings.timeout
        return (min(timeout, 3.0), timeout)

    def close(self) -> None:
        """Drop pooled connections."""
        self.session.close()

    # --- auth -------------------------------------------------------------------------
    def _headers(self, endpoint: str) -> dict[str, str]:
        """Auth headers for a request (authenticating first if we have no token yet)."""
        if not self.settings.username:
            return {}
        if self._token is None:
            self._authenticate(None, endpoint)
        return {"Authorization": self._token} if self._token else {}

    def invalidate_token(self, stale: str | None) -> None:
        """Forget ``stale`` (if still current): the next request authenticates again."""
        with self._auth_lock:
            if self._token == stale:
                self._token = None

    def _authenticate(self, stale: str | None, endpoint: str) -> None:
        """Get a new token, unless another thread already replaced ``stale``.

        The authenticate request carries no token: etcd rejects it when the old one is
        invalid (simple tokens vanish on every etcd restart).
        """
        if not self.settings.username:
            return
        with self._auth_lock:
            if self._token is not None and self._token != stale:
                return
            url = endpoint + "/v3/auth/authenticate"
            body = {"name": self.settings.username, "password": self.settings.password or ""}
            try:
                resp = self.session.post(url, json=body, timeout=self._timeouts)
            except requests.RequestException as exc:
                raise _TryNext(f"authenticate: {exc}") from exc
            if resp.status_code != 200:
                error = _reply_error(resp)
                if "authentication is not enabled" not in str(error):
                    raise error
                # Credentials configured before auth is switched on: work without a token
                # ("" until etcd asks for one, see _once).
                LOG.warning("etcd: auth is not enabled; proceeding without a token")
                self._token = ""
                return
            try:
                self._token = str(resp.json().get("token", ""))
            except ValueError as exc:
                raise _TryNext(f"authenticate: bad reply {exc}") from exc
            self.authentications += 1
            LOG.debug("etcd: authenticated as %s", self.settings.username)

    @property
    def token(self) -> str | None:
        """The current auth token (None without auth)."""
        return self._token

    # --- unary requests -----------------------------------------------------------------
    def post(self, path: str, body: dict[str, Any], idempotent: bool = True) -> dict[str, Any]:
        """POST ``/v3/<path>`` and return the decoded reply.

        Idempotent requests are retried on any endpoint until ``settings.timeout`` has passed
        (at least one try on each). A request that is not idempotent is retried only when
        it was certainly never sent; otherwise :class:`EtcdUnavailable` says "maybe applied".
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.settings.timeout),
            wait=tenacity.wait_random_exponential(multiplier=0.05, max=0.5),
            retry=tenacity.retry_if_exception_type(_RoundFailed),
            reraise=True,
        )
        try:
            return retrying(self._round, path, body, idempotent)
        except _RoundFailed as exc:
            raise EtcdUnavailable(f"etcd unavailable ({exc})") from None

    def _round(self, path: str, body: dict[str, Any], idempotent: bool) -> dict[str, Any]:
        errors = []
        start = self._current
        for i in range(len(self.endpoints)):
            index = (start + i) % len(self.endpoints)
            endpoint = self.endpoints[index]
            try:
                result = self._once(endpoint, path, body, idempotent)
            except _TryNext as exc:
                errors.append(f"{endpoint}: {exc}")
                continue
            self._use(index)
            return result
        raise _RoundFailed("; ".join(errors))

    def _use(self, index: int) -> None:
        if index != self._current:
            LOG.warning("etcd: failing over from %s to %s", self.endpoint, self.endpoints[index])
            self._current = index
            self.failovers += 1

    def _once(
        self, endpoint: str, path: str, body: dict[str, Any], idempotent: bool
    ) -> dict[str, Any]:
        url = f"{endpoint}/v3/{path}"
        for attempt in (1, 2):
            headers = self._headers(endpoint)
            used = self._token
            try:
                resp = self.session.post(url, json=body, headers=headers, timeout=self._timeouts)
            except requests.RequestException as exc:
                if idempotent or _never_sent(exc):
                    raise _TryNext(str(exc)) from exc
                raise EtcdUnavailable(f"{path} may or may not have been applied: {exc}") from exc
            if resp.status_code == 200:
                try:
                    return dict(resp.json())
                except ValueError as exc:  # a torn reply
                    if idempotent:
                        raise _TryNext(f"bad reply: {exc}") from exc
                    raise EtcdUnavailable(f"{path}: bad reply, maybe applied: {exc}") from exc
            error = _reply_error(resp)
            if attempt == 1 and _wants_token(error):
                self._authenticate(used, endpoint)
                continue
            if isinstance(error, EtcdUnavailable):
                if idempotent or "no leader" in str(error):
                    raise _TryNext(str(error))
            raise error
        raise EtcdAuthError("token rejected right after re-authenticating", status=401)

    # --- streams ------------------------------------------------------------------------
    def open_stream(
        self, path: str, body: dict[str, Any], read_timeout: float | None
    ) -> requests.Response:
        """POST a streaming request (watch) to the first endpoint that takes it.

        ``read_timeout`` bounds the silence between two chunks: the stream's watchdog.
        """
        errors = []
        start = self._current
        for i in range(len(self.endpoints)):
            index = (start + i) % len(self.endpoints)
            endpoint = self.endpoints[index]
            try:
                resp = self._open_once(endpoint, path, body, read_timeout)
            except _TryNext as exc:
                errors.append(f"{endpoint}: {exc}")
                continue
            self._use(index)
            return resp
        raise EtcdUnavailable("etcd unavailable (" + "; ".join(errors) + ")")

    def _open_once(
        self, endpoint: str, path: str, body: dict[str, Any], read_timeout: float | None
    ) -> requests.Response:
        for attempt in (1, 2):
            headers = self._headers(endpoint)
            used = self._token
            # Ask etcd to cancel the watch if this member loses its leader: a partitioned
            # member would otherwise keep the stream open and silent.
            headers["Grpc-Metadata-hasleader"] = "true"
            try:
                resp = self.session.post(
                    f"{endpoint}/v3/{path}",
                    json=body,
                    headers=headers,
                    timeout=(self._timeouts[0], read_timeout),
                    stream=True,
                )
            except requests.RequestException as exc:
                raise _TryNext(str(exc)) from exc
            if resp.status_code == 200:
                return resp
            error = _reply_error(resp)
            resp.close()
            if attempt == 1 and _wants_token(error):
                self._authenticate(used, endpoint)
                continue
            if isinstance(error, EtcdUnavailable):
                raise _TryNext(str(error))
            raise error
        raise EtcdAuthError("token rejected right after re-authenticating", status=401)


def abort_stream(resp: requests.Response) -> None:
    """Interrupt a thread blocked reading ``resp`` (closing alone does not wake it)."""
    conn = getattr(resp.raw, "_connection", None) or getattr(resp.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed
    try:
        resp.close()
    except Exception:  # noqa: BLE001 - closing a half-dead stream may raise anything
        LOG.debug("etcd: error closing a stream", exc_info=True)
