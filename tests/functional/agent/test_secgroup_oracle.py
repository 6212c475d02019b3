"""The oracle test: VPP's verdicts equal Neutron's security group semantics.

Hypothesis generates security groups (every protocol, port ranges, ICMP
type/code, prefixes, remote groups, both directions, IPv4 and IPv6) and ports
in them; the real agent compiles them into the emulated VPP; for generated
packets between the ports, the packet walk's verdict must equal the verdict of
``neutron_allows`` below, which is written from Neutron's documented semantics
and shares no code with the agent. The reply of an allowed connection must get
back (security groups are stateful).

Some packets are wrapped in tag stacks (802.1Q, 802.1ad, VLAN 0, two to four
tags) or are not IP at all: a VM's port is an access port, so no tagged frame
gets anywhere (agent/reconcile/isolation.py), and a port with port security,
as with Neutron's OVS firewall, sends and takes IPv4, IPv6 and ARP only.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from networking_vpp.common import model
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.vpp import Frame
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, HostRig, binding

PORTS = {
    "pa": ("fa:16:3e:00:30:01", "10.0.0.1", "2001:db8::1"),
    "pb": ("fa:16:3e:00:30:02", "10.0.0.2", "2001:db8::2"),
    "pc": ("fa:16:3e:00:30:03", "10.0.1.3", "2001:db8:1::3"),
}
GROUPS = ("g0", "g1", "g2")
PREFIXES = {
    "IPv4": ["10.0.0.0/24", "10.0.0.2/32", "10.0.0.0/31", "10.0.1.0/24", "192.0.2.0/24"],
    "IPv6": ["2001:db8::/64", "2001:db8::2/128", "2001:db8:1::/48", "2001:db8:ffff::/48"],
}
TCP, UDP, ICMP, ICMP6, SCTP = 6, 17, 1, 58, 132
QINQ, DOT1Q = 0x88A8, 0x8100
# A VM's own tags: (VLAN ids, TPIDs)
TAG_STACKS = [
    ((7,), ()),
    ((0,), ()),
    ((7,), (QINQ,)),
    ((0, 0), (DOT1Q, QINQ)),
    ((0, 0), (QINQ, DOT1Q)),
    ((100, 7), ()),
    ((1, 2, 3), ()),
    ((1, 2, 3, 4), ()),
]
NON_IP = [0x88B5, 0x8847, 0x88CC, 0x8863]  # local experimental, MPLS, LLDP, PPPoE
ECHO = {ICMP: (8, 0), ICMP6: (128, 129)}  # request type -> reply type


@st.composite
def rules(draw: st.DrawFn) -> model.SecGroupRule:
    ethertype = draw(st.sampled_from(["IPv4", "IPv6"]))
    icmp = ICMP if ethertype == "IPv4" else ICMP6
    proto = draw(st.sampled_from([None, TCP, UDP, SCTP, icmp, 47]))
    lo = hi = None
    # Port ranges on other protocols (SCTP...) are refused by the server: VPP
    # cannot match them.
    if proto in (TCP, UDP) and draw(st.booleans()):
        lo = draw(st.integers(20, 25))
        hi = draw(st.integers(lo, 26))
    elif proto == icmp and draw(st.booleans()):
        lo = draw(st.sampled_from([0, 3, 8, 128, 129, 135]))
        hi = draw(st.sampled_from([None, 0, 1]))
    remote = draw(st.sampled_from(["any", "prefix", "group"]))
    prefix = draw(st.sampled_from(PREFIXES[ethertype])) if remote == "prefix" else None
    group = draw(st.sampled_from(GROUPS)) if remote == "group" else None
    direction = draw(st.sampled_from(["ingress", "egress"]))
    return model.SecGroupRule(direction, ethertype, proto, lo, hi, prefix, group)


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    groups = {g: tuple(draw(st.lists(rules(), max_size=5))) for g in GROUPS}
    ports = {
        p: (
            tuple(draw(st.sets(st.sampled_from(GROUPS), max_size=2))),
            draw(st.booleans()) or draw(st.booleans()),  # port security mostly on
        )
        for p in PORTS
    }
    return {"groups": groups, "ports": ports}


@st.composite
def packets(draw: st.DrawFn) -> tuple[str, str, Frame]:
    src, dst = draw(st.permutations(list(PORTS)))[:2]
    v6 = draw(st.booleans())
    icmp = ICMP6 if v6 else ICMP
    proto = draw(st.sampled_from([TCP, UDP, SCTP, icmp, 47]))
    fields: dict = dict(
        src_mac=PORTS[src][0],
        dst_mac=PORTS[dst][0],
        ethertype=0x86DD if v6 else 0x0800,
        src_ip=PORTS[src][2 if v6 else 1],
        dst_ip=PORTS[dst][2 if v6 else 1],
        proto=proto,
    )
    if proto in (TCP, UDP, SCTP):
        service = [67, 68, 546, 547]
        sport = draw(st.one_of(st.integers(30000, 30010), st.sampled_from(service)))
        dport = draw(st.one_of(st.integers(19, 27), st.sampled_from(service)))
        fields.update(src_port=sport, dst_port=dport)
    elif proto == icmp:
        fields.update(
            icmp_type=draw(st.sampled_from([0, 3, 8, 128, 129, 135])),
            icmp_code=draw(st.sampled_from([0, 1])),
        )
    wrap = draw(st.sampled_from(["plain"] * 6 + ["tagged", "non-ip"]))
    if wrap == "tagged":
        vlans, tpids = draw(st.sampled_from(TAG_STACKS))
        fields.update(vlans=vlans, tpids=tpids)
    elif wrap == "non-ip":
        fields = dict(
            src_mac=fields["src_mac"],
            dst_mac=fields["dst_mac"],
            ethertype=draw(st.sampled_from(NON_IP)),
        )
    return src, dst, Frame(**fields)


# --- Neutron's semantics, independently ----------------------------------------------


def members(scenario: dict, group: str) -> set[ipaddress._BaseAddress]:
    return {
        ipaddress.ip_address(ip)
        for p, (groups, _) in scenario["ports"].items()
        if group in groups
        for ip in PORTS[p][1:]
    }


def rule_matches(rule: model.SecGroupRule, pkt: Frame, remote_ip: str, scenario: dict) -> bool:
    ip = ipaddress.ip_address(remote_ip)
    if (rule.ethertype == "IPv6") != (ip.version == 6):
        return False
    if rule.protocol is not None and rule.protocol != pkt.proto:
        return False
    if rule.protocol in (TCP, UDP) and rule.port_range_min is not None:
        if not rule.port_range_min <= pkt.dst_port <= rule.port_range_max:
            return False
    if rule.protocol in (ICMP, ICMP6) and rule.port_range_min is not None:
        if pkt.icmp_type != rule.port_range_min:
            return False
        if rule.port_range_max is not None and pkt.icmp_code != rule.port_range_max:
            return False
    if rule.remote_ip_prefix is not None:
        return ip in ipaddress.ip_network(rule.remote_ip_prefix)
    if rule.remote_group_id is not None:
        return ip in members(scenario, rule.remote_group_id)
    return True


# Neutron's firewalls let every port with port security act as a DHCP/DHCPv6
# client and take part in IPv6 neighbour and router discovery and MLD, and
# never let it act as a DHCP server or an IPv6 router, whatever its groups say.
def _udp(pkt: Frame, sport: int, dport: int) -> bool:
    return pkt.proto == UDP and pkt.src_port == sport and pkt.dst_port == dport


def implicit(direction: str, pkt: Frame) -> bool | None:
    """True/False when Neutron decides regardless of groups, else None."""
    v6 = ":" in pkt.src_ip
    dhcp_client = _udp(pkt, 546, 547) if v6 else _udp(pkt, 68, 67)
    dhcp_server = _udp(pkt, 547, 546) if v6 else _udp(pkt, 67, 68)
    icmp6 = pkt.icmp_type if v6 and pkt.proto == ICMP6 else None
    if direction == "egress":
        if dhcp_server or icmp6 == 134:
            return False
        if dhcp_client or icmp6 in (130, 131, 132, 133, 135, 136, 143):
            return True
    elif dhcp_server or icmp6 in (130, 134, 135, 136):
        return True
    return None


def side_allows(port: str, direction: str, pkt: Frame, scenario: dict) -> bool:
    groups, security = scenario["ports"][port]
    if not security:
        return True
    decided = implicit(direction, pkt)
    if decided is not None:
        return decided
    remote = pkt.dst_ip if direction == "egress" else pkt.src_ip
    return any(
        rule_matches(r, pkt, remote, scenario)
        for g in groups
        for r in scenario["groups"][g]
        if r.direction == direction
    )


def neutron_allows(src: str, dst: str, pkt: Frame, scenario: dict) -> bool:
    """A packet from port src to port dst: src's egress and dst's ingress must allow it."""
    if pkt.vlans:
        return False  # an access port: a VM's tagged frames are dropped
    if pkt.ethertype not in (0x0800, 0x86DD):
        # Not IP (nor ARP, which this test does not send): only between ports
        # without port security.
        return not scenario["ports"][src][1] and not scenario["ports"][dst][1]
    return side_allows(src, "egress", pkt, scenario) and side_allows(dst, "ingress", pkt, scenario)


def reply_of(pkt: Frame) -> Frame | None:
    if pkt.ethertype not in (0x0800, 0x86DD):
        return None
    if pkt.proto in (TCP, UDP, SCTP):
        return pkt.reply()
    if pkt.proto in ECHO and pkt.icmp_type == ECHO[pkt.proto][0]:
        return pkt.reply(icmp_type=ECHO[pkt.proto][1])
    return None


# --- the rig: one agent for every example ----------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[HostRig, list[int]]]:
    server = EtcdServer()
    server.start()
    from networking_vpp.common.etcd.client import EtcdClient

    etcd = EtcdClient(server.settings())
    rig = HostRig(etcd)
    rig.vpp.auto_connect_vms = True
    rig.start_agent()
    try:
        yield rig, [0]
    finally:
        rig.close()
        server.stop()


def apply(rig: HostRig, gen: list[int], scenario: dict) -> dict[str, int]:
    gen[0] += 1
    etcd = rig.etcd
    for g, rs in scenario["groups"].items():
        etcd.put(KEYS.secgroup(g), model.encode(model.SecurityGroup(g, rs)))
    for g in GROUPS:
        for p in PORTS:
            key = KEYS.remote_group_member(g, p)
            if g in scenario["ports"][p][0]:
                etcd.put(key, model.encode(model.RemoteGroupMember(p, PORTS[p][1:])))
            else:
                etcd.delete(key)
    for p, (groups, security) in scenario["ports"].items():
        mac, ip4, ip6 = PORTS[p]
        rig.put(
            binding(
                p,
                binding_id=f"gen{gen[0]}",
                mac_address=mac,
                fixed_ips=(model.FixedIp(ip4, "s4"), model.FixedIp(ip6, "s6")),
                security_groups=groups,
                port_security_enabled=security,
            )
        )
    agent = rig.agents[0]
    wait_for(
        lambda: all((s := rig.state(p)) and s.binding_id == f"gen{gen[0]}" for p in PORTS),
        what="ports reported for this example",
    )
    wait_for(
        lambda: (
            {g: agent.groups.groups[g].rules for g in GROUPS if g in agent.groups.groups}
            == scenario["groups"]
        ),
        what="groups loaded",
    )
    assert agent.wait_converged(10)
    rig.vpp.sessions.clear()
    return {p: agent.inventory.ports[p].sw_if_index for p in PORTS}


@settings(
    max_examples=int(os.environ.get("ORACLE_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios(), pkts=st.lists(packets(), min_size=1, max_size=12))
def test_vpp_verdicts_equal_neutron_semantics(world, scenario, pkts):
    rig, gen = world
    idx = apply(rig, gen, scenario)
    for src, dst, pkt in pkts:
        # Each packet opens its own flow: the model is stateless but for the
        # reply checked below, so a session an earlier packet left (which would
        # let this one back as its reply, in VPP as in conntrack) must not count.
        rig.vpp.sessions.clear()
        want = neutron_allows(src, dst, pkt, scenario)
        got = rig.vpp.passes(pkt, idx[src], idx[dst])
        assert got == want, (src, dst, pkt, rig.vpp.features.verdicts)
        reply = reply_of(pkt)
        if want and reply is not None:
            # Stateful: the reply gets back, unless it is something the replying
            # port may never send (a DHCP server reply).
            blocked = scenario["ports"][dst][1] and implicit("egress", reply) is False
            assert rig.vpp.passes(reply, idx[dst], idx[src]) == (not blocked), ("reply", reply)
