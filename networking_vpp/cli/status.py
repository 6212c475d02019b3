"""``networking-vpp status``: each host's agent, ports and drift, from etcd alone."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from networking_vpp.cli import conf
from networking_vpp.cli.health import HostHealth, collect


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the command."""
    parser = sub.add_parser(
        "status",
        help="agents, ports and drift per host (etcd only)",
        description="Per host: agent liveness, ports desired/programmed/reported, ports in "
        "error (with reasons), ports without a current report, and drift between etcd "
        "and the agent's own account. Ports reported down (admin down, VM not connected) "
        "are listed, and are no fault.",
    )
    conf.add_arguments(parser)
    parser.add_argument("--host", help="only this host")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if any host is not healthy (monitoring)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the status; 0, or 1 with ``--check`` when something needs a look."""
    client, keyspace = conf.load_etcd(args)
    try:
        hosts, revision = collect(client, keyspace, args.host)
    finally:
        client.close()
    healthy = all(h.healthy for h in hosts)
    if args.json:
        document = {
            "etcd_revision": revision,
            "prefix": keyspace.prefix,
            "healthy": healthy,
            "hosts": [h.to_json() for h in hosts],
        }
        json.dump(document, out, indent=2)
        out.write("\n")
    else:
        render(hosts, out)
    return 1 if args.check and not healthy else 0


def render(hosts: list[HostHealth], out: TextIO) -> None:
    """A table, then one block per host that needs a look."""
    if not hosts:
        out.write("no hosts: no desired ports and no agent reports in etcd\n")
        return
    header = ("HOST", "AGENT", "DESIRED", "PROGRAMMED", "ACTIVE", "REPORTED", "ERROR", "STATE")
    rows = [header] + [
        (
            h.host,
            "alive" if h.alive else "DOWN",
            str(h.desired),
            "-" if h.programmed is None else str(h.programmed),
            str(h.active),
            str(h.reported),
            str(len(h.errors)),
            "ok" if h.healthy else "CHECK",
        )
        for h in hosts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    for h in hosts:
        lines = _details(h)
        if lines:
            out.write(f"\n{h.host}:\n")
            out.writelines(f"  {line}\n" for line in lines)


def _details(h: HostHealth) -> list[str]:
    lines = [f"error      {e['port_id']}: {e['reason'] or 'no reason given'}" for e in h.errors]
    lines += [f"no report  {p} (not programmed yet)" for p in h.no_report]
    lines += [
        f"stale      {s['port_id']}: report for binding {s['reported']}, etcd has {s['desired']}"
        for s in h.stale_reports
    ]
    lines += [f"orphan     {p}: reported, but not desired on this host" for p in h.orphan_reports]
    lines += [f"drift      {d}" for d in h.drift]
    lines += [f"down       {d['port_id']}: {d['reason'] or 'no reason given'}" for d in h.down]
    lines += [f"bad value  {b}" for b in h.bad_values]
    lines += [f"note       {n}" for n in h.notes]
    return lines
