"""etcd access layer: client (failover, TLS, token auth), batched writer, resumable prefix
watcher, leased keys and leader election. No Neutron, no vpp_papi."""

from networking_vpp.common.etcd.client import (
    KV,
    EtcdAuthError,
    EtcdClient,
    EtcdCompacted,
    EtcdError,
    EtcdNotFound,
    EtcdSettings,
    EtcdUnavailable,
    make_client,
)
from networking_vpp.common.etcd.election import Election
from networking_vpp.common.etcd.lease import LeasedKeys
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher
from networking_vpp.common.etcd.writer import MAX_TXN_OPS, Delete, Put, write_batch

__all__ = [
    "KV",
    "MAX_TXN_OPS",
    "Delete",
    "Election",
    "EtcdAuthError",
    "EtcdClient",
    "EtcdCompacted",
    "EtcdError",
    "EtcdNotFound",
    "EtcdSettings",
    "EtcdUnavailable",
    "Event",
    "LeasedKeys",
    "PrefixWatcher",
    "Put",
    "write_batch",
    "make_client",
]
