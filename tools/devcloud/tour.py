#!/usr/bin/env python3
"""A tour of the dev cloud: networks, subnets and ports bound to both hosts, then what happened.

Creates a VLAN network (physnet1) and a flat network (physnet2), a subnet on each, and
three ports bound to compute-1 and compute-2 the way Nova binds them (binding:host_id,
device_owner compute:nova, a UUID device_id); waits for each to go ACTIVE and for the
fake Nova to hear network-vif-plugged (Neutron sends its events in batches, once a
second), and for each host's agent to have published its summary of them; then prints
Neutron's agents, the etcd keys below /networking-vpp, each host's VPP objects, the
events the fake Nova received, and each port's timeline. With Neutron's agents it goes
on with namespaces as VMs that really talk (tour_vms.py). What a previous tour left is
deleted first; what this one creates stays, to explore (``--cleanup`` removes it at
the end).

Run ``tools/devcloud/up.sh`` (which runs this), or on a running cloud:
``python tools/devcloud/tour.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from networking_vpp.common import model
from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.client import VIF_PLUGGED, CloudClient
from networking_vpp.testing.devcloud.cloud import DevCloud

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tour_vms  # noqa: E402 - beside this script

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
        # A network's first port waits for the DHCP agent too (a provisioning block),
        # whose very first network starts its privileged helpers: some seconds.
        port = client.wait_port(port.id, "ACTIVE", timeout=90)
        active = time.time()
        made.append((port, host, started, created, active))
        print(
            f"  {port.id}  {network.name:9} on {host}:  {port.binding_vif_type}, "
            f"created {duration(created - started)}, ACTIVE after {duration(active - started)}"
        )
        print(f"      socket {port.binding_vif_details.get('vhostuser_socket')}")

    # Neutron tells Nova in batches (send_events_interval, 1 s): wait for each event,
    # and for each agent's summary to count this tour's ports, so nothing shown is stale.
    for port, *_rest in made:
        client.wait_nova_event(port.id, timeout=15.0)
    wait_summaries(client, hosts)

    agents = list(net.agents())
    if agents:
        step("Neutron's agents (openstack network agent list)")
        for agent in sorted(agents, key=lambda a: (a.host, a.binary)):
            alive = "alive" if agent.is_alive else "DEAD"
            print(f"  {agent.host:10} {agent.binary:24} {agent.agent_type:15} {alive}")

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
    for port, _host, _started, _created, _active in made:
        for event in [e for e in events if e["tag"] == port.id]:
            print(
                f"  {clock(event['received_at'])}  {event['name']} {event['status']} "
                f"port {port.id[:8]} server {event['server_uuid'][:8]}"
            )

    step("timings: each port's timeline from its POST (in the order things happened)")
    for port, host, started, created, active in made:
        state = client.port_state(host, port.id)
        told = [e["received_at"] for e in events if e["tag"] == port.id]
        moments = [
            ("API answered", created),
            ("agent reported", state.reported_at if state else None),
            ("ACTIVE seen", active),
            ("Nova told", min(told) if told else None),
        ]
        line = "  ".join(
            f"{what} +{duration(at - started)}"
            for what, at in sorted(
                ((w, a) for w, a in moments if a is not None), key=lambda m: m[1]
            )
        )
        print(f"  {port.id[:8]} on {host} (POST at {clock(started)}):  {line}")
    print("  (ACTIVE seen: when the tour's poll of the API saw it; the split of the control")
    print("   plane's part by stage is benchmarks/bind_latency.py)")
    tour_vms.run(client, step)
    print(f"\nserver log: {client.cloud.server_log}")


def wait_summaries(client: CloudClient, hosts: tuple[str, ...], timeout: float = 15.0) -> None:
    """Until each host's summary counts every port etcd binds there, none pending."""

    def current() -> bool:
        for host in hosts:
            bound = len(client.etcd_items(client.keys.host_ports_prefix(host)))
            kv = client.etcd.get(client.keys.summary(host))
            if kv is None:
                return False
            summary = model.decode(model.HostSummary, kv.key, kv.value)
            if summary.desired != bound or summary.pending:
                return False
        return True

    try:
        procs.wait_until(current, timeout, "the agents' summaries", interval=0.1)
    except procs.DevCloudError:
        print("  (an agent's summary has not caught up: the etcd keys below show its last one)")


def summarise(key: str, value: bytes) -> str:
    """A one-line summary of an etcd value (times as clock times, cut between words)."""
    if not value:
        return "(empty: its writes wake the elected forwarder)" if "/kick/" in key else "(empty)"
    try:
        data = json.loads(value)
    except ValueError:
        return shorten(value.decode(errors="replace"))
    if not isinstance(data, dict):
        return shorten(str(data))
    if "/nodes/" in key:
        sock = (data.get("vhostuser") or {}).get("socket") or (data.get("tap") or {}).get("ifname")
        return (
            f"{data.get('network_type')} {data.get('physnet')} "
            f"seg {data.get('segmentation_id') or '-'} mac {data.get('mac_address')} {sock}"
        )
    if "/secgroups/" in key:
        return shorten(
            f"{len(data.get('rules') or [])} rules: "
            + "; ".join(rule_text(r) for r in data.get("rules") or [])
        )
    if "/ports/" in key:
        prog = data.get("programmed") or {}
        text = (
            f"{data.get('status')} {prog.get('interface', '')} bd {prog.get('bridge_domain', '')}"
            f" via {prog.get('uplink', '')} {data.get('reason', '')}".rstrip()
        )
        if data.get("reported_at"):
            text += f", reported {clock(data['reported_at'])}"
        return text
    return shorten(
        ", ".join(
            f"{k}={readable(k, v)}"
            for k, v in data.items()
            if k != "version" and v not in ((), [], "", None)
        )
    )


def rule_text(rule: dict[str, Any]) -> str:
    """A rule as ``ingress IPv4 tcp 22-22 from 10.0.0.0/8``."""
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    ports = f" {low}-{high}" if low is not None else ""
    remote = rule.get("remote_ip_prefix") or rule.get("remote_group_id") or ""
    proto = rule.get("protocol")
    return (
        f"{rule.get('direction')} {rule.get('ethertype')} "
        f"{'any' if proto is None else proto}{ports}{f' from {remote}' if remote else ''}"
    )


def readable(name: str, value: Any) -> str:
    """A value as a reader wants it: epoch times as clock times, lists joined."""
    if name.endswith("_at") and isinstance(value, int | float) and value > 1e9:
        return clock(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


def shorten(text: str, width: int = 110) -> str:
    """``text`` on one line of at most ``width`` characters, cut between words."""
    return textwrap.shorten(text, width=width, placeholder=" ...")


def step(title: str) -> None:
    print(f"\n== {title}")


def duration(seconds: float) -> str:
    """A duration as people read it: 85 ms, 1.24 s, 2 min 5 s."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min {rest:.0f} s"


def clock(epoch: float) -> str:
    """An epoch time as this machine's clock time, to the millisecond."""
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch % 1 * 1000):03d}"


if __name__ == "__main__":
    sys.exit(main())
