"""Security group fan-out: one rule change reaching every host, and compile time.

    python benchmarks/secgroup_fanout.py [--hosts 100] [--ports 10000] [--rules 1000]

N ports spread over H simulated hosts (each a real agent with its own etcd
client on its own emulated VPP, all in this process, one real etcd; each agent
reaches its VPP through vpp_papi on the VPP's API socket, which charges VPP's
measured costs, ``testing/vpp/costs.py``) share one
security group. One rule is added to the group; the clock runs from the etcd
write until every host's VPP holds the new ACL. Two groups are measured: one
whose rules name prefixes, and Neutron's default shape, whose ingress rule
names the group itself as remote group (so every host's ACL expands all N
members). All hosts share this machine's cores, so the wall time is bounded by
their summed CPU; the slowest single host's own work (event to ACL replaced)
is printed too. Then the agent's compile time for a group of R rules.
"""

from __future__ import annotations

import argparse
import time

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.reconcile import acl_rules
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.common import keys as k
from networking_vpp.common import model, portnames
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.costs import CostModel
from networking_vpp.testing.vpp.socket_server import ApiServer, serve

KEYS = k.KeySpace()
UPLINK = "GigabitEthernet0/8/0"
GROUP = "fan"
PREFIX_RULES = (
    model.SecGroupRule("egress", "IPv4"),
    model.SecGroupRule("ingress", "IPv4", 6, 22, 22, "10.0.0.0/8"),
)
SELF_RULES = (
    model.SecGroupRule("egress", "IPv4"),
    model.SecGroupRule("ingress", "IPv4", None, None, None, remote_group_id=GROUP),
)
NEW_RULE = model.SecGroupRule("ingress", "IPv4", 6, 443, 443, "0.0.0.0/0")

SOCKET_DIR = "/run/vpp/vhostuser"  # the agents'; not made (emulated VPP)


def port(i: int, host: int) -> model.PortBinding:
    return model.PortBinding(
        port_id=f"{i:011d}-port",  # unique in the 11 characters names use
        binding_id="b",
        network_id=f"net-{host}",
        mac_address=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        mtu=1500,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=100,
        binding_type="vhostuser",
        vhostuser=model.VhostUser(portnames.vhostuser_socket(SOCKET_DIR, f"{i:011d}")),
        fixed_ips=(model.FixedIp(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "s"),),
        security_groups=(GROUP,),
    )


def fanout(server: EtcdServer, hosts: int, ports: int, base_rules: tuple, label: str) -> None:
    etcd = EtcdClient(server.settings())
    etcd.delete_prefix(KEYS.prefix + "/")
    group = model.SecurityGroup(GROUP, base_rules)
    ops: list[Put] = [Put(KEYS.secgroup(GROUP), model.encode(group))]
    for i in range(ports):
        b = port(i, i % hosts)
        ops.append(Put(KEYS.port(f"host-{i % hosts}", b.port_id), model.encode(b)))
        member = model.RemoteGroupMember(b.port_id, (b.fixed_ips[0].ip_address,))
        ops.append(Put(KEYS.remote_group_member(GROUP, b.port_id), model.encode(member)))
    write_batch(etcd, ops)
    agents, vpps, servers = [], [], []
    start = time.perf_counter()
    for h in range(hosts):
        vpp = VppEmulator()
        vpp.add_hardware_interface(UPLINK, "52:54:00:00:08:00")
        settings = AgentSettings(
            host=f"host-{h}",
            physnets={"physnet1": UPLINK},
            report_before_vm_connects=True,
            vhostuser_socket_dir=SOCKET_DIR,
            make_vhostuser_socket_dir=False,
        )
        # Each host has its own etcd client (its own connections), as real hosts do.
        api: ApiServer = serve(vpp, costs=CostModel())
        adapter = vpp_adapter(api.path, api.api_dir)
        agent = Agent(settings, EtcdClient(server.settings()), adapter)
        agent.start()
        agents.append(agent)
        vpps.append(vpp)
        servers.append(api)
    for agent in agents:
        if not agent.wait_converged(900):
            raise SystemExit("an agent did not converge")
    cold = time.perf_counter() - start
    before = [vpp.calls["acl_add_replace"] for vpp in vpps]
    changed = model.SecurityGroup(GROUP, base_rules + (NEW_RULE,))
    start = time.perf_counter()
    etcd.put(KEYS.secgroup(GROUP), model.encode(changed))
    pending = set(range(hosts))
    done_at: dict[int, float] = {}
    while pending:
        now = time.perf_counter()
        for h in [h for h in pending if vpps[h].calls["acl_add_replace"] != before[h]]:
            done_at[h] = now - start
            pending.discard(h)
        time.sleep(0.0005)
    elapsed = time.perf_counter() - start
    replaces = sum(v.calls["acl_add_replace"] - b for v, b in zip(vpps, before, strict=True))
    rules = len(agents[0].secgroups.inv.acls[f"net-vpp.sg:{GROUP}:out"][1])
    times = sorted(done_at.values())
    print(
        f"[{label}] {hosts} hosts, {ports} ports (cold start {cold:.1f} s); one rule added -> "
        f"first host {times[0]:.3f} s, median {times[len(times) // 2]:.3f} s, "
        f"all {hosts} hosts {elapsed:.3f} s; {replaces} acl_add_replace calls in all, "
        f"ingress ACL of {rules} rules per host"
    )
    for agent in agents:
        agent.stop()
    for api in servers:
        api.close()
    etcd.close()


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
        fanout(server, args.hosts, args.ports, PREFIX_RULES, "prefix rules")
        fanout(server, args.hosts, args.ports, SELF_RULES, "self remote group")
        # What one real host pays for that change (the line above shares two
        # cores between every simulated host).
        fanout(server, 1, args.ports, SELF_RULES, "self remote group, one host")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
