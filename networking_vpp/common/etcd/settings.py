"""How to reach etcd: endpoints, TLS material, credentials, timeouts."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit


@dataclasses.dataclass
class EtcdSettings:
    """Connection settings of an :class:`~networking_vpp.common.etcd.client.EtcdClient`.

    ``endpoints`` are client URLs (``http://host:port`` or ``https://host:port``); the client
    uses one at a time and fails over to the next when it stops answering.
    """

    endpoints: list[str]
    ca_cert: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    # Out of the generated repr: settings get logged and shown in tracebacks.
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 5.0
    pool_size: int = 16  # HTTP connections kept per endpoint; each watcher holds one

    def __repr__(self) -> str:
        """The dataclass repr with the password masked (``***``, or None if unset)."""
        fields = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr
        )
        return f"EtcdSettings({fields}, password={'***' if self.password else None})"

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str):
            self.endpoints = [self.endpoints]
        self.endpoints = [normalize_endpoint(e) for e in self.endpoints if e and e.strip()]
        if not self.endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    @classmethod
    def from_conf(cls, conf: Any) -> EtcdSettings:
        """Build settings from the oslo.config group ``[etcd]`` (registering it if needed)."""
        group = getattr(conf, "etcd", None)
        if group is None:
            from networking_vpp.common import config  # late: keeps oslo out of plain users

            config.register_etcd_opts(conf)
            group = conf.etcd
        return cls(
            endpoints=list(group.endpoints),
            ca_cert=group.ca_cert or None,
            cert_file=group.cert_file or None,
            key_file=group.key_file or None,
            username=group.username or None,
            password=group.password or None,
            timeout=float(group.timeout),
        )


def normalize_endpoint(endpoint: str) -> str:
    """``host:port`` or ``scheme://host:port[/]`` -> ``scheme://host:port``."""
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad etcd endpoint {endpoint!r}: want http(s)://host:port")
    return f"{parts.scheme}://{parts.netloc}"
