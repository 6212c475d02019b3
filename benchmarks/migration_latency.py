"""Live migration on the dev cloud: inactive binding created -> destination programmed and reported.

    python benchmarks/migration_latency.py [--ports 50] [--base .devcloud]

Without ``--base`` a private dev cloud is started in a temporary directory and
stopped at the end. Ports are bound to compute-1 and made ACTIVE first; then, one
port at a time, the script does what Nova does at the start of a live migration
(``POST /v2.0/ports/{id}/bindings`` for compute-2, with the service role) and
takes these instants on this machine's wall clock:

    a  POST .../bindings sent
    b  POST answered (the INACTIVE binding and its journal rows committed)
    c  the destination's binding key put in etcd, seen by a watch
    s  the destination's report (its binding id, active), as the agent stamped it
    n  network-vif-plugged for the port at the fake Nova, after ``a``

Nova waits for ``n`` before it starts moving the guest (``vif_plugging_timeout``).
Neutron batches its Nova events (``send_events_interval``, 1 s here), so ``a -> n``
includes that batching. Every port is then activated on compute-2, as Nova does
once the guest runs there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bind_latency import PutTimes, on_a_cloud, percentile

from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.client import VIF_PLUGGED, CloudClient
from networking_vpp.testing.devcloud.cloud import DevCloud

KEYS = k.KeySpace()
SOURCE, DEST = "compute-1", "compute-2"


def run(cloud: DevCloud, count: int) -> list[dict[str, Any]]:
    """Migrate-prepare ``count`` ports one at a time; the instants of each."""
    client = CloudClient(cloud)
    net = client.neutron.network
    network = net.create_network(
        name=f"bench-lm-{uuid.uuid4().hex[:6]}",
        provider_network_type="vlan",
        provider_physical_network="physnet1",
    )
    net.create_subnet(network_id=network.id, cidr="10.98.0.0/16", ip_version=4)
    rows: list[dict[str, Any]] = []
    try:
        ports = [
            net.create_port(
                network_id=network.id,
                binding_host_id=SOURCE,
                device_owner="compute:nova",
                device_id=str(uuid.uuid4()),
            )
            for _ in range(count)
        ]
        for port in ports:
            client.wait_port(port.id, "ACTIVE", timeout=60)
        with PutTimes(client) as puts:
            for i, port in enumerate(ports):
                rows.append(_prepare(client, puts, port.id))
                if (i + 1) % 10 == 0:
                    print(f"  {i + 1} ports", file=sys.stderr)
            procs.wait_until(
                lambda: all(_plugged_after(client, r) for r in rows),
                30,
                "network-vif-plugged for every destination",
            )
            for r in rows:
                r["n"] = _plugged_after(client, r) or float("nan")
            for port in ports:
                client.nova.network.activate_port_binding(port.id, DEST)
            for port in ports:
                client.wait_port(port.id, "ACTIVE", timeout=60)
        return rows
    finally:
        for port in net.ports(network_id=network.id):
            net.delete_port(port)
        net.delete_network(network)
        client.close()


def _prepare(client: CloudClient, puts: PutTimes, port_id: str) -> dict[str, Any]:
    """Nova's INACTIVE binding on the destination; the instants until it is reported."""
    a = time.time()
    client.nova.network.create_port_binding(port_id, host=DEST)
    b = time.time()
    dest_key = KEYS.port(DEST, port_id)
    bound = procs.wait_until(lambda: puts.get(dest_key), 30, "destination key")
    binding = model.decode(model.PortBinding, dest_key, bound[2])
    report = procs.wait_until(
        lambda: _if_current(client.port_state(DEST, port_id), binding),
        30,
        "destination report",
        interval=0.002,
    )
    return dict(a=a, b=b, c=bound[0], s=report.reported_at, port=port_id)


def _if_current(
    report: model.PortState | None, binding: model.PortBinding
) -> model.PortState | None:
    """The report, once it is the destination binding's and active."""
    if report is None or report.binding_id != binding.binding_id or report.status != "active":
        return None
    return report


def _plugged_after(client: CloudClient, row: dict[str, Any]) -> float | None:
    times = [
        e["received_at"]
        for e in client.nova_events(VIF_PLUGGED, row["port"])
        if e["received_at"] >= row["a"]
    ]
    return min(times) if times else None


SPANS = [
    ("binding created -> destination reported", "a", "s"),
    ("  POST sent -> answered", "a", "b"),
    ("  answered -> destination key in etcd", "b", "c"),
    ("  destination key -> its report in etcd", "c", "s"),
    ("binding created -> Nova told plugged", "a", "n"),
]


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\nlive-migration preparation over {len(rows)} ports (ms)")
    print(f"  {'span':44} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for label, start, end in SPANS:
        values = [(r[end] - r[start]) * 1000 for r in rows if r[end] == r[end]]
        if not values:
            continue
        print(
            f"  {label:44} {statistics.median(values):7.1f} {percentile(values, 90):7.1f} "
            f"{percentile(values, 99):7.1f} {max(values):7.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=50)
    parser.add_argument("--base", type=Path, help="use the dev cloud running there")
    args = parser.parse_args()
    rows = on_a_cloud(args.base, "migration-latency-", lambda c: run(c, args.ports))
    if rows is None:
        return 2
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
