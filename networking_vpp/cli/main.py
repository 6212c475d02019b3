"""``networking-vpp``: the operator's command (status, watch, resync, journal, etcd-setup).

Each command lives in its own module with ``add_parser(subparsers)`` and a
``run(args) -> exit status``. ``status`` and ``watch`` need only etcd;
``resync`` and ``journal`` also read Neutron's database (and so need Neutron
installed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from networking_vpp.cli import etcd_setup, journal, resync, status, watch
from networking_vpp.common import keys
from networking_vpp.common.etcd.errors import EtcdError

COMMANDS = (status, watch, resync, journal, etcd_setup)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    top = argparse.ArgumentParser(
        prog="networking-vpp",
        description="Operate networking-vpp: see what the agents report, watch etcd, and "
        "repair etcd from the Neutron database.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        warnings.simplefilter("ignore")  # Neutron's import-time deprecation noise
    try:
        status = int(args.run(args))
        sys.stdout.flush()  # now, so that a closed pipe is caught below
        return status
    except EtcdError as exc:
        print(f"networking-vpp {args.command}: etcd: {exc}", file=sys.stderr)
        return 2
    except keys.BadKey as exc:  # e.g. --host with a '/'
        print(f"networking-vpp {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
