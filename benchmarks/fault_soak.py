"""Fault soak: the fault suite's server-side scenarios, longer and repeated, on one fault cloud.

    python benchmarks/fault_soak.py [--count 3] [--ops 1000] [--etcd-ops 400]
        [--outage 30] [--examples 20] [--steps 25] [--seed N] [--json out.json]

Starts a :class:`~networking_vpp.testing.faultcloud.rig.FaultCloud` in a temporary
directory (3-member etcd, MariaDB, Neutron's API under uWSGI, two hosts whose VPP
and agent are separate processes; about 45 s) and runs ``--count`` rounds of:

1. ``--ops`` port operations through the API while uWSGI workers are SIGKILLed
   every 60 to 100 operations (the forwarder's leader, the other worker, both);
2. ``--etcd-ops`` port operations while etcd loses a follower, its leader (twice
   each), then every member for ``--outage`` seconds (the CI test holds 5 s);
3. ``--examples`` model-based examples of up to ``--steps`` steps (random networks,
   ports, bindings, security groups, agent/VPP/etcd restarts); 0 skips it.

Each round ends converged (etcd equals the database-derived state, every VPP
equals etcd, reports current) and checked (committed journal writes against
etcd's history: lost and reordered must be 0). The figures of every scenario are
printed as they come and, with ``--json``, written out. Exit status 1 if any
check failed; the cloud's logs are kept then (their path is printed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from networking_vpp.testing.devcloud.cloud import missing_prerequisites
from networking_vpp.testing.faultcloud import scenarios
from networking_vpp.testing.faultcloud.rig import FaultCloud


def make_networks(rig: FaultCloud) -> list[str]:
    """Two VLAN networks with subnets (physnet1, physnet2), as the fault suite uses."""
    assert rig.api is not None
    out = []
    for i, physnet in enumerate(("physnet1", "physnet2")):
        net = rig.api.create(
            "networks",
            "network",
            name=f"soak-net-{i}",
            **{"provider:network_type": "vlan", "provider:physical_network": physnet},
        )
        rig.api.create(
            "subnets", "subnet", network_id=net["id"], cidr=f"10.{70 + i}.0.0/16", ip_version=4
        )
        out.append(net["id"])
    return out


def run_round(rig: FaultCloud, networks: list[str], args: argparse.Namespace, n: int) -> list[dict]:
    """One round of the three scenarios; returns their results (figures and problems)."""
    results: list[dict[str, Any]] = []
    seed = args.seed + n

    def record(name: str, figures: str, problems: list[str], seconds: float) -> None:
        print(f"[round {n + 1}] {figures}", flush=True)
        for problem in problems[:20]:
            print(f"[round {n + 1}]   PROBLEM {problem}", flush=True)
        results.append(
            {
                "round": n + 1,
                "scenario": name,
                "figures": figures,
                "problems": problems,
                "seconds": round(seconds, 1),
            }
        )

    started = time.monotonic()
    kills = scenarios.api_worker_kills(rig, networks, ops=args.ops, seed=seed, tag=f"sk{n}")
    record("api_worker_kills", kills.figures(), kills.problems(), time.monotonic() - started)

    started = time.monotonic()
    etcd = scenarios.etcd_faults(
        rig, networks, ops=args.etcd_ops, outage=args.outage, seed=seed, tag=f"se{n}"
    )
    problems = etcd.problems()
    if not etcd.extra.get("committed"):
        problems.append("nothing was committed during the outage")
    record("etcd_faults", etcd.figures(), problems, time.monotonic() - started)

    if args.examples:
        from networking_vpp.testing.faultcloud.machine import run_model  # needs hypothesis

        started = time.monotonic()
        try:
            model = run_model(rig, args.examples, args.steps)
            record("model", model.figures(), model.problems(), time.monotonic() - started)
        except AssertionError as exc:  # a failing example: hypothesis printed its steps
            record("model", "model-based: FAILED", [str(exc)], time.monotonic() - started)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--ops", type=int, default=1000, help="operations under worker kills")
    parser.add_argument("--etcd-ops", type=int, default=400, help="operations under etcd faults")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds all of etcd is down")
    parser.add_argument("--examples", type=int, default=20, help="model-based examples (0: skip)")
    parser.add_argument("--steps", type=int, default=25, help="steps per model-based example")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--json", type=Path, help="write every scenario's results here")
    args = parser.parse_args()
    missing = missing_prerequisites()
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="fault-soak-"))
    print(f"fault soak: seed {args.seed}, {args.count} rounds; cloud in {base}", flush=True)
    rig = FaultCloud(base)
    results: list[dict[str, Any]] = []
    failed = False
    started = time.monotonic()
    try:
        rig.up()
        networks = make_networks(rig)
        for n in range(args.count):
            results += run_round(rig, networks, args, n)
            failed = failed or any(r["problems"] for r in results)
    except Exception:  # noqa: BLE001 - report, keep the logs, exit 1
        traceback.print_exc()
        failed = True
    finally:
        logs = rig.logs() if rig.cloud is not None else {}
        rig.down()
    total = time.monotonic() - started
    print(
        f"\nfault soak: {len(results)} scenarios in {total / 60:.1f} min, "
        f"{'FAILED' if failed else 'all checks passed'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "args": vars(args) | {"json": str(args.json)},
                    "results": results,
                    "failed": failed,
                    "minutes": round(total / 60, 1),
                },
                indent=1,
            )
        )
    if failed:
        print(f"logs kept: {json.dumps(logs)}", file=sys.stderr)
        return 1
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
