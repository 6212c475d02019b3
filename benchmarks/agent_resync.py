"""Agent cold start and put-to-report latency, on a real etcd and the VPP emulator.

    python benchmarks/agent_resync.py [--sizes 1000 10000] [--latency 1000] [--repeat 3]

For each size N: N port bindings are written to etcd, then an agent starts cold
against an empty emulated VPP; the clock stops when every port is programmed
and its report is in etcd. Prints total seconds and ms per port for each cold
start, then the median of ``--repeat`` of them (a shared machine's speed
drifts by 15-50 % from minute to minute). Then, with the agent running,
single ports are put one at a time and the delay until their state key
appears (seen through an etcd watch) is measured: p50 and p99.
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import threading
import time

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.main import tune_gc
from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.common import keys as k
from networking_vpp.common import model, portnames
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp import VppEmulator

HOST = "bench-host"
UPLINK = "GigabitEthernet0/8/0"
KEYS = k.KeySpace()

SOCKET_DIR = "/run/vpp/vhostuser"  # the agent's; not made (emulated VPP)


def binding(i: int) -> model.PortBinding:
    """Port i: vhost-user, 50 ports per VLAN network."""
    return model.PortBinding(
        port_id=f"{i:011d}-port",  # unique in the 11 characters names use
        binding_id=f"b-{i}",
        network_id=f"net-{i // 50}",
        mac_address=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        mtu=1500,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=100 + (i // 50) % 3000,
        binding_type="vhostuser",
        vhostuser=model.VhostUser(portnames.vhostuser_socket(SOCKET_DIR, f"{i:011d}")),
        fixed_ips=(model.FixedIp(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "s"),),
    )


def make_agent(etcd: EtcdClient, vpp: VppEmulator) -> Agent:
    settings = AgentSettings(
        host=HOST,
        physnets={"physnet1": UPLINK},
        vhostuser_socket_dir=SOCKET_DIR,
        make_vhostuser_socket_dir=False,
    )
    return Agent(settings, etcd, VppAdapter(vpp.client))


def new_vpp() -> VppEmulator:
    # "sync": VPP's events reach the agent in order with the replies, as
    # vpp_papi's reader thread hands them over, but on the calling thread, so
    # the run measures the agent rather than thread hand-overs.
    vpp = VppEmulator(event_delivery="sync")
    vpp.add_hardware_interface(UPLINK, "52:54:00:00:08:00")
    vpp.auto_connect_vms = True  # QEMU attaches as soon as the socket exists
    return vpp


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


def cold_start(etcd: EtcdClient, n: int) -> float:
    etcd.delete_prefix(KEYS.prefix + "/")
    write_batch(
        etcd, [Put(KEYS.port(HOST, b.port_id), model.encode(b)) for b in map(binding, range(n))]
    )
    vpp = new_vpp()
    agent = make_agent(etcd, vpp)
    # A real cold start is a new process. Here the previous run's agent and
    # emulator are still garbage in the young generations, and one collection
    # of them (half a million objects, 0.8 s) could land in any later run.
    gc.collect()
    gc_time = GcTime()
    gc.callbacks.append(gc_time)
    cpu_before, process_before = thread_cpu(), time.process_time()
    start = time.perf_counter()
    agent.start()
    agent._watcher.wait_loaded(600)
    loaded = time.perf_counter() - start
    early = len(agent.inventory.ports)  # programmed while etcd was still sending
    while not (agent.resyncs and agent.queue.idle()):
        time.sleep(0.01)  # coarse: a busy poll would steal the agent's GIL
    programmed = time.perf_counter() - start
    if not agent.wait_converged(600):
        raise SystemExit("agent did not converge")
    elapsed = time.perf_counter() - start
    cpu_after, process_cpu = thread_cpu(), time.process_time() - process_before
    gc.callbacks.remove(gc_time)
    reported, _ = etcd.get_prefix(KEYS.port_states_prefix(HOST))
    agent.stop()
    assert len(agent.inventory.ports) == n, len(agent.inventory.ports)
    assert len(reported) == n, len(reported)
    vpp_s = agent.vpp.call_seconds
    print(
        f"cold start, {n:>6} ports: {elapsed:7.3f} s total, {elapsed / n * 1000:.3f} ms/port"
        f" (etcd loaded at {loaded:.3f} s with {early} ports programmed by then,"
        f" VPP programmed at {programmed:.3f} s,"
        f" {agent.reporter.flushes} report batches); {agent.vpp.calls} VPP API calls"
        f" ({agent.vpp.calls / n:.1f} a port) took {vpp_s:.3f} s in the emulator"
    )
    print(
        f"    CPU {process_cpu:.2f} s in this process (agent and emulator share it):"
        f" {cpu_split(cpu_before, cpu_after)}; the agent's own, less the emulator's calls:"
        f" {process_cpu - vpp_s:.2f} s ({(process_cpu - vpp_s) / n * 1000:.3f} ms/port);"
        f" {gc_time.collections} garbage collections took {gc_time.seconds:.2f} s"
    )
    return elapsed


def latency(etcd: EtcdClient, count: int) -> None:
    etcd.delete_prefix(KEYS.prefix + "/")
    vpp = new_vpp()
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
        b = binding(100_000 + i)
        state_key = KEYS.port_state(HOST, b.port_id)
        start = time.perf_counter()
        etcd.put(KEYS.port(HOST, b.port_id), model.encode(b))
        with cond:
            if not cond.wait_for(functools.partial(seen.__contains__, state_key), timeout=10):
                raise SystemExit(f"no report for {b.port_id}")
            samples.append((seen[state_key] - start) * 1000)
    watcher.stop()
    agent.stop()
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"put -> state key over {count} ports: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--latency", type=int, default=1000, help="ports for the latency run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="cold starts per size (the median is the figure)"
    )
    args = parser.parse_args()
    tune_gc()  # as the vpp-agent process does
    server = EtcdServer()
    server.start()
    try:
        etcd = EtcdClient(EtcdSettings(endpoints=[server.endpoint]))
        for n in args.sizes:
            runs = sorted(cold_start(etcd, n) for _ in range(args.repeat))
            median = statistics.median(runs)
            print(
                f"==> {n} ports: median {median:.3f} s ({median / n * 1000:.3f} ms/port)"
                f" over {len(runs)} cold starts, {runs[0]:.3f}-{runs[-1]:.3f} s"
            )
        if args.latency:
            latency(etcd, args.latency)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
