"""EtcdClient: the key-value, transaction, lease and maintenance calls the project uses.

Thread-safe; share one per process. Every int64 comes back as an int, every key as text,
every value as bytes. Errors are :class:`EtcdError` and its subclasses, never ``requests``'.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.codec import KV
from networking_vpp.common.etcd.errors import (
    EtcdAuthError,
    EtcdCompacted,
    EtcdError,
    EtcdNotFound,
    EtcdUnavailable,
)
from networking_vpp.common.etcd.settings import EtcdSettings
from networking_vpp.common.etcd.transport import Transport

if TYPE_CHECKING:
    import etcd3gw

__all__ = [
    "KV",
    "EtcdAuthError",
    "EtcdClient",
    "EtcdCompacted",
    "EtcdError",
    "EtcdNotFound",
    "EtcdSettings",
    "EtcdUnavailable",
    "make_client",
]

LOG = logging.getLogger(__name__)


class EtcdClient:
    """Synchronous client of etcd's v3 gateway, with failover, TLS and token auth."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self.transport = Transport(settings)

    def close(self) -> None:
        """Release pooled connections (the client stays usable)."""
        self.transport.close()

    @property
    def endpoint(self) -> str:
        """The endpoint in use now."""
        return self.transport.endpoint

    def gateway(self) -> etcd3gw.Etcd3Client:
        """A plain etcd3gw client on the current endpoint, sharing our TLS session.

        For tools and benchmarks that want etcd3gw's own API; it does not fail over and does
        not carry auth tokens.
        """
        # Imported here: etcd3gw imports eventlet whenever it is installed (Neutron installs
        # it), and the agent has no use for eventlet.
        import etcd3gw

        scheme, rest = self.endpoint.split("://", 1)
        host, _, port = rest.rpartition(":")
        return etcd3gw.Etcd3Client(
            host=host.strip("[]"),
            port=int(port),
            protocol=scheme,
            timeout=self.settings.timeout,
            api_path="/v3/",
            session=self.transport.session,
        )

    # --- keys -----------------------------------------------------------------------------
    def get(self, key: str) -> KV | None:
        """The current value of ``key``, or None."""
        resp = self.transport.post("kv/range", {"key": codec.b64(key)})
        kvs = resp.get("kvs") or []
        return codec.parse_kv(kvs[0]) if kvs else None

    def get_prefix(
        self,
        prefix: str,
        revision: int | None = None,
        page_size: int = 1000,
        on_page: Callable[[list[KV]], None] | None = None,
    ) -> tuple[list[KV], int]:
        """Every key under ``prefix``, sorted by key, as of one revision.

        Read in pages of ``page_size`` keys, all at the same revision so the result is one
        consistent snapshot however large. Returns ``(kvs, revision)``: the revision the
        snapshot is at (``revision`` if given, else the store's revision at the first page).
        Raises :class:`EtcdCompacted` if that revision is compacted meanwhile.

        ``on_page(kvs)`` is called with each page while the next one is being fetched, so
        a caller's work on the keys (decoding, say) overlaps etcd's on the next page.
        """
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        range_end = codec.b64(codec.prefix_range_end(prefix))

        def fetch(start: bytes, at: int) -> dict[str, Any]:
            body: dict[str, Any] = {"key": codec.b64(start), "range_end": range_end}
            body["limit"] = page_size
            if at:
                body["revision"] = at
            return self.transport.post("kv/range", body)

        at = revision or 0
        kvs: list[KV] = []
        resp = fetch(codec.to_bytes(prefix) or b"\0", at)  # "\0" is the lowest key
        ahead = concurrent.futures.ThreadPoolExecutor(1, "etcd-page") if on_page else None
        try:
            while True:
                if not at:
                    at = codec.header_revision(resp)
                page = [codec.parse_kv(raw) for raw in resp.get("kvs") or []]
                kvs.extend(page)
                if not (resp.get("more") and page):
                    if on_page is not None and page:
                        on_page(page)
                    return kvs, at
                # The next page starts just after the last key: that key plus a zero byte.
                start = codec.to_bytes(page[-1].key) + b"\0"
                if ahead is None or on_page is None:
                    resp = fetch(start, at)
                    continue
                following = ahead.submit(fetch, start, at)  # etcd works while we do
                on_page(page)
                resp = following.result()
        finally:
            if ahead is not None:
                ahead.shutdown()

    def put(self, key: str, value: str | bytes, lease: int | None = None) -> int:
        """Set ``key``; returns the revision of the write."""
        body: dict[str, Any] = {"key": codec.b64(key), "value": codec.b64(value)}
        if lease:
            body["lease"] = lease
        return codec.header_revision(self.transport.post("kv/put", body))

    def delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        resp = self.transport.post("kv/deleterange", {"key": codec.b64(key)})
        return codec.as_int(resp.get("deleted")) > 0

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many there were."""
        body = {
            "key": codec.b64(codec.to_bytes(prefix) or b"\0"),  # "": every key
            "range_end": codec.b64(codec.prefix_range_end(prefix)),
        }
        return codec.as_int(self.transport.post("kv/deleterange", body).get("deleted"))

    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Run a v3 transaction written with *plain* keys and values (we base64 them).

        ``compare`` items look like ``{"key": k, "target": "CREATE", "result": "EQUAL",
        "create_revision": 0}`` (see :func:`codec.compare`); operations like
        ``{"request_put": {"key": k, "value": v, "lease": id}}`` (:func:`codec.put_op`,
        :func:`codec.delete_op`, :func:`codec.range_op`).

        Returns ``{"header": {"revision": int}, "succeeded": bool, "responses": [...]}`` where
        ``response_range`` bodies hold :class:`KV` objects. A transaction without compares is
        idempotent and retried across endpoints; one with compares is not retried once it may
        have been sent (:class:`EtcdUnavailable`): re-read before trying again.
        """
        body = {
            "compare": [codec.encode_compare(c) for c in compare],
            "success": [codec.encode_request_op(op) for op in success],
            "failure": [codec.encode_request_op(op) for op in failure or []],
        }
        resp = self.transport.post("kv/txn", body, idempotent=not compare)
        return codec.decode_txn_response(resp)

    # --- leases -----------------------------------------------------------------------------
    def lease_grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; returns its id (see :meth:`lease_grant_ttl`)."""
        return self.lease_grant_ttl(ttl)[0]

    def lease_grant_ttl(self, ttl: int) -> tuple[int, int]:
        """A new lease; returns ``(id, granted TTL)`` (etcd may raise a too-small TTL)."""
        # Retrying a grant at worst leaks a lease that expires on its own.
        resp = self.transport.post("lease/grant", {"TTL": int(ttl), "ID": 0})
        if resp.get("error"):
            raise EtcdError(str(resp["error"]))
        return codec.as_int(resp.get("ID")), codec.as_int(resp.get("TTL"))

    def lease_keepalive(self, lease_id: int) -> int:
        """Refresh a lease; returns the remaining TTL, 0 if the lease is gone."""
        try:
            resp = self.transport.post("lease/keepalive", {"ID": lease_id})
        except EtcdNotFound:
            return 0
        # The gateway answers a stream RPC with its first message, wrapped in "result".
        return codec.as_int((resp.get("result") or resp).get("TTL"))

    def lease_ttl(self, lease_id: int) -> int:
        """The remaining TTL of a lease without refreshing it; 0 (or less) if gone."""
        try:
            resp = self.transport.post("kv/lease/timetolive", {"ID": lease_id})
        except EtcdNotFound:
            return 0
        return codec.as_int(resp.get("TTL"))

    def lease_revoke(self, lease_id: int) -> None:
        """Revoke a lease and delete its keys; a lease already gone is fine."""
        try:
            self.transport.post("lease/revoke", {"ID": lease_id})
        except EtcdNotFound:
            pass

    # --- maintenance --------------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        """Compact history up to ``revision``; compacting an old revision again is a no-op."""
        try:
            self.transport.post("kv/compaction", {"revision": revision, "physical": True})
        except EtcdCompacted:
            pass

    def status(self) -> dict[str, Any]:
        """``/v3/maintenance/status`` of the member in use (needs no permission)."""
        return self.transport.post("maintenance/status", {})

    def current_revision(self) -> int:
        """The store's current revision, as the member in use knows it.

        From the member's status: needs no key permission, but a lagging follower may answer
        a slightly old revision. ``put`` and ``get_prefix`` return exact revisions.
        """
        return codec.header_revision(self.status())


def make_client(settings: EtcdSettings) -> EtcdClient:
    """The factory every part of networking-vpp uses to get its client."""
    return EtcdClient(settings)
