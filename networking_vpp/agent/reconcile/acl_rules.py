"""Security groups compiled into VPP ACL plugin rules (pure functions).

Direction: a VM's traffic *enters* VPP through its port's interface, so a
Neutron **egress** rule becomes a rule of the interface's VPP **input** ACL
(source any, destination the remote), and an **ingress** rule one of its
**output** ACL (source the remote, destination any). Every permit is
stateful (permit+reflect): the reply of an allowed connection gets through.
No rule matching means deny (the ACL plugin's default), as in Neutron.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping

from networking_vpp.agent.vpp.types import (
    ACL_DENY,
    ACL_PERMIT,
    ACL_PERMIT_REFLECT,
    AclRule,
    MacipRule,
)
from networking_vpp.common import model
from networking_vpp.common.addresses import canonical_prefix, link_local

ANY4 = "0.0.0.0/0"
ANY6 = "::/0"
FULL = (0, 65535)
ANY_ICMP = (0, 255)
ICMP_PROTOCOLS = (1, 58)
# VPP's ACL plugin reads L4 ports of TCP and UDP only (acl_fill_5tuple): a
# port range on any other protocol (SCTP, DCCP, UDP-Lite) would never match.
# The server refuses such rules; should one arrive, it is left out (never
# permit more than asked) and logged.
PORT_PROTOCOLS = (6, 17)
UDP, ICMP6 = 17, 58

# Holes every VM needs whatever its groups say (Neutron's firewalls have the
# same): DHCP and DHCPv6 as a client, IPv6 router and neighbour discovery, MLD.
# And, first, what no VM may send whatever its groups say: DHCP/DHCPv6 server
# replies and router advertisements (rogue servers and routers).
ESSENTIAL_INPUT: tuple[AclRule, ...] = (
    AclRule(ACL_DENY, ANY4, ANY4, UDP, (67, 67), (68, 68)),
    AclRule(ACL_DENY, ANY6, ANY6, UDP, (547, 547), (546, 546)),
    AclRule(ACL_DENY, ANY6, ANY6, ICMP6, (134, 134), ANY_ICMP),
    AclRule(ACL_PERMIT_REFLECT, ANY4, ANY4, UDP, (68, 68), (67, 67)),
    AclRule(ACL_PERMIT_REFLECT, ANY6, ANY6, UDP, (546, 546), (547, 547)),
    AclRule(ACL_PERMIT, ANY6, ANY6, ICMP6, (130, 133), ANY_ICMP),  # MLD, RS
    AclRule(ACL_PERMIT, ANY6, ANY6, ICMP6, (135, 136), ANY_ICMP),  # NS, NA
    AclRule(ACL_PERMIT, ANY6, ANY6, ICMP6, (143, 143), ANY_ICMP),  # MLDv2
)
ESSENTIAL_OUTPUT: tuple[AclRule, ...] = (
    AclRule(ACL_PERMIT, ANY4, ANY4, UDP, (67, 67), (68, 68)),
    AclRule(ACL_PERMIT, ANY6, ANY6, UDP, (547, 547), (546, 546)),
    AclRule(ACL_PERMIT, ANY6, ANY6, ICMP6, (130, 130), ANY_ICMP),  # MLD query
    AclRule(ACL_PERMIT, ANY6, ANY6, ICMP6, (134, 136), ANY_ICMP),  # RA, NS, NA
)

LOG = logging.getLogger(__name__)

Members = Mapping[str, Iterable[str]]  # remote group id -> member IPs/prefixes


def group_rules(
    group: model.SecurityGroup | None, direction: str, members: Members
) -> tuple[AclRule, ...]:
    """The VPP rules of one group in one Neutron direction ("ingress"/"egress")."""
    if group is None:
        return ()
    out: dict[AclRule, None] = {}  # ordered and without duplicates
    for rule in group.rules:
        if rule.direction != direction:
            continue
        for rule_out in _expand(rule, members):
            out[rule_out] = None
    return tuple(out)


def _expand(rule: model.SecGroupRule, members: Members) -> Iterable[AclRule]:
    any_ip = ANY4 if rule.ethertype == "IPv4" else ANY6
    if rule.remote_group_id is not None:
        remotes = sorted(
            {
                p
                for p in map(_canonical, members.get(rule.remote_group_id, ()))
                if (":" in p) == (rule.ethertype == "IPv6")
            }
        )
    elif rule.remote_ip_prefix is not None:
        remotes = [_canonical(rule.remote_ip_prefix)]
    else:
        remotes = [any_ip]
    proto = rule.protocol or 0
    if rule.port_range_min is not None and proto not in PORT_PROTOCOLS + ICMP_PROTOCOLS:
        LOG.error("Rule %s: VPP cannot match ports of protocol %d; rule left out", rule, proto)
        return
    sport, dport = _ranges(rule, proto)
    for remote in remotes:
        if rule.direction == "ingress":
            yield AclRule(ACL_PERMIT_REFLECT, remote, any_ip, proto, sport, dport)
        else:
            yield AclRule(ACL_PERMIT_REFLECT, any_ip, remote, proto, sport, dport)


def _ranges(rule: model.SecGroupRule, proto: int) -> tuple[tuple[int, int], tuple[int, int]]:
    if proto in ICMP_PROTOCOLS:
        # ICMP type and code ride in the source/destination port fields.
        icmp_type = rule.port_range_min
        code = rule.port_range_max
        types = ANY_ICMP if icmp_type is None else (icmp_type, icmp_type)
        codes = ANY_ICMP if code is None or icmp_type is None else (code, code)
        return types, codes
    if rule.port_range_min is not None:
        high = rule.port_range_max if rule.port_range_max is not None else rule.port_range_min
        return FULL, (rule.port_range_min, high)
    return FULL, FULL


@functools.lru_cache(maxsize=65536)
def _canonical(prefix: str) -> str:
    return canonical_prefix(prefix)  # cached: remote-group members repeat across groups


def macip_rules(port: model.PortBinding) -> tuple[MacipRule, ...]:
    """Anti-spoofing: the (MAC, source IP) pairs the port may send from."""
    mac = port.mac_address
    mask = "ff:ff:ff:ff:ff:ff"
    pairs: dict[tuple[str, str], None] = {}
    for ip in port.fixed_ips:
        pairs[(mac, _canonical(ip.ip_address))] = None
    pairs[(mac, f"{link_local(mac)}/128")] = None
    for pair in port.allowed_address_pairs:
        pairs[(pair.mac_address or mac, _canonical(pair.ip_address))] = None
    # DHCP DISCOVER and IPv6 duplicate address detection come from no address.
    pairs[(mac, "0.0.0.0/32")] = None
    pairs[(mac, "::/128")] = None
    return tuple(MacipRule(ACL_PERMIT, m, mask, p) for m, p in pairs)
