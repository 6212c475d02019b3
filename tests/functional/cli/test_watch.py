"""``networking-vpp watch`` against a real etcd: events printed, decoded, as they happen."""

from __future__ import annotations

import io
import json
import threading

from networking_vpp.cli import main as cli
from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.wait import wait_for

KEYS = keys.KeySpace()


class Lines(io.StringIO):
    """Output written by another thread, read as lines."""

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


def start_watch(etcd: EtcdClient, *extra: str) -> tuple[Lines, threading.Event, threading.Thread]:
    args = cli.parser().parse_args(["watch", "--etcd-endpoint", etcd.settings.endpoints[0], *extra])
    out, stop = Lines(), threading.Event()
    thread = threading.Thread(target=args.run, args=(args, out, stop), daemon=True)
    thread.start()
    return out, stop, thread


def test_watch_prints_decoded_events(etcd: EtcdClient):
    alive = model.HostAlive("h1", "1.0", 1.0)
    etcd.put(KEYS.alive("h1"), model.encode(alive))
    out, stop, thread = start_watch(etcd, "--json", "--dump")
    wait_for(lambda: out.lines(), 10, "the dump")  # loaded: events from here on are seen
    summary = model.HostSummary("h1", desired=1, programmed=1, active=1)
    etcd.put(KEYS.summary("h1"), model.encode(summary))
    etcd.put(KEYS.port("h1", "p1"), "not a binding")
    etcd.delete(KEYS.port("h1", "p1"))
    wait_for(lambda: len(out.lines()) == 4, 10, "three events")
    stop.set()
    thread.join(5)
    dump, put, bad, delete = [json.loads(line) for line in out.lines()]
    assert (dump["type"], dump["key"], dump["value"]["agent_version"]) == (
        "current",
        KEYS.alive("h1"),
        "1.0",
    )
    assert (put["type"], put["value"]["programmed"]) == ("put", 1)
    assert bad["raw"] == "not a binding" and bad["invalid"].startswith("not JSON")
    assert (delete["type"], delete["key"]) == ("delete", KEYS.port("h1", "p1"))
    assert put["revision"] < bad["revision"] < delete["revision"]


def test_watch_path_and_count(etcd: EtcdClient):
    args = cli.parser().parse_args(
        ["watch", "--etcd-endpoint", etcd.settings.endpoints[0], "nodes/h1", "--count", "1"]
    )
    out = Lines()
    thread = threading.Thread(target=args.run, args=(args, out), daemon=True)
    thread.start()

    def wrote() -> bool:
        # Until the watcher has loaded, writes are not seen: keep writing until one is.
        etcd.put(KEYS.port("h10", "x"), "{}")  # not below nodes/h1/
        etcd.put(KEYS.port("h1", "p1"), "{}")
        return bool(out.lines())

    wait_for(wrote, 10, "an event")
    thread.join(5)
    assert not thread.is_alive()
    assert len(out.lines()) == 1
    line = out.lines()[0]
    assert f"PUT {KEYS.port('h1', 'p1')} INVALID" in line
