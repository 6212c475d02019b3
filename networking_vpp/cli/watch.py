"""``networking-vpp watch``: etcd events under the prefix, decoded, as they happen.

Like ``etcdctl watch --prefix``, with each value checked against its schema
(an invalid value is shown raw, with why). Survives etcd restarts and
compaction (it rides on :class:`PrefixWatcher`).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, TextIO

from networking_vpp.cli import conf
from networking_vpp.cli.decode import decode_value
from networking_vpp.common import keys
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the command."""
    parser = sub.add_parser(
        "watch",
        help="print etcd events under the prefix, decoded",
        description="Print every change below the networking-vpp prefix (or below PATH "
        "inside it, e.g. 'nodes/compute-1' or 'state'), decoded, until interrupted.",
    )
    conf.add_arguments(parser)
    parser.add_argument("path", nargs="?", default="", help="sub-path below the prefix")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument("--dump", action="store_true", help="print current values first")
    parser.add_argument("--count", type=int, default=0, help="exit after this many events")
    parser.set_defaults(run=run)


class EventPrinter:
    """Formats events (and snapshots) for a terminal or for machines."""

    def __init__(
        self, keyspace: keys.KeySpace, out: TextIO, as_json: bool, closed: threading.Event
    ) -> None:
        self.keys = keyspace
        self.out = out
        self.as_json = as_json
        self.closed = closed  # set when the reader went away (e.g. piped into head)
        self.printed = 0
        self._lock = threading.Lock()

    def event(self, kind: str, key: str, raw: bytes | None, revision: int) -> None:
        """Print one change."""
        decoded = decode_value(self.keys, key, raw)
        if self.as_json:
            line = json.dumps({"revision": revision, "type": kind, "key": key, **decoded})
        else:
            line = f"{revision} {kind.upper()} {key}{_text(decoded)}"
        with self._lock:
            if self.closed.is_set():
                return
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except BrokenPipeError:
                self.closed.set()
                return
            self.printed += 1


def _text(decoded: dict[str, Any]) -> str:
    if "value" in decoded:
        return " " + json.dumps(decoded["value"], separators=(",", ":"), sort_keys=True)
    if "invalid" in decoded:
        return f" INVALID ({decoded['invalid']}): {decoded['raw']}"
    if "raw" in decoded:
        return f" {decoded['raw']}"
    return ""


def run(
    args: argparse.Namespace, out: TextIO = sys.stdout, stop: threading.Event | None = None
) -> int:
    """Watch until interrupted, ``--count`` events, or ``stop`` is set; 0 on a clean stop."""
    client, keyspace = conf.load_etcd(args)
    path = args.path.strip("/")
    # A directory below the root: "nodes/compute-1" must not match "nodes/compute-10".
    prefix = f"{keyspace.prefix}/{path}/" if path else f"{keyspace.prefix}/"
    done = stop or threading.Event()
    printer = EventPrinter(keyspace, out, args.json, done)
    loads = seen = 0

    def on_load(snapshot: dict[str, bytes], revision: int) -> None:
        nonlocal loads
        loads += 1
        if loads > 1:  # etcd compacted the history we had not seen: changes were lost
            printer.event("reloaded", f"(history compacted, {len(snapshot)} keys)", None, revision)
        if args.dump and loads == 1:
            for key in sorted(snapshot):
                printer.event("current", key, snapshot[key], revision)

    def on_events(events: list[Event]) -> None:
        nonlocal seen
        for e in events:
            printer.event(e.kind, e.key, e.value, e.mod_revision)
            seen += 1
            if args.count and seen >= args.count:
                done.set()
                return

    watcher = PrefixWatcher(client, prefix, on_load, on_events, name="cli-watch")
    main = threading.current_thread() is threading.main_thread()  # tests run it in threads
    previous = signal.signal(signal.SIGINT, lambda *_: done.set()) if main else None
    try:
        watcher.start()
        while not done.wait(0.5):
            pass
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        watcher.stop()
        client.close()
    return 0
