"""Helpers for the etcd layer's tests against a real etcd."""

from __future__ import annotations

import threading

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.watcher import Event


class Mirror:
    """What a watcher consumer keeps: a dict, replaced on load, patched by events."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.loads: list[int] = []
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def on_load(self, snapshot: dict[str, bytes], revision: int) -> None:
        with self.lock:
            self.data = dict(snapshot)
            self.loads.append(revision)

    def on_events(self, events: list[Event]) -> None:
        with self.lock:
            self.events.extend(events)
            for e in events:
                if e.kind == "put":
                    assert e.value is not None
                    self.data[e.key] = e.value
                else:
                    self.data.pop(e.key, None)

    def snapshot(self) -> dict[str, bytes]:
        with self.lock:
            return dict(self.data)


def server_contents(client: EtcdClient, prefix: str) -> dict[str, bytes]:
    """Every key under ``prefix`` as etcd has it now."""
    kvs, _ = client.get_prefix(prefix)
    return {kv.key: kv.value for kv in kvs}
