"""Agent cold start and put-to-report latency: a real etcd, the emulated VPP with VPP's costs.

    python benchmarks/agent_resync.py [--sizes 1000 3000] [--taps 200] [--groups 20]
                                      [--costs default] [--latency 200] [--repeat 1]

The emulated VPP is a process of its own serving VPP's API socket, and charges
each message the service time measured on a real VPP (``--costs default``,
``testing/vpp/costs.py``; ``off`` for the emulator's own speed, or
``<message>=<seconds>,...`` overrides); the agent (this process) reaches it
through vpp_papi, as the vpp-agent reaches VPP. Ports have security groups
(each port in two of ``--groups`` groups, whose ingress rule names the group
itself, as Neutron's default group does).

For each size N: N vhost-user port bindings are written to etcd, then an agent
starts cold against an empty VPP; the clock stops when every port is programmed
and its report is in etcd. Then ``--taps`` tap ports the same way (their kernel
devices made in the emulator first). Printed for each: the time, the API calls
a port (the agent's, and the messages VPP served, control_pings included), the
times the agent waited for replies (round trips, many requests each), the
agent's own CPU a port (this process, whose other threads idle) apart from the
wall time its worker spent blocked in VPP calls, and the emulator's CPU (its
own speed, not VPP's); the vhost-user ports' receive queues left polling (their
VMs connected), with what they would cost an idle VPP at the measured rate.
After each vhost-user cold start, VPP stops and starts
again: how soon the agent is connected and every port programmed anew after
VPP answers. Then, with the agent running, single ports are put one at a time
and the delay until their state key appears (an etcd watch): p50, p99.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.main import tune_gc
from networking_vpp.agent.vpp.adapter import RX_MODE_POLLING
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.common import keys as k
from networking_vpp.common import model, portnames
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp.costs import CostModel
from networking_vpp.testing.vpp.remote import RemoteEmulator, control_path
from networking_vpp.testing.wait import wait_for

HOST = "bench-host"
UPLINK = "GigabitEthernet0/8/0"
KEYS = k.KeySpace()

SOCKET_DIR = "/run/vpp/vhostuser"  # the agent's; not made (emulated VPP)
GROUPS = 20
PER_NETWORK = 50  # ports per network (--per-network)


def group_ids(i: int, groups: int) -> tuple[str, ...]:
    """Port i's security groups: two of ``groups``."""
    if groups == 0:
        return ()
    return tuple(sorted({f"sg-{i % groups}", f"sg-{(i + 1) % groups}"}))


