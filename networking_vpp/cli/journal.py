"""``networking-vpp journal``: the journal as an operator needs to see it.

Reads Neutron's database (``--config-file`` neutron.conf, as ``resync``) for
the journal's tables, and etcd for the forwarder's leader. ``show`` (the
default): pending rows (how many, the oldest's age, the oldest keys), dead rows
with etcd's reason, and who leads the forwarding; ``--check`` makes it a health
check. ``replay ID`` puts a dead row back into the journal when it is still the
latest value of its key; ``drop ID`` forgets it (see
:mod:`networking_vpp.server.journal.admin`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from oslo_config import cfg

from networking_vpp.cli import conf
from networking_vpp.common import config, keys
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.errors import EtcdError

#: default --stall-after: a journal row normally leaves within a second; a
#: leader change takes the election TTL (seconds); minutes mean nobody drains
STALL_AFTER = 300.0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the command."""
    parser = sub.add_parser(
        "journal",
        help="pending and dead journal rows, the forwarder's leader; replay or drop dead rows",
        description="Show the journal (default): pending rows, the oldest one's age, dead "
        "rows with the reason etcd refused them, the forwarder's leader. 'replay ID' moves a "
        "dead row back into the journal if it is still the latest value of its key; 'drop "
        "ID' forgets it. Exit status: 0 fine; 1 --check found a stalled journal or dead "
        "rows, or a replay/drop was refused; 2 could not run.",
    )
    conf.add_arguments(parser)
    parser.add_argument(
        "action", nargs="?", default="show", choices=("show", "replay", "drop"), help="show"
    )
    parser.add_argument("id", nargs="?", type=int, help="the dead row (replay, drop)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the oldest pending row is older than --stall-after, or a row is dead",
    )
    parser.add_argument(
        "--stall-after",
        type=float,
        default=STALL_AFTER,
        metavar="SECONDS",
        help=f"age of the oldest pending row that counts as stalled (default {STALL_AFTER:g})",
    )
    parser.add_argument(
        "--oldest", type=int, default=5, metavar="N", help="how many oldest keys to show"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replay a row whose key's latest value the journal does not record",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run one journal action."""
    if args.action != "show" and args.id is None:
        print(f"networking-vpp journal {args.action}: which row? (an ID)", file=sys.stderr)
        return 2
    admin, client, keyspace = _load(args)
    try:
        if args.action == "show":
            return _show(args, admin, client, keyspace, out)
        return _change(args, admin, out)
    finally:
        client.close()


def _show(
    args: argparse.Namespace, admin: Any, client: EtcdClient, keyspace: keys.KeySpace, out: TextIO
) -> int:
    from networking_vpp.server.journal.forwarder import ROLE

    view = admin.overview(oldest=args.oldest)
    leader: str | None = None
    leader_error: str | None = None
    try:
        kv = client.get(keyspace.election(ROLE))
        leader = None if kv is None else kv.value.decode(errors="replace")
    except EtcdError as exc:
        # The database half is still worth showing; the leader is unknown.
        leader_error = str(exc)
    age = view.oldest_age
    problems = []
    if age is not None and age > args.stall_after:
        problems.append(f"stalled: the oldest pending row has waited {age:.0f}s")
    if view.dead:
        problems.append(f"{len(view.dead)} dead row(s): etcd refused them; replay or drop each")
    report = {
        "pending": {
            "count": view.pending,
            "oldest_age": None if age is None else round(age, 3),
            "oldest": [
                {"id": r.id, "key": r.key, "created_at": _time(r.created_at)} for r in view.oldest
            ],
        },
        "dead": [
            {
                "id": d.id,
                "key": d.key,
                "created_at": _time(d.created_at),
                "failed_at": _time(d.failed_at),
                "reason": d.reason,
            }
            for d in view.dead
        ],
        "leader": leader,
        "problems": problems,
    }
    if leader_error is not None:
        report["leader_error"] = leader_error
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        _print(report, out)
    return 1 if args.check and problems else 0


def _print(report: dict[str, Any], out: TextIO) -> None:
    pending = report["pending"]
    age = pending["oldest_age"]
    out.write(
        f"journal: {pending['count']} pending"
        + ("" if age is None else f", oldest waiting {age:.1f}s")
        + "\n"
    )
    for row in pending["oldest"]:
        out.write(f"  {row['id']:>10}  {row['created_at']}  {row['key']}\n")
    leader = report["leader"] or "none"
    if "leader_error" in report:
        leader = f"unknown (etcd: {report['leader_error']})"
    out.write(f"forwarder leader: {leader}\n")
    out.write(f"dead rows: {len(report['dead'])}\n")
    for row in report["dead"]:
        out.write(f"  {row['id']:>10}  failed {row['failed_at']}  {row['key']}\n")
        out.write(f"              {row['reason']}\n")
    for problem in report["problems"]:
        out.write(f"PROBLEM: {problem}\n")


def _change(args: argparse.Namespace, admin: Any, out: TextIO) -> int:
    from networking_vpp.server.journal.admin import Refused

    try:
        if args.action == "drop":
            row = admin.drop(args.id)
            out.write(f"dropped dead row {row.id} ({row.key})\n")
        else:
            new_id = admin.replay(args.id, force=args.force)
            out.write(f"replayed dead row {args.id} as journal row {new_id}\n")
    except Refused as exc:
        out.write(f"refused: {exc}\n")
        return 1
    return 0


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat(sep=" ", timespec="seconds") + "Z"


def _load(args: argparse.Namespace) -> tuple[Any, EtcdClient, keys.KeySpace]:
    """The journal's tables (through Neutron's [database]) and etcd, from the files."""
    # Late imports: the other commands must work where Neutron is not installed.
    import sqlalchemy as sa
    from oslo_db import options as db_options

    from networking_vpp.server.journal import api
    from networking_vpp.server.journal.admin import JournalAdmin

    oslo = cfg.ConfigOpts()
    db_options.set_defaults(oslo)
    config.register_etcd_opts(oslo)
    # Without --config-file, oslo.config finds /etc/neutron/neutron.conf, as Neutron's tools do.
    oslo(args=conf.oslo_args(args), project="neutron", prog="networking-vpp journal")
    conf.apply_overrides(oslo, args)
    if not oslo.database.connection:
        raise SystemExit("networking-vpp journal: no [database] connection: pass neutron.conf")
    # A plain engine: the journal's tables need none of Neutron's plugin machinery.
    engine = sa.create_engine(oslo.database.connection)
    client, keyspace = conf.client_from(oslo)
    return JournalAdmin(api.engine_session_scope(engine), keyspace), client, keyspace
