"""Security group fan-out: one rule change reaching every host, and compile time.

    python benchmarks/secgroup_fanout.py [--hosts 100] [--ports 10000] [--rules 1000]

N ports spread over H simulated hosts (each a real agent on its own emulated
VPP, all in this process, one real etcd) share one security group. One rule is
added to the group; the clock runs from the etcd write until every host's VPP
holds the new ACL. Then the agent's compile time for a group of R rules.
"""

from __future__ import annotations

import argparse
import time

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.reconcile import acl_rules
from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp import VppEmulator

KEYS = k.KeySpace()
UPLINK = "GigabitEthernet0/8/0"
GROUP = "fan"
BASE_RULES = (
    model.SecGroupRule("egress", "IPv4"),
    model.SecGroupRule("ingress", "IPv4", 6, 22, 22, remote_group_id=GROUP),
)
NEW_RULE = model.SecGroupRule("ingress", "IPv4", 6, 443, 443, "0.0.0.0/0")


def port(i: int, host: int) -> model.PortBinding:
    return model.PortBinding(
        port_id=f"port-{i:06d}",
        binding_id="b",
        network_id=f"net-{host}",
        mac_address=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        mtu=1500,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=100,
        binding_type="vhostuser",
        vhostuser=model.VhostUser(f"/run/vpp/vhu-{i:06d}"),
        fixed_ips=(model.FixedIp(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "s"),),
        security_groups=(GROUP,),
    )


def fanout(etcd: EtcdClient, hosts: int, ports: int) -> None:
    ops: list[Put] = [
        Put(KEYS.secgroup(GROUP), model.encode(model.SecurityGroup(GROUP, BASE_RULES)))
    ]
    for i in range(ports):
        b = port(i, i % hosts)
        ops.append(Put(KEYS.port(f"host-{i % hosts}", b.port_id), model.encode(b)))
        ops.append(
            Put(
                KEYS.remote_group_member(GROUP, b.port_id),
                model.encode(model.RemoteGroupMember(b.port_id, (b.fixed_ips[0].ip_address,))),
            )
        )
    write_batch(etcd, ops)
    agents, vpps = [], []
    start = time.perf_counter()
    for h in range(hosts):
        vpp = VppEmulator()
        vpp.add_hardware_interface(UPLINK, "52:54:00:00:08:00")
        settings = AgentSettings(
            host=f"host-{h}", physnets={"physnet1": UPLINK}, report_before_vm_connects=True
        )
        agent = Agent(settings, etcd, VppAdapter(vpp.client))
        agent.start()
        agents.append(agent)
        vpps.append(vpp)
    for agent in agents:
        if not agent.wait_converged(600):
            raise SystemExit("an agent did not converge")
    print(
        f"{hosts} agents, {ports} ports, converged from cold in {time.perf_counter() - start:.1f} s"
    )
    before = [vpp.calls["acl_add_replace"] for vpp in vpps]
    start = time.perf_counter()
    etcd.put(
        KEYS.secgroup(GROUP), model.encode(model.SecurityGroup(GROUP, BASE_RULES + (NEW_RULE,)))
    )
    pending = set(range(hosts))
    while pending:
        pending = {h for h in pending if vpps[h].calls["acl_add_replace"] == before[h]}
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    replaces = sum(v.calls["acl_add_replace"] - b for v, b in zip(vpps, before, strict=True))
    print(
        f"one rule added -> all {hosts} hosts hold the new ACL after {elapsed:.3f} s "
        f"({replaces} acl_add_replace calls in all)"
    )
    for agent in agents:
        agent.stop()


def compile_time(n_rules: int) -> None:
    rules = tuple(
        model.SecGroupRule(
            "ingress" if i % 2 else "egress",
            "IPv4",
            6,
            1000 + i,
            1000 + i,
            f"10.{i // 256}.{i % 256}.0/24",
        )
        for i in range(n_rules)
    )
    group = model.SecurityGroup("big", rules)
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        acl_rules.group_rules(group, "ingress", {})
        acl_rules.group_rules(group, "egress", {})
    per = (time.perf_counter() - start) / rounds * 1000
    print(f"compile a group of {n_rules} rules (both directions): {per:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--ports", type=int, default=10000)
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args()
    compile_time(args.rules)
    server = EtcdServer()
    server.start()
    try:
        fanout(EtcdClient(server.settings()), args.hosts, args.ports)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
