"""Exceptions of the etcd access layer.

Callers catch :class:`EtcdError` for "etcd did not do it" and :class:`EtcdUnavailable` for
"try again later"; nothing from ``requests`` or ``etcd3gw`` leaks out of this package.
"""

from __future__ import annotations


class EtcdError(Exception):
    """etcd refused or failed a request."""

    def __init__(self, message: str, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # gRPC status code, when etcd gave one
        self.status = status  # HTTP status of the gateway, when there was a reply


class EtcdUnavailable(EtcdError):
    """No endpoint answered in time (or the one that did had no leader).

    For a request that is not idempotent (a transaction with compares) this also means
    "it may or may not have been applied": re-read before retrying.
    """


class WatchSilent(EtcdUnavailable):
    """A watch stream said nothing, not even etcd's progress notification, for
    longer than its watchdog allows: made again, as routine (the connection
    may be fine; nothing is lost, since the watch resumes from its revision)."""


class EtcdAuthError(EtcdError):
    """Wrong user or password, or the user may not touch that key."""


class EtcdCompacted(EtcdError):
    """The requested revision has been compacted away."""


class EtcdNotFound(EtcdError):
    """etcd says the object (a lease, usually) does not exist."""
