"""Neutron security group data -> etcd values (pure functions, no database).

Shared by the journal (precommit callbacks) and by :func:`desired_secgroup_state`
(the resync), so both always compute byte-identical values from the same rows:

* :func:`rule_value` normalises one Neutron rule into a
  :class:`~networking_vpp.common.model.SecGroupRule`, or raises
  :class:`RuleNotSupported` when VPP's ACL plugin cannot express it;
* :func:`group_value` builds ``/global/secgroups/<sg_id>`` from all the rules
  of a group;
* :func:`member_value` builds ``/global/remote_groups/<sg_id>/<port_id>``
  from a port (its fixed IPs and allowed-address-pair prefixes).

Rules and members are sorted and deduplicated: the same data always encodes
to the same string, whatever order the database returned it in.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from neutron_lib import constants as n_const
from neutron_lib import exceptions as n_exc

from networking_vpp.common import model

LOG = logging.getLogger(__name__)

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
# VPP's ACL plugin reads L4 ports of TCP and UDP only, and ICMP type/code
# (carried in port_range_min/max) of ICMP and ICMPv6. A port range on any
# other protocol (SCTP, DCCP, UDP-Lite, which Neutron accepts) never matches.
PORT_PROTOCOLS = (TCP, UDP)
ICMP_PROTOCOLS = (ICMP, ICMPV6)


class RuleNotSupported(n_exc.BadRequest):
    """A security group rule networking-vpp cannot program; the API answers 400."""

    message = "Security group rule not supported by networking-vpp: %(reason)s."


class ValueNotServable(n_exc.BadRequest):
    """A group or member value etcd could not take (schema, size); the API answers 400."""

    message = "networking-vpp cannot store this in etcd: %(reason)s."


def protocol_number(protocol: str | int | None, ethertype: str) -> int | None:
    """Neutron's protocol (name, number or number as text) as an IP protocol number.

    None and 'any' mean any protocol (None). So does 0: VPP's ACL plugin
    reads protocol 0 as "any" (and iptables' ``-p 0`` is "all" too), so it
    cannot mean IPv6 hop-by-hop options there. With ethertype IPv6, ICMP
    (by name or as 1) is ICMPv6 (58), as Neutron canonicalises it on create.

    Raises ValueError for a name Neutron does not know or a number out of 0..255.
    """
    if protocol is None:
        return None
    text = str(protocol).strip().lower()
    if text in ("", "any"):
        return None
    if text.isdigit():
        number = int(text)
    elif text in n_const.IP_PROTOCOL_MAP:
        number = n_const.IP_PROTOCOL_MAP[text]
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    if not 0 <= number <= 255:
        raise ValueError(f"protocol {number} out of range 0..255")
    if number == 0:
        return None
    if ethertype == n_const.IPv6 and number == ICMP:
        return ICMPV6
    return number


def _protocol_name(number: int) -> str:
    names = [n for n, v in n_const.IP_PROTOCOL_MAP.items() if v == number and n != "ip"]
    return f"{names[0]} ({number})" if names else str(number)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def rule_value(rule: Mapping[str, Any]) -> model.SecGroupRule:
    """One Neutron rule (API dict, callback dict or DB row mapping) as our schema.

    Raises :class:`RuleNotSupported` with the reason when VPP cannot express
    the rule or the result fails the schema's own check.
    """
    ethertype = rule.get("ethertype") or n_const.IPv4
    try:
        protocol = protocol_number(rule.get("protocol"), ethertype)
    except ValueError as exc:
        raise RuleNotSupported(reason=str(exc)) from None
    if rule.get("remote_address_group_id"):
        raise RuleNotSupported(
            reason="networking-vpp does not implement address groups "
            "(remote_address_group_id); use remote_ip_prefix or remote_group_id"
        )
    port_min = _int_or_none(rule.get("port_range_min"))
    port_max = _int_or_none(rule.get("port_range_max"))
    has_ports = port_min is not None or port_max is not None
    if has_ports and protocol not in PORT_PROTOCOLS + ICMP_PROTOCOLS:
        what = "any protocol" if protocol is None else f"protocol {_protocol_name(protocol)}"
        raise RuleNotSupported(
            reason=f"VPP's ACL plugin cannot match ports of {what}; it matches ports of "
            "TCP and UDP only (and ICMP type/code)"
        )
    prefix = rule.get("remote_ip_prefix")
    if prefix is not None:
        try:
            prefix = str(ipaddress.ip_network(str(prefix), strict=False))
        except ValueError as exc:
            raise RuleNotSupported(reason=f"remote_ip_prefix: {exc}") from None
    value = model.SecGroupRule(
        direction=rule["direction"],
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=port_min,
        port_range_max=port_max,
        remote_ip_prefix=prefix,
        remote_group_id=rule.get("remote_group_id") or None,
    )
    if value.direction not in ("ingress", "egress") or value.ethertype not in ("IPv4", "IPv6"):
        raise RuleNotSupported(
            reason=f"direction {value.direction!r} / ethertype {value.ethertype!r} unknown"
        )
    problem = value.check()
    if problem:
        raise RuleNotSupported(reason=problem)
    return value


def _rule_key(rule: model.SecGroupRule) -> tuple[tuple[bool, Any], ...]:
    """Sorting and deduplication key: the fields in schema order, None first."""
    fields = (
        rule.direction,
        rule.ethertype,
        rule.protocol,
        rule.port_range_min,
        rule.port_range_max,
        rule.remote_ip_prefix,
        rule.remote_group_id,
    )
    return tuple((v is not None, v) for v in fields)


def group_value(
    sg_id: str, rules: Iterable[Mapping[str, Any]]
) -> tuple[model.SecurityGroup, list[str]]:
    """``/global/secgroups/<sg_id>`` from every rule of the group, both directions.

    Returns the value and what was left out: a rule that cannot be expressed
    (one created before networking-vpp was installed, or from a default-rule
    template, neither of which passed through our API check) is left out, so
    the group permits less than Neutron says, never more. The caller logs it.
    """
    built: dict[tuple[tuple[bool, Any], ...], model.SecGroupRule] = {}
    skipped = []
    for rule in rules:
        try:
            value = rule_value(rule)
        except RuleNotSupported as exc:
            skipped.append(f"rule {rule.get('id', '?')}: {exc}")
            continue
        built.setdefault(_rule_key(value), value)
    ordered = tuple(built[k] for k in sorted(built))
    return model.SecurityGroup(sg_id=sg_id, rules=ordered), skipped


def _address(text: str) -> tuple[int, int, int, str]:
    net = ipaddress.ip_network(text, strict=False)
    # A single address reads as an address, not as a /32 or /128.
    shown = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
    return net.version, int(net.network_address), net.prefixlen, shown


def member_value(port: Mapping[str, Any]) -> model.RemoteGroupMember:
    """``/global/remote_groups/<sg>/<port_id>``: what rules naming the group match.

    ``port`` needs ``id``, ``fixed_ips`` and ``allowed_address_pairs`` as in
    Neutron's port dict (each entry with an ``ip_address``).
    """
    entries = [ip["ip_address"] for ip in port.get("fixed_ips") or ()]
    entries += [pair["ip_address"] for pair in port.get("allowed_address_pairs") or ()]
    ordered = sorted({_address(str(e)) for e in entries})
    return model.RemoteGroupMember(port_id=port["id"], ips=tuple(a[3] for a in ordered))


def memberships(port: Mapping[str, Any]) -> dict[str, model.RemoteGroupMember]:
    """The port's member value in each of its security groups (Neutron: every port
    in a group is a member, bound or not, whatever its host)."""
    groups = port.get("security_groups") or ()
    if not groups:
        return {}
    value = member_value(port)
    return {sg_id: value for sg_id in groups}


def encode(key: str, value: model.SecurityGroup | model.RemoteGroupMember) -> str:
    """The checked, encoded value; ValueNotServable if etcd could never take it."""
    problem = value.check()
    if problem:
        raise ValueNotServable(reason=f"{key}: {problem}")
    encoded = model.encode(value)
    if len(encoded.encode()) > model.MAX_VALUE_BYTES:
        raise ValueNotServable(
            reason=f"{key}: value is {len(encoded)} bytes, over etcd's limit of "
            f"{model.MAX_VALUE_BYTES} (too many rules, IPs or address pairs?)"
        )
    return encoded
