#!/usr/bin/env python3
"""A tour of the dev cloud: networks, subnets and ports bound to both hosts, then what happened.

Creates a VLAN network (physnet1) and a flat network (physnet2), a subnet on each, and
three ports bound to compute-1 and compute-2 the way Nova binds them (binding:host_id,
device_owner compute:nova, a UUID device_id); waits for each to go ACTIVE; then prints
the etcd keys below /networking-vpp, each host's VPP objects, the network-vif-plugged
events the fake Nova received, and the timings. What a previous tour left is deleted
first; what this one creates stays, to explore (``--cleanup`` removes it at the end).

Run ``tools/devcloud/up.sh`` (which runs this), or on a running cloud:
``python tools/devcloud/tour.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

from networking_vpp.testing.devcloud.client import VIF_PLUGGED, CloudClient
from networking_vpp.testing.devcloud.cloud import DevCloud

PREFIX = "tour-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--base", type=Path, default=Path(os.environ.get("DEVCLOUD_DIR", ".devcloud"))
    )
    parser.add_argument("--cleanup", action="store_true", help="delete what the tour made")
    args = parser.parse_args()
    cloud = DevCloud(args.base)
    if not cloud.ports.neutron:
        print(f"no dev cloud in {args.base}: run tools/devcloud/up.sh", file=sys.stderr)
        return 1
    client = CloudClient(cloud)
    try:
        tour(client, cloud.hosts)
        if args.cleanup:
            clean(client)
    finally:
        client.close()
    return 0


def clean(client: CloudClient) -> None:
    """Delete the ports and networks of a tour."""
    net = client.neutron.network
    for network in list(net.networks()):
        if network.name.startswith(PREFIX):
            for port in list(net.ports(network_id=network.id)):
                net.delete_port(port)
            net.delete_network(network)


def tour(client: CloudClient, hosts: tuple[str, ...]) -> None:
    net = client.neutron.network
    clean(client)
    step("networks and subnets")
    vlan = net.create_network(
        name=PREFIX + "vlan", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    flat = net.create_network(
        name=PREFIX + "flat", provider_network_type="flat", provider_physical_network="physnet2"
    )
    for network, cidr in ((vlan, "10.10.0.0/24"), (flat, "10.20.0.0/24")):
        net.create_subnet(network_id=network.id, cidr=cidr, ip_version=4, name=network.name)
        seg = network.provider_segmentation_id
        print(
            f"  {network.name:10} {network.provider_network_type:4} "
            f"{network.provider_physical_network}{f' vlan {seg}' if seg else ''}  {cidr}  "
            f"mtu {network.mtu}  {network.id}"
        )

    step("ports, bound as Nova binds them; waiting for ACTIVE")
    plan = [(vlan, hosts[0]), (vlan, hosts[-1]), (flat, hosts[0])]
    made = []
    for network, host in plan:
        started = time.time()
        port = net.create_port(
            network_id=network.id,
            name=f"{PREFIX}{host}",
            binding_host_id=host,
            device_owner="compute:nova",
            device_id=str(uuid.uuid4()),
        )
        created = time.time()
        port = client.wait_port(port.id, "ACTIVE", timeout=30)
        active = time.time()
        made.append((port, host, started, created, active))
        print(
            f"  {port.id}  {network.name:9} on {host}:  {port.binding_vif_type}, "
            f"created {ms(created - started)}, ACTIVE after {ms(active - started)}"
        )
        print(f"      socket {port.binding_vif_details.get('vhostuser_socket')}")

    step("etcd: the desired state and the agents' reports (below /networking-vpp)")
    for key, value, rev in client.etcd_items():
        print(f"  [rev {rev:>4}] {key}")
        print(f"             {summarise(key, value)}")

    for host in hosts:
        step(f"VPP on {host}")
        vpp = client.vpp(host)
        for itf in vpp["interfaces"]:
            flags = ("up" if itf["admin_up"] else "down") + ("/link" if itf["link_up"] else "")
            print(
                f"  if {itf['sw_if_index']:>2} {itf['name']:26} {flags:8} "
                f"mtu {itf['mtu']:<5} {itf['tag']}"
            )
        for bd in vpp["bridge_domains"]:
            if bd["bd_id"]:
                print(f"  bd {bd['bd_id']:>2} members {bd['members']}  {bd['tag']}")

    step("the fake Nova: network-vif-plugged events")
    events = client.nova_events(VIF_PLUGGED)
    for port, host, started, _created, _active in made:
        for event in [e for e in events if e["tag"] == port.id]:
            state = client.port_state(host, port.id)
            reported = state.reported_at if state else 0.0
            print(
                f"  {event['name']} {event['status']} port {port.id[:8]} "
                f"server {event['server_uuid'][:8]}: agent reported at +{ms(reported - started)}, "
                f"Nova told at +{ms(event['received_at'] - started)}"
            )

    step("timings (from the POST)")
    print("  port      API answered  etcd key written*  agent reported  ACTIVE seen")
    for port, host, started, created, active in made:
        binding_rev = next(
            (r for k, _v, r in client.etcd_items() if k.endswith(f"/{host}/ports/{port.id}")), 0
        )
        state = client.port_state(host, port.id)
        reported = state.reported_at - started if state else float("nan")
        print(
            f"  {port.id[:8]}  {ms(created - started):>12}  rev {binding_rev:<13} "
            f"{ms(reported):>14}  {ms(active - started):>11}"
        )
    print("  * etcd keeps revisions, not times: see benchmarks/bind_latency.py for the split")
    print(f"\nserver log: {client.cloud.server_log}")


def summarise(key: str, value: bytes) -> str:
    """A one-line summary of an etcd value."""
    if not value:
        return "(empty: its writes wake the elected forwarder)" if "/kick/" in key else "(empty)"
    try:
        data = json.loads(value)
    except ValueError:
        return value[:80].decode(errors="replace")
    if not isinstance(data, dict):
        return str(data)[:100]
    if "/nodes/" in key:
        sock = (data.get("vhostuser") or {}).get("socket") or (data.get("tap") or {}).get("ifname")
        return (
            f"{data.get('network_type')} {data.get('physnet')} "
            f"seg {data.get('segmentation_id') or '-'} mac {data.get('mac_address')} {sock}"
        )
    if "/ports/" in key:
        prog = data.get("programmed") or {}
        return (
            f"{data.get('status')} {prog.get('interface', '')} bd {prog.get('bridge_domain', '')}"
            f" via {prog.get('uplink', '')} {data.get('reason', '')}".rstrip()
        )
    return ", ".join(f"{k}={v}" for k, v in data.items() if k != "version")[:100]


def step(title: str) -> None:
    print(f"\n== {title}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
