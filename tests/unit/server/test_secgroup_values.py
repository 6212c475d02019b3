"""Neutron security group data -> etcd values: normalisation and refusals (no database)."""

from __future__ import annotations

import unittest

from networking_vpp.common import model
from networking_vpp.server.secgroups import values


def rule(**kw):
    base = {"direction": "ingress", "ethertype": "IPv4", "protocol": None}
    base.update(kw)
    return base


class TestProtocolNumber(unittest.TestCase):
    TABLE = [
        # (protocol as Neutron holds it, ethertype, expected)
        ("tcp", "IPv4", 6),
        ("udp", "IPv4", 17),
        ("icmp", "IPv4", 1),
        ("icmp", "IPv6", 58),
        ("1", "IPv6", 58),
        ("icmpv6", "IPv6", 58),
        ("ipv6-icmp", "IPv6", 58),
        ("58", "IPv6", 58),
        ("sctp", "IPv4", 132),
        ("dccp", "IPv4", 33),
        ("udplite", "IPv4", 136),
        ("gre", "IPv4", 47),
        ("vrrp", "IPv6", 112),
        ("6", "IPv4", 6),
        ("132", "IPv6", 132),
        (6, "IPv4", 6),
        ("TCP", "IPv4", 6),
        ("any", "IPv4", None),
        (None, "IPv6", None),
        ("0", "IPv4", None),  # VPP: protocol 0 in an ACL rule is "any"
        ("ip", "IPv4", None),
        ("255", "IPv4", 255),
    ]

    def test_table(self):
        for protocol, ethertype, expected in self.TABLE:
            with self.subTest(protocol=protocol, ethertype=ethertype):
                self.assertEqual(expected, values.protocol_number(protocol, ethertype))

    def test_unknown(self):
        for bad in ("bogus", "256", "-1"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                values.protocol_number(bad, "IPv4")


class TestRuleValue(unittest.TestCase):
    def test_tcp_port_range_kept(self):
        value = values.rule_value(rule(protocol="tcp", port_range_min=22, port_range_max=23))
        self.assertEqual((6, 22, 23), (value.protocol, value.port_range_min, value.port_range_max))

    def test_icmp_type_and_code(self):
        value = values.rule_value(
            rule(ethertype="IPv6", protocol="icmp", port_range_min=128, port_range_max=0)
        )
        self.assertEqual((58, 128, 0), (value.protocol, value.port_range_min, value.port_range_max))

    def test_remote_ip_prefix_normalised(self):
        self.assertEqual(
            "10.0.0.0/24",
            values.rule_value(rule(remote_ip_prefix="10.0.0.5/24")).remote_ip_prefix,
        )
        self.assertEqual(
            "2001:db8::/64",
            values.rule_value(
                rule(ethertype="IPv6", remote_ip_prefix="2001:DB8::1/64")
            ).remote_ip_prefix,
        )

    def test_remote_group_and_egress(self):
        value = values.rule_value(rule(direction="egress", remote_group_id="sg-1"))
        self.assertEqual(model.SecGroupRule("egress", "IPv4", remote_group_id="sg-1"), value)

    def test_ports_of_other_protocols_refused(self):
        for protocol, name in (("sctp", "sctp (132)"), ("dccp", "dccp (33)"), ("136", "udplite")):
            with self.subTest(protocol=protocol):
                with self.assertRaises(values.RuleNotSupported) as caught:
                    values.rule_value(rule(protocol=protocol, port_range_min=1, port_range_max=2))
                message = str(caught.exception)
                self.assertIn("VPP's ACL plugin cannot match ports of protocol", message)
                self.assertIn(name, message)

    def test_address_groups_refused(self):
        with self.assertRaises(values.RuleNotSupported) as caught:
            values.rule_value(rule(remote_address_group_id="ag-1"))
        self.assertIn("address groups", str(caught.exception))

    def test_schema_check_refusals(self):
        cases = [
            (rule(remote_ip_prefix="10.0.0.0/8", ethertype="IPv6"), "is not IPv6"),
            (rule(remote_ip_prefix="10.0.0.0/8", remote_group_id="sg"), "exclusive"),
            (rule(protocol="icmp", port_range_min=300), "out of range 0..255"),
            (rule(protocol="tcp", port_range_min=30, port_range_max=20), "is empty"),
        ]
        for data, reason in cases:
            with self.subTest(reason=reason):
                with self.assertRaises(values.RuleNotSupported) as caught:
                    values.rule_value(data)
                self.assertIn(reason, str(caught.exception))


class TestGroupValue(unittest.TestCase):
    def test_sorted_deduplicated_and_unsupported_left_out(self):
        rules = [
            rule(id="r1", direction="egress"),
            rule(id="r2", protocol="tcp", port_range_min=22, port_range_max=22),
            rule(id="r3", protocol="icmp", ethertype="IPv6"),
            rule(id="r4", protocol="58", ethertype="IPv6"),  # the same as r3
            rule(id="r5", protocol="sctp", port_range_min=5, port_range_max=5),
        ]
        group, skipped = values.group_value("sg", rules)
        forward, _ = values.group_value("sg", list(reversed(rules)))
        self.assertEqual(model.encode(group), model.encode(forward))
        self.assertEqual(
            [("egress", "IPv4", None), ("ingress", "IPv4", 6), ("ingress", "IPv6", 58)],
            [(r.direction, r.ethertype, r.protocol) for r in group.rules],
        )
        self.assertEqual(1, len(skipped))
        self.assertIn("rule r5", skipped[0])


class TestMemberValue(unittest.TestCase):
    def test_fixed_ips_and_pairs_sorted_and_deduplicated(self):
        port = {
            "id": "p",
            "security_groups": ["a", "b"],
            "fixed_ips": [{"ip_address": "10.0.0.9"}, {"ip_address": "2001:db8::5"}],
            "allowed_address_pairs": [
                {"ip_address": "10.1.0.0/16"},
                {"ip_address": "10.0.0.9/32", "mac_address": "fa:16:3e:00:00:01"},
                {"ip_address": "10.0.0.10"},
            ],
        }
        member = values.member_value(port)
        self.assertEqual(("10.0.0.9", "10.0.0.10", "10.1.0.0/16", "2001:db8::5"), member.ips)
        self.assertEqual({"a": member, "b": member}, values.memberships(port))
        self.assertEqual({}, values.memberships(dict(port, security_groups=[])))

    def test_encode_checks(self):
        bad = model.RemoteGroupMember("p", ("not-an-ip",))
        with self.assertRaises(values.ValueNotServable):
            values.encode("/k", bad)