def binding(i: int, kind: str = "vhostuser", groups: int = GROUPS) -> model.PortBinding:
    """Port i: ``PER_NETWORK`` ports per VLAN network, in two security groups."""
    name = f"{i:011d}"
    return model.PortBinding(
        port_id=f"{name}-port",  # unique in the 11 characters names use
        binding_id=f"b-{i}",
        network_id=f"net-{i // PER_NETWORK}",
        mac_address=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        mtu=1500,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=100 + (i // PER_NETWORK) % 3000,
        binding_type="vhostuser" if kind == "vhostuser" else "tap",
        vhostuser=(
            model.VhostUser(portnames.vhostuser_socket(SOCKET_DIR, name))
            if kind == "vhostuser"
            else None
        ),
        tap=model.Tap(f"tap{name}") if kind == "tap" else None,
        fixed_ips=(model.FixedIp(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "s"),),
        security_groups=group_ids(i, groups),
    )


def group(sg_id: str) -> model.SecurityGroup:
    """Neutron's default group's shape, plus SSH from anywhere in 10/8."""
    return model.SecurityGroup(
        sg_id,
        (
            model.SecGroupRule("egress", "IPv4"),
            model.SecGroupRule("ingress", "IPv4", 6, 22, 22, "10.0.0.0/8"),
            model.SecGroupRule("ingress", "IPv4", remote_group_id=sg_id),
        ),
    )


def desired_state(bindings: list[model.PortBinding], groups: int) -> list[Put]:
    """The etcd writes of a host's ports, their groups and the groups' members."""
    ops = [Put(KEYS.secgroup(f"sg-{g}"), model.encode(group(f"sg-{g}"))) for g in range(groups)]
    for b in bindings:
        ops.append(Put(KEYS.port(HOST, b.port_id), model.encode(b)))
        member = model.RemoteGroupMember(b.port_id, (b.fixed_ips[0].ip_address,))
        for sg_id in b.security_groups:
            ops.append(Put(KEYS.remote_group_member(sg_id, b.port_id), model.encode(member)))
    return ops


class EmulatorProcess:
    """The emulated VPP in a process of its own (as VPP is), serving its API socket."""

    def __init__(self, costs: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="bench-vpp-")
        self.socket = os.path.join(self._dir, "api.sock")
        cmd = [sys.executable, "-m", "networking_vpp.testing.vpp.remote", "--socket", self.socket]
        cmd += ["--uplink", f"{UPLINK}=52:54:00:00:08:00", "--auto-connect-vms"]
        if costs != "off":
            cmd += ["--costs", costs]
        self._log = open(os.path.join(self._dir, "vpp.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        self.control: RemoteEmulator = wait_for(self._connect, 30, "emulator process")

    def _connect(self) -> RemoteEmulator | None:
        if self.proc.poll() is not None:
            raise SystemExit(f"emulator exited: see {self._log.name}")
        if not os.path.exists(control_path(self.socket)):
            return None
        try:
            return RemoteEmulator(self.socket)
        except (FileNotFoundError, ConnectionRefusedError):
            return None

    @property
    def api_dir(self) -> str:
        return self.control.api_dir

    def cpu(self) -> float:
        """CPU seconds the emulator process has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def messages(self) -> int:
        """Messages the emulated VPP has served (control_pings included)."""
        return sum(self.control.attr("calls").values())

    def by_message(self) -> Counter[str]:
        """Messages served so far, by name."""
        return Counter(self.control.attr("calls"))

    def close(self) -> None:
        self.control.close()
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()


@contextmanager
def emulator(costs: str) -> Iterator[EmulatorProcess]:
    vpp = EmulatorProcess(costs)
    try:
        yield vpp
    finally:
        vpp.close()


def make_agent(etcd: EtcdClient, vpp: EmulatorProcess) -> Agent:
    settings = AgentSettings(
        host=HOST,
        physnets={"physnet1": UPLINK},
        vhostuser_socket_dir=SOCKET_DIR,
        make_vhostuser_socket_dir=False,
    )
    return Agent(settings, etcd, vpp_adapter(vpp.socket, vpp.api_dir))


class GcTime:
    """Seconds spent in the cyclic garbage collector, whichever thread triggered it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._started[me] = time.perf_counter()
        elif me in self._started:
            self.seconds += time.perf_counter() - self._started.pop(me)
            self.collections += 1


def thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each live thread of this process, by thread name."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
        except (OSError, AttributeError):
            continue
        name = thread.name.rstrip("0123456789_-")  # one line for a pool's threads
        out[name] = out.get(name, 0.0) + time.clock_gettime(clock)
    return out


def cpu_split(before: dict[str, float], after: dict[str, float]) -> str:
    """The threads' CPU during the run, biggest first ("reconcile 1.20 s, ...")."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    return ", ".join(
        f"{name} {sec:.2f} s"
        for name, sec in sorted(used.items(), key=lambda x: -x[1])
        if sec >= 0.01
    )


#: an idle VPP's CPU for each vhost-user receive queue left polling (14 % of a
#: core at 1,000 ports, 34 % at 3,000 on VPP 26.06: issue 15's table)
POLL_COST = 0.34 / 3000


def idle_cost(agent: Agent, n: int) -> str:
    """The ports' receive queues by mode (their VMs connected), and what the
    polling ones would cost an idle VPP at the measured rate."""
    ports = {p.sw_if_index for p in agent.inventory.ports.values()}
    modes = {i: m for i, m in agent.vpp.dump_rx_modes().items() if i in ports}
    polling = sum(1 for m in modes.values() if RX_MODE_POLLING in m)
    return (
        f"    receive queues: {len(modes)} of {n} ports have them, {polling} left polling"
        f" (an idle VPP's CPU for them: {100 * polling * POLL_COST:.1f} % of a core)"
    )


def vpp_restart(agent: Agent, vpp: EmulatorProcess, n: int) -> str:
    """VPP stops and starts again under ``n`` programmed ports: how soon the
    agent is back (connected, and every port programmed anew) after VPP
    answers again."""
    resyncs = agent.resyncs
    vpp.control.stop()
    wait_for(lambda: not agent.vpp.connected, 30, "the agent to see VPP gone")
    vpp.control.start()
    answered = time.perf_counter()
    wait_for(lambda: agent.vpp.connected, 30, "the agent to reconnect")
    connected = time.perf_counter() - answered
    while not (agent.resyncs > resyncs and agent.queue.idle() and len(agent.inventory.ports) == n):
        time.sleep(0.01)
    back = time.perf_counter() - answered
    return (
        f"    VPP restarted under {n} ports: the agent connected {connected:.3f} s after VPP"
        f" answered, every port programmed again {back:.3f} s after"
    )


def cold_start(
    etcd: EtcdClient, n: int, kind: str, groups: int, costs: str, restart: bool = False
) -> float:
    etcd.delete_prefix(KEYS.prefix + "/")
    bindings = [binding(i, kind, groups) for i in range(n)]
    write_batch(etcd, desired_state(bindings, groups))
    with emulator(costs) as vpp:
        for b in bindings:
            if b.tap is not None:
                vpp.control.add_kernel_interface(b.tap.ifname)
        agent = make_agent(etcd, vpp)
        # A real cold start is a new process. Here the previous run's agent is
        # still garbage in the young generations; one collection could land anywhere.
        gc.collect()
        gc_time = GcTime()
        gc.callbacks.append(gc_time)
        served_before, vpp_cpu_before = vpp.messages(), vpp.cpu()
        by_message_before = vpp.by_message()
        cpu_before, process_before = thread_cpu(), time.process_time()
        start = time.perf_counter()
        agent.start()
        agent._watcher.wait_loaded(600)
        loaded = time.perf_counter() - start
        early = len(agent.inventory.ports)  # programmed while etcd was still sending
        while not (agent.resyncs and agent.queue.idle()):
            time.sleep(0.01)  # coarse: a busy poll would steal the agent's GIL
        programmed = time.perf_counter() - start
        if not agent.wait_converged(1200):
            raise SystemExit("agent did not converge")
        elapsed = time.perf_counter() - start
        cpu_after, agent_cpu = thread_cpu(), time.process_time() - process_before
        gc.callbacks.remove(gc_time)
        served, vpp_cpu = vpp.messages() - served_before, vpp.cpu() - vpp_cpu_before
        # VPP's main thread at the measured service times (dump rows aside):
        # what a real VPP would spend, the floor of any pipelining
        model = CostModel()
        vpp_busy = sum(
            model.service(name) * count
            for name, count in (vpp.by_message() - by_message_before).items()
        )
        reported, _ = etcd.get_prefix(KEYS.port_states_prefix(HOST))
        calls, waits, blocked = agent.vpp.calls, agent.vpp.waits, agent.vpp.call_seconds
        idle = idle_cost(agent, n) if kind == "vhostuser" else None
        restarted = vpp_restart(agent, vpp, n) if restart else None
        agent.stop()
    assert len(agent.inventory.ports) == n, len(agent.inventory.ports)
    assert len(reported) == n, len(reported)
    errors = [kv.key for kv in reported if b'"error"' in kv.value]
    assert not errors, errors[:3]
    print(
        f"cold start, {n:>5} {kind} ports, costs {costs}: {elapsed:7.3f} s,"
        f" {elapsed / n * 1000:.3f} ms/port (etcd loaded at {loaded:.3f} s with {early} ports"
        f" programmed by then, VPP programmed at {programmed:.3f} s,"
        f" {agent.reporter.flushes} report batches)"
    )
    print(
        f"    API: {calls} agent calls ({calls / n:.2f} a port),"
        f" {served} messages served by VPP ({served / n:.2f} a port, control_pings included),"
        f" {waits} waits for replies ({waits / n:.2f} a port)"
    )
    print(
        f"    agent CPU {agent_cpu:.2f} s ({agent_cpu / n * 1000:.3f} ms/port):"
        f" {cpu_split(cpu_before, cpu_after)}; {gc_time.collections} garbage collections"
        f" {gc_time.seconds:.2f} s"
    )
    print(
        f"    blocked in VPP calls {blocked:.2f} s ({blocked / n * 1000:.3f} ms/port);"
        f" VPP's own time at its measured costs {vpp_busy:.2f} s;"
        f" emulator process CPU {vpp_cpu:.2f} s (its own speed, not VPP's)"
    )
    if idle:
        print(idle)
    if restarted:
        print(restarted)
    return elapsed


def latency(etcd: EtcdClient, count: int, groups: int, costs: str) -> None:
    etcd.delete_prefix(KEYS.prefix + "/")
    write_batch(etcd, desired_state([], groups))
    with emulator(costs) as vpp:
        agent = make_agent(etcd, vpp)
        agent.start()
        agent.wait_converged(60)
        seen: dict[str, float] = {}
        cond = threading.Condition()

        def on_events(events: list[Event]) -> None:
            now = time.perf_counter()
            with cond:
                for ev in events:
                    if ev.kind == "put":
                        seen.setdefault(ev.key, now)
                cond.notify_all()

        watcher = PrefixWatcher(
            etcd, KEYS.port_states_prefix(HOST), lambda *_: None, on_events, name="bench"
        )
        watcher.start()
        watcher.wait_loaded(10)
        samples = []
        for i in range(count):
            b = binding(100_000 + i, "vhostuser", groups)
            state_key = KEYS.port_state(HOST, b.port_id)
            start = time.perf_counter()
            write_batch(etcd, desired_state([b], 0))
            with cond:
                if not cond.wait_for(functools.partial(seen.__contains__, state_key), timeout=10):
                    raise SystemExit(f"no report for {b.port_id}")
                samples.append((seen[state_key] - start) * 1000)
        watcher.stop()
        agent.stop()
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"put -> state key over {count} ports (costs {costs}): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )


def main() -> None:
    global PER_NETWORK
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 3000])
    parser.add_argument("--taps", type=int, nargs="*", default=[200], help="tap port runs")
    parser.add_argument("--groups", type=int, default=GROUPS, help="security groups")
    parser.add_argument(
        "--per-network", type=int, default=PER_NETWORK, help="ports per VLAN network"
    )
    parser.add_argument(
        "--costs", default="default", help="VPP's costs: default, off, or <message>=<seconds>,..."
    )
    parser.add_argument("--latency", type=int, default=200, help="ports for the latency run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="cold starts per size (the median is the figure)"
    )
    parser.add_argument(
        "--no-restart",
        dest="restart",
        action="store_false",
        help="skip the VPP restart after each vhost-user cold start",
    )
    args = parser.parse_args()
    PER_NETWORK = args.per_network
    tune_gc()  # as the vpp-agent process does
    server = EtcdServer()
    server.start()
    try:
        etcd = EtcdClient(EtcdSettings(endpoints=[server.endpoint]))
        runs_of = [("vhostuser", n) for n in args.sizes] + [("tap", n) for n in args.taps]
        for kind, n in runs_of:
            runs = sorted(
                cold_start(etcd, n, kind, args.groups, args.costs, args.restart and kind != "tap")
                for _ in range(args.repeat)
            )
            median = statistics.median(runs)
            print(
                f"==> {n} {kind} ports: median {median:.3f} s ({median / n * 1000:.3f} ms/port)"
                f" over {len(runs)} cold starts, {runs[0]:.3f}-{runs[-1]:.3f} s"
            )
        if args.latency:
            latency(etcd, args.latency, args.groups, args.costs)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
