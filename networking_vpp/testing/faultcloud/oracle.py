"""The desired-state oracle: "does etcd equal what Neutron's database says?", on demand.

Runs the full resync's comparison (:mod:`networking_vpp.server.sync`, in dry-run:
it changes nothing) from a process of its own, as ``networking-vpp resync
--dry-run`` does, but loads Neutron's configuration and ML2 plugin only once and
then answers every request on stdin with one JSON report on stdout::

    python -m networking_vpp.testing.faultcloud.oracle \\
        --config-file neutron.conf --config-file ml2_conf.ini
    > check
    < {"dry_run": true, "put": [], "delete": [], "skipped": [], ...}

:class:`DesiredOracle` drives it from a test. A report with no put, delete,
skipped, failed or problem means etcd holds exactly the keys and values the
journal would have written from the database as it is now.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READY = "ready"


class DesiredOracle:
    """A long-lived oracle process (Neutron loads once, in about ten seconds)."""

    def __init__(self, config_files: list[Path], log: Path) -> None:
        self.argv = [sys.executable, "-m", "networking_vpp.testing.faultcloud.oracle"]
        for path in config_files:
            self.argv += ["--config-file", str(path)]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.checks = 0

    def start(self, timeout: float = 180.0) -> None:
        """Start the process and wait until Neutron's plugin is loaded."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        reply = self._read(timeout)
        if reply.get(READY) is not True:
            raise RuntimeError(f"oracle did not start: {reply}")

    def check(self, timeout: float = 120.0) -> dict[str, Any]:
        """One dry-run comparison; the resync report as JSON."""
        if self.proc is None or self.proc.stdin is None:
            raise RuntimeError("oracle not started")
        self.proc.stdin.write(b"check\n")
        self.proc.stdin.flush()
        self.checks += 1
        return self._read(timeout)

    def close(self) -> None:
        """Stop the process."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"oracle gave no answer in {timeout:.0f}s (log: {self.log})")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"oracle exited; see {self.log}")
                return dict(json.loads(line))
            if self.proc.poll() is not None:
                raise RuntimeError(f"oracle exited with {self.proc.returncode}; see {self.log}")


def is_clean(report: dict[str, Any]) -> bool:
    """etcd equals the database-derived desired state (nothing to do, skip or worry about)."""
    return not any(report.get(k) for k in ("put", "delete", "skipped", "failed", "problems"))


def main(argv: list[str] | None = None) -> int:
    """Load once, then answer ``check`` lines until stdin closes."""
    from networking_vpp.cli import conf
    from networking_vpp.cli import resync as cli_resync

    parser = argparse.ArgumentParser(prog="faultcloud-oracle", description=__doc__.split("\n")[0])
    conf.add_arguments(parser)
    args = parser.parse_args(argv)
    # Our replies own stdout; anything else printed goes to stderr (the log).
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    resync, client = cli_resync.load(args)
    out.write(json.dumps({READY: True}) + "\n")
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "check":
                try:
                    report: dict[str, Any] = resync.run(dry_run=True).to_json()
                except Exception as exc:  # noqa: BLE001 - report it, keep serving
                    report = {"error": repr(exc), "problems": [repr(exc)]}
                out.write(json.dumps(report) + "\n")
            elif command:
                out.write(json.dumps({"error": f"unknown command {command!r}"}) + "\n")
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
