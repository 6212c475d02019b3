"""``python -m networking_vpp.testing.devcloud {up,down,status}``.

The shell wrappers in ``tools/devcloud/`` call this; run from the repository
top, the cloud lives in ``./.devcloud`` (``--base`` or ``$DEVCLOUD_DIR`` to move it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.cloud import DevCloud, missing_prerequisites


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devcloud", description="networking-vpp dev cloud")
    parser.add_argument(
        "--base", type=Path, default=Path(os.environ.get("DEVCLOUD_DIR", ".devcloud"))
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or restart) the dev cloud")
    up.add_argument("--debug", action="store_true", help="debug logging everywhere")
    up.add_argument(
        "--mechanism-drivers", default="vpp", help="ML2 mechanism drivers (default: vpp)"
    )
    down = sub.add_parser("down", help="stop everything")
    down.add_argument("--purge", action="store_true", help="also delete the directory")
    sub.add_parser("status", help="what runs, and where")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devcloud: %(message)s")

    cloud = DevCloud(
        args.base,
        mechanism_drivers=getattr(args, "mechanism_drivers", "vpp"),
        debug=getattr(args, "debug", False),
    )
    if args.command == "up":
        missing = missing_prerequisites()
        if missing:
            print("devcloud: missing " + ", ".join(missing), file=sys.stderr)
            return 2
        try:
            cloud.up()
        except procs.DevCloudError as exc:
            print(f"devcloud: {exc}\ndevcloud: logs are in {cloud.layout.logs}", file=sys.stderr)
            return 1
        _print_status(cloud)
    elif args.command == "down":
        existed = cloud.layout.base.exists()
        stopped = cloud.down(purge=args.purge)
        print("devcloud: stopped " + (", ".join(stopped) or "nothing (nothing was running)"))
        if args.purge and existed:
            print(f"devcloud: removed {cloud.layout.base}")
    elif not cloud.ports.neutron:
        print(f"devcloud: no dev cloud in {cloud.layout.base}")
        return 1
    else:
        _print_status(cloud)
    return 0


def _print_status(cloud: DevCloud) -> None:
    running = cloud.running()
    ports = cloud.ports
    where = {
        "mariadb": f"{cloud.layout.mariadb_socket} and 127.0.0.1:{ports.mariadb}",
        "etcd": ",".join(cloud.etcd_endpoints),
        "fake-nova": cloud.nova_url,
        "neutron-api": cloud.neutron_url,
    }
    for host, port in ports.hosts.items():
        where[f"host-{host}"] = f"http://127.0.0.1:{port}"
    for name, alive in running.items():
        print(f"  {name:18} {'up  ' if alive else 'DOWN'} {where.get(name, '')}")
    print(f"  logs: {cloud.layout.logs}")


if __name__ == "__main__":
    raise SystemExit(main())
