"""What vpp_papi's serializer would cost the agent per port, on a real agent's traffic.

    python benchmarks/vpp_papi_cost.py [--ports 1000]

An agent cold-starts N ports on the emulator (as ``agent_resync.py`` does)
through a recording client. Every request it sent is then packed, and every
reply unpacked, with vpp_papi's own message classes built from VPP's
``.api.json`` files of record (``../shared/vpp-api``): the CPU a real VPP
connection spends in the agent's process before any socket is touched. Prints
the total per port and the cost of each message.
"""

from __future__ import annotations

import argparse
import collections
import glob
import time
from pathlib import Path
from typing import Any

from agent_resync import HOST, KEYS, SOCKET_DIR, binding, new_vpp  # type: ignore[import-not-found]

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.main import tune_gc
from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.common import model
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp.recorder import Recorder, to_papi

API_FILES = Path(__file__).resolve().parents[2] / "shared" / "vpp-api"
HEADER = {"_vl_msg_id": 1, "context": 7, "client_index": 0}
ROUNDS = 3  # each message is timed over this many passes; the best counts


def record(ports: int) -> list[tuple[str, dict[str, Any], Any]]:
    """The calls, with their replies, of an agent's cold start of ``ports`` ports."""
    with EtcdServer() as server:
        etcd = EtcdClient(EtcdSettings(endpoints=[server.endpoint]))
        write_batch(
            etcd,
            [Put(KEYS.port(HOST, b.port_id), model.encode(b)) for b in map(binding, range(ports))],
        )
        recorder = Recorder(new_vpp())
        settings = AgentSettings(
            host=HOST,
            physnets={"physnet1": "GigabitEthernet0/8/0"},
            vhostuser_socket_dir=SOCKET_DIR,
            make_vhostuser_socket_dir=False,
        )
        agent = Agent(settings, etcd, VppAdapter(recorder))
        agent.start()
        try:
            if not agent.wait_converged(600):
                raise SystemExit("agent did not converge")
        finally:
            agent.stop()
    return recorder.calls


def replies(reply: Any) -> list[Any]:
    """The messages of one answer (a reply, a details list, or both)."""
    if isinstance(reply, list):
        return reply
    if isinstance(reply, tuple) and len(reply) == 2 and isinstance(reply[1], list):
        return [reply[0], *reply[1]]
    return [reply]


def best_of(fn: Any, items: list[Any]) -> float:
    """Seconds of the fastest of ROUNDS passes of ``fn`` over ``items``."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=1000)
    args = parser.parse_args()
    files = sorted(glob.glob(str(API_FILES / "*" / "*.api.json")))
    if not files:
        raise SystemExit(f"no .api.json files under {API_FILES}")
    from vpp_papi.vpp_papi import VPPApiJSONFiles  # the optional agent dependency

    _, papi, _ = VPPApiJSONFiles.load_api(apifiles=files)
    tune_gc()
    calls = record(args.ports)
    requests: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    answers: dict[str, list[bytes]] = collections.defaultdict(list)
    for name, kwargs, reply in calls:
        requests[name].append({**HEADER, **kwargs})
        for msg in replies(reply):
            cls = papi[type(msg).__name__]
            values = dict(zip(cls.fields, (to_papi(v) for v in msg), strict=True))
            answers[type(msg).__name__].append(cls.pack(values))
    total = 0.0
    print(f"{len(calls)} calls for {args.ports} ports ({len(calls) / args.ports:.1f} a port):")
    for name, items in sorted(requests.items(), key=lambda kv: -len(kv[1])):
        seconds = best_of(papi[name].pack, items)
        total += seconds
        print(f"    pack   {name:34s} x{len(items):>6}  {seconds / len(items) * 1e6:7.1f} us")
    for name, blobs in sorted(answers.items(), key=lambda kv: -len(kv[1])):
        seconds = best_of(papi[name].unpack, blobs)
        total += seconds
        print(f"    unpack {name:34s} x{len(blobs):>6}  {seconds / len(blobs) * 1e6:7.1f} us")
    print(
        f"vpp_papi pack + unpack: {total / args.ports * 1e6:.0f} us a port"
        f" ({total / args.ports * 10_000:.2f} s for 10,000 ports), sockets not counted"
    )


if __name__ == "__main__":
    main()
