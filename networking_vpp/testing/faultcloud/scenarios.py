"""The server-side fault scenarios, shared by the fault suite and ``benchmarks/fault_soak.py``.

Each runs port traffic through the real API while it injects one family of
faults, then waits for convergence and gathers the evidence; the caller asserts
(:meth:`Outcome.problems`) and prints the figures (:meth:`Outcome.figures`).

* :func:`api_worker_kills`: uWSGI workers SIGKILLed at random points (the
  forwarder's leader, the other worker, or both), each respawned by uWSGI;
* :func:`etcd_faults`: etcd followers and the leader killed and restarted, and
  finally every member down for ``outage`` seconds.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Sequence

from networking_vpp.testing.faultcloud.history import BacklogSampler, OrderReport
from networking_vpp.testing.faultcloud.rig import FaultCloud
from networking_vpp.testing.faultcloud.workload import PortWorkload, WorkloadStats
from networking_vpp.testing.wait import wait_for

WORKER_KILL_MODES = ("leader", "other", "both")
ETCD_PLAN = ("follower", "leader", "follower", "leader", "outage")


@dataclasses.dataclass
class Outcome:
    """What a scenario did and what the checks found."""

    name: str
    stats: WorkloadStats
    faults: list[str]
    order: OrderReport
    repairs: int  # keys the forwarder's resyncs repaired (lost journal writes)
    wrong_ports: list[str]  # ports not as the last answered request left them
    converged: float  # seconds from the last operation to full convergence
    since_fault: float  # seconds from the last fault to full convergence
    run: float  # seconds the traffic ran
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, float] = dataclasses.field(default_factory=dict)

    def problems(self) -> list[str]:
        """Everything that must be empty for the scenario to pass."""
        out = [f"inconsistent: {x}" for x in self.stats.inconsistent]
        out += [f"refused: {x}" for x in self.stats.refused]
        out += [f"lost: {x}" for x in self.order.lost]
        out += [f"reordered: {x}" for x in self.order.reordered]
        out += [f"port: {x}" for x in self.wrong_ports]
        if self.repairs:
            out.append(f"the resync repaired {self.repairs} keys: journal writes were lost")
        return out

    def figures(self) -> str:
        """One line for the suite's summary (or the soak's report)."""
        notes = "; ".join(self.notes)
        return (
            f"{self.name}: {self.stats.summary()}; faults: {', '.join(self.faults)}"
            f"{'; ' + notes if notes else ''}; {self.order.summary()}; resync repairs "
            f"{self.repairs}; converged {self.converged:.1f} s after the last operation, "
            f"{self.since_fault:.1f} s after the last fault; traffic ran {self.run:.0f} s"
        )


def _wait_ops(workload: PortWorkload, target: int, what: str) -> bool:
    """Wait until the workload has sent ``target`` operations; False if it ended first."""
    wait_for(
        lambda: workload.done_ops() >= target or not workload.running,
        900,
        what,
        interval=0.05,
    )
    return workload.running


def _finish(
    name: str,
    rig: FaultCloud,
    workload: PortWorkload,
    mark: tuple[int, int],
    repairs_before: int,
    faults: list[str],
    started: float,
    last_fault: float,
) -> Outcome:
    ended = time.monotonic()
    converged = rig.wait_converged(180)
    assert rig.api is not None
    return Outcome(
        name=name,
        stats=workload.stats,
        faults=faults,
        order=rig.check_window(mark),
        repairs=rig.resync_repairs() - repairs_before,
        wrong_ports=workload.differences(rig.api),
        converged=converged.seconds,
        since_fault=time.monotonic() - last_fault,
        run=ended - started,
    )


def _baseline(rig: FaultCloud, seed: int) -> tuple[int, tuple[int, int], random.Random]:
    """Start a scenario from a converged cloud: (resync repairs so far, history mark, rng)."""
    rig.wait_converged(120)
    return rig.resync_repairs(), rig.mark(), random.Random(seed)


def api_worker_kills(
    rig: FaultCloud,
    networks: Sequence[str],
    ops: int = 520,
    seed: int = 0,
    kill_every: tuple[int, int] = (60, 100),
    tag: str = "fx",
) -> Outcome:
    """Port traffic while API workers are SIGKILLed every ``kill_every`` operations."""
    assert rig.audit is not None
    repairs_before, mark, rng = _baseline(rig, seed)
    workload = PortWorkload(
        rig.dev.neutron_url, rig.audit, networks, list(rig.hosts), ops=ops, seed=seed, tag=tag
    )
    faults: list[str] = []
    respawns: list[float] = []
    backlog = BacklogSampler(rig.audit).start()
    started = last_fault = time.monotonic()
    workload.start()
    try:
        while True:
            target = workload.done_ops() + rng.randint(*kill_every)
            # A random point of the run: the n-th operation from now, whatever it is doing.
            if not _wait_ops(workload, target, "the workload to reach the next kill"):
                break
            if workload.done_ops() >= ops:
                break
            mode = WORKER_KILL_MODES[len(faults) % len(WORKER_KILL_MODES)]
            workers = rig.api_workers()
            leader = rig.forwarder_leader_pid()
            if mode == "both":
                victims = workers
            elif mode == "leader" and leader in workers:
                victims = [leader]
            else:
                victims = [rng.choice([w for w in workers if w != leader] or workers)]
            rig.kill_workers(victims)
            last_fault = time.monotonic()
            faults.append(f"{mode} worker")
            respawns.append(rig.wait_workers_respawned(victims))
        workload.join(900)
    finally:
        workload.stop()
        backlog.stop()
    outcome = _finish(
        "API worker SIGKILL", rig, workload, mark, repairs_before, faults, started, last_fault
    )
    outcome.notes.append(
        "uWSGI respawned each in " + ", ".join(f"{s:.1f}" for s in respawns) + " s"
    )
    outcome.notes.append(backlog.summary())
    workload.cleanup(rig.api)  # type: ignore[arg-type]
    return outcome


def etcd_faults(
    rig: FaultCloud,
    networks: Sequence[str],
    ops: int = 200,
    outage: float = 5.0,
    seed: int = 0,
    plan: Sequence[str] = ETCD_PLAN,
    tag: str = "fe",
) -> Outcome:
    """Port traffic while etcd members, the leader, then all members go down."""
    assert rig.audit is not None
    repairs_before, mark, rng = _baseline(rig, seed)
    workload = PortWorkload(
        rig.dev.neutron_url,
        rig.audit,
        networks,
        list(rig.hosts),
        clients=3,
        ops=ops,
        seed=seed,
        tag=tag,
    )
    faults: list[str] = []
    seen = {"peak": 0, "committed": 0, "back": 0.0}
    backlog = BacklogSampler(rig.audit).start()
    try:
        started, last_fault = _run_etcd_plan(rig, workload, plan, outage, rng, faults, seen)
        audit = rig.audit
        wait_for(lambda: audit.pending() == 0, 180, "the journal to drain", interval=0.05)
    finally:
        backlog.stop()
    drained = time.monotonic() - seen["back"]
    outcome = _finish(
        "etcd 3-member cluster", rig, workload, mark, repairs_before, faults, started, last_fault
    )
    if seen["back"]:
        outcome.notes.append(
            f"{seen['committed']:.0f} journal writes committed during the outage (backlog "
            f"peak {seen['peak']:.0f} rows), journal empty {drained:.1f} s after etcd was back"
        )
    outcome.notes.append(backlog.summary())
    outcome.extra.update(seen)
    outcome.extra["backlog_rows"] = backlog.max_rows
    outcome.extra["backlog_wait"] = backlog.max_wait
    workload.cleanup(rig.api)  # type: ignore[arg-type]
    return outcome


def _run_etcd_plan(
    rig: FaultCloud,
    workload: PortWorkload,
    plan: Sequence[str],
    outage: float,
    rng: random.Random,
    faults: list[str],
    seen: dict[str, float],
) -> tuple[float, float]:
    """Run the traffic and inject ``plan``; returns (start, last fault) instants."""
    ops = workload.budget
    started = last_fault = time.monotonic()
    workload.start()
    try:
        for fault in plan:
            # Spread over the run; with the outage last, the run ends on the drain.
            share = ops * (len(faults) + 1) // (len(plan) + 1)
            target = max(workload.done_ops() + 5, share + rng.randint(-5, 5))
            _wait_ops(workload, target, f"the workload to reach the {fault} kill")
            if fault == "outage":
                _full_outage(rig, outage, seen)
                faults.append(f"all members down {outage:.0f} s")
            else:
                victim = rig.etcd.leader_index()
                if fault == "follower":
                    victim = rng.choice([i for i in range(rig.etcd.size) if i != victim])
                rig.etcd.kill(victim)
                # Down for a stretch of the workload, not for a guessed time.
                _wait_ops(workload, workload.done_ops() + 8, "traffic while a member is down")
                rig.etcd.restart(victim)
                faults.append(f"{fault} killed")
            last_fault = time.monotonic()
        workload.join(900)
    finally:
        workload.stop()
        for i, member in enumerate(rig.etcd.members):  # never leave the cluster broken
            if not member.running:
                rig.etcd.restart(i, wait=False)
        rig.etcd.wait_healthy()
    return started, last_fault


def _full_outage(rig: FaultCloud, seconds: float, seen: dict[str, float]) -> None:
    """Every member down for ``seconds`` while Neutron keeps committing."""
    assert rig.audit is not None
    before = rig.audit.last_id()
    for i in range(rig.etcd.size):
        rig.etcd.kill(i)
    ends = time.monotonic() + seconds
    pause = threading.Event()
    while time.monotonic() < ends:  # the outage's length is the fault itself
        seen["peak"] = max(seen["peak"], rig.audit.pending())
        pause.wait(min(0.2, max(0.0, ends - time.monotonic())))
    seen["committed"] = rig.audit.last_id() - before
    for i in range(rig.etcd.size):
        rig.etcd.restart(i, wait=False)  # a lone member cannot be healthy: start all, then wait
    rig.etcd.wait_healthy()
    seen["back"] = time.monotonic()


__all__ = ["ETCD_PLAN", "Outcome", "api_worker_kills", "etcd_faults"]
