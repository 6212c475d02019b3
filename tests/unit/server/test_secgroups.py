"""Security groups through the journal, on Neutron's ML2 test base.

ML2 with the ``vpp`` driver, the ``port_security`` extension driver and ML2's
own security group implementation (the SG plugin every ML2 deployment has).
"""

from __future__ import annotations

from unittest import mock

from neutron.objects import securitygroup_default_rules as default_rules
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import events, priority_group, registry, resources
from neutron_lib.db import api as db_api

from networking_vpp.common import model
from networking_vpp.server.journal import api as journal_api
from networking_vpp.server.secgroups import desired_secgroup_state
from networking_vpp.server.secgroups.journal import StatelessGroupNotSupported
from networking_vpp.testing.ml2_drivers import FailingMechanismDriver
from tests.unit.server import test_mech_driver as t

KEYS = t.KEYS
OTHER_PROJECT = "a0000000000000000000000000000002"


class SecGroupTestCase(t.VppDriverTestCase):
    """Helpers over the API; Neutron's default-rule templates installed."""

    def setUp(self) -> None:
        super().setUp()
        # Neutron's API router serves the extensions' collections too
        # (security-group-rules, address-groups); its helpers look for ext_api.
        self.ext_api = self.api
        self._install_default_rule_templates()

    def _install_default_rule_templates(self) -> None:
        # A deployed Neutron gets these from a data migration; the unit-test DB
        # (create_all) has none, so default groups would have no rules.
        ctx = n_context.get_admin_context()
        templates = [
            ("egress", "IPv4", None, True),
            ("egress", "IPv6", None, True),
            ("ingress", "IPv4", "PARENT", False),
            ("ingress", "IPv6", "PARENT", False),
        ]
        for direction, ethertype, remote, non_default in templates:
            default_rules.SecurityGroupDefaultRule(
                ctx,
                direction=direction,
                ethertype=ethertype,
                remote_group_id=remote,
                used_in_default_sg=True,
                used_in_non_default_sg=non_default,
            ).create()

    # --- API helpers ----------------------------------------------------------------
    def _post(self, collection: str, body: dict, expected: int = 201, **kw):
        req = self.new_create_request(collection, body, self.fmt, as_admin=True, **kw)
        res = req.get_response(self.api)
        self.assertEqual(expected, res.status_int, res.body)
        return self.deserialize(self.fmt, res)

    def _group(self, name: str = "web", **kw) -> dict:
        body = {"security_group": {"name": name, "description": "", **kw}}
        return self._post("security-groups", body)["security_group"]

    def _rule(self, sg_id: str, expected: int = 201, **kw) -> dict:
        body = {"security_group_rule": {"security_group_id": sg_id, "direction": "ingress", **kw}}
        out = self._post("security-group-rules", body, expected)
        return out.get("security_group_rule", out)

    def _members(self, rows) -> dict[str, str | None]:
        return {k: v for k, v in rows if "/remote_groups/" in k}

    def _group_value(self, sg_id: str, rows) -> model.SecurityGroup:
        key = KEYS.secgroup(sg_id)
        values = [v for k, v in rows if k == key]
        self.assertTrue(values, f"no row for {key} in {rows}")
        return model.decode(model.SecurityGroup, key, values[-1])

    def _default_group(self, project_id: str) -> dict:
        groups = self._list(
            "security-groups",
            query_params=f"project_id={project_id}&name=default",
            as_admin=True,
        )["security_groups"]
        self.assertEqual(1, len(groups), groups)
        return groups[0]


class TestGroups(SecGroupTestCase):
    def test_create_puts_group_with_template_rules(self):
        self._take_journal(everything=True)
        sg = self._group()
        ((key, raw),) = self._take_journal(everything=True)
        self.assertEqual(KEYS.secgroup(sg["id"]), key)
        value = model.decode(model.SecurityGroup, key, raw)
        self.assertEqual(
            (
                model.SecGroupRule("egress", "IPv4"),
                model.SecGroupRule("egress", "IPv6"),
            ),
            value.rules,
        )

    def test_default_group_reaches_etcd_when_its_project_first_creates_a_network(self):
        self._take_journal(everything=True)
        self._make_network(self.fmt, "theirs", True, project_id=OTHER_PROJECT)
        default = self._default_group(OTHER_PROJECT)
        value = self._group_value(default["id"], self._take_journal(everything=True))
        self.assertEqual(
            {
                model.SecGroupRule("egress", "IPv4"),
                model.SecGroupRule("egress", "IPv6"),
                model.SecGroupRule("ingress", "IPv4", remote_group_id=default["id"]),
                model.SecGroupRule("ingress", "IPv6", remote_group_id=default["id"]),
            },
            set(value.rules),
        )

    def test_default_group_reaches_etcd_when_its_project_first_creates_a_port(self):
        third = "a0000000000000000000000000000003"
        self._take_journal(everything=True)
        port = self._port(host=None, project_id=third)
        default = self._default_group(third)
        rows = self._take_journal(everything=True)
        self.assertEqual(4, len(self._group_value(default["id"], rows).rules))
        self.assertEqual([default["id"]], port["security_groups"])
        self.assertIn(KEYS.remote_group_member(default["id"], port["id"]), self._members(rows))
        # The group's row comes first: it committed before the port's transaction began.
        self.assertEqual(KEYS.secgroup(default["id"]), rows[0][0])

    def test_rule_create_and_delete_rewrite_the_group(self):
        sg = self._group()
        self._take_journal(everything=True)
        rule = self._rule(
            sg["id"], protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id=sg["id"]
        )
        ssh = model.SecGroupRule("ingress", "IPv4", 6, 22, 22, remote_group_id=sg["id"])
        rows = self._take_journal(everything=True)
        self.assertEqual([KEYS.secgroup(sg["id"])], [k for k, _ in rows])
        self.assertIn(ssh, self._group_value(sg["id"], rows).rules)
        self.assertEqual(3, len(self._group_value(sg["id"], rows).rules))

        self._delete("security-group-rules", rule["id"], as_admin=True)
        rows = self._take_journal(everything=True)
        self.assertEqual([KEYS.secgroup(sg["id"])], [k for k, _ in rows])
        self.assertNotIn(ssh, self._group_value(sg["id"], rows).rules)
        self.assertEqual(2, len(self._group_value(sg["id"], rows).rules))

    def test_normalisation_through_the_api(self):
        sg = self._group()
        self._take_journal(everything=True)
        self._rule(sg["id"], ethertype="IPv6", protocol="icmp", port_range_min=128)
        self._rule(sg["id"], protocol="17", port_range_min=53, port_range_max=53)
        self._rule(sg["id"], protocol="tcp", port_range_min=1, port_range_max=65535)
        self._rule(sg["id"], remote_ip_prefix="192.168.7.9/24")
        self._rule(sg["id"], protocol="icmp", port_range_min=8, port_range_max=0)
        rules = set(self._group_value(sg["id"], self._take_journal(everything=True)).rules)
        expected = {
            model.SecGroupRule("ingress", "IPv6", 58, 128, None),
            model.SecGroupRule("ingress", "IPv4", 17, 53, 53),
            model.SecGroupRule("ingress", "IPv4", 6),  # the full range is no range
            model.SecGroupRule("ingress", "IPv4", remote_ip_prefix="192.168.7.0/24"),
            model.SecGroupRule("ingress", "IPv4", 1, 8, 0),
        }
        self.assertLessEqual(expected, rules)

    def test_bulk_rule_create_ends_with_every_rule(self):
        sg = self._group()
        self._take_journal(everything=True)
        body = {
            "security_group_rules": [
                {
                    "security_group_rule": {
                        "security_group_id": sg["id"],
                        "direction": "ingress",
                        "protocol": "tcp",
                        "port_range_min": p,
                        "port_range_max": p,
                    }
                }
                for p in (22, 80, 443)
            ]
        }
        self._post("security-group-rules", body)
        rows = self._take_journal(everything=True)
        self.assertEqual({KEYS.secgroup(sg["id"])}, {k for k, _ in rows})
        ports = {r.port_range_min for r in self._group_value(sg["id"], rows).rules}
        self.assertLessEqual({22, 80, 443}, ports)

    def test_delete_group_deletes_key_and_rewrites_groups_naming_it(self):
        web, admins = self._group("web"), self._group("admins")
        self._rule(
            web["id"],
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_group_id=admins["id"],
        )
        self._take_journal(everything=True)
        self._delete("security-groups", admins["id"], as_admin=True)
        rows = self._take_journal(everything=True)
        self.assertIn((KEYS.secgroup(admins["id"]), None), rows)
        # The database deletes web's rule naming admins (ON DELETE CASCADE): so does etcd.
        value = self._group_value(web["id"], rows)
        self.assertEqual([], [r for r in value.rules if r.remote_group_id])
        remaining = self._show("security-groups", web["id"], as_admin=True)["security_group"]
        self.assertEqual(2, len(remaining["security_group_rules"]))


class TestRefusals(SecGroupTestCase):
    def _assert_refused(self, sg_id: str, message: str, **rule) -> None:
        self._take_journal(everything=True)
        before = self._show("security-groups", sg_id, as_admin=True)["security_group"]
        res = self._rule(sg_id, expected=400, **rule)
        self.assertEqual("RuleNotSupported", res["NeutronError"]["type"])
        self.assertIn(message, res["NeutronError"]["message"])
        self.assertEqual([], self._journal(everything=True))
        after = self._show("security-groups", sg_id, as_admin=True)["security_group"]
        self.assertEqual(before["security_group_rules"], after["security_group_rules"])

    def test_ports_of_protocols_vpp_cannot_match(self):
        sg = self._group()
        for protocol, shown in (
            ("sctp", "sctp (132)"),
            ("dccp", "dccp (33)"),
            ("udplite", "udplite (136)"),
            ("132", "sctp (132)"),
        ):
            with self.subTest(protocol=protocol):
                self._assert_refused(
                    sg["id"],
                    f"VPP's ACL plugin cannot match ports of protocol {shown}",
                    protocol=protocol,
                    port_range_min=5000,
                    port_range_max=5001,
                )

    def test_same_protocols_without_ports_are_fine(self):
        sg = self._group()
        self._take_journal(everything=True)
        self._rule(sg["id"], protocol="sctp")
        rules = self._group_value(sg["id"], self._take_journal(everything=True)).rules
        self.assertIn(model.SecGroupRule("ingress", "IPv4", 132), rules)

    def test_address_groups(self):
        sg = self._group()
        ag = self._post(
            "address-groups",
            {"address_group": {"name": "ag", "addresses": ["10.0.0.0/8"]}},
        )["address_group"]
        self._assert_refused(sg["id"], "address groups", remote_address_group_id=ag["id"])

    def test_bulk_with_one_bad_rule_creates_none(self):
        sg = self._group()
        self._take_journal(everything=True)
        good = {
            "security_group_id": sg["id"],
            "direction": "ingress",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
        }
        bad = dict(good, protocol="sctp")
        body = {"security_group_rules": [{"security_group_rule": r} for r in (good, bad)]}
        res = self._post("security-group-rules", body, expected=400)
        self.assertIn("cannot match ports of protocol sctp", res["NeutronError"]["message"])
        self.assertEqual([], self._journal(everything=True))
        after = self._show("security-groups", sg["id"], as_admin=True)["security_group"]
        self.assertEqual(2, len(after["security_group_rules"]))

    def test_stateless_groups(self):
        self._take_journal(everything=True)
        res = self._post(
            "security-groups",
            {"security_group": {"name": "nostate", "stateful": False}},
            expected=409,
        )
        # The plain message, not Neutron's "Callback ... failed with ..." wrapping.
        self.assertEqual(StatelessGroupNotSupported.message, res["NeutronError"]["message"])
        self.assertEqual("StatelessGroupNotSupported", res["NeutronError"]["type"])
        self.assertEqual([], self._journal(everything=True))
        sg = self._group()
        self._take_journal(everything=True)
        res = self._update(
            "security-groups",
            sg["id"],
            {"security_group": {"stateful": False}},
            expected_code=409,
            as_admin=True,
        )
        self.assertEqual(StatelessGroupNotSupported.message, res["NeutronError"]["message"])
        self.assertTrue(
            self._show("security-groups", sg["id"], as_admin=True)["security_group"]["stateful"]
        )


class TestMembership(SecGroupTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.web = self._group("web")
        self.admins = self._group("admins")
        self._take_journal(everything=True)

    def _member(self, rows, sg_id: str, port_id: str) -> model.RemoteGroupMember | None:
        key = KEYS.remote_group_member(sg_id, port_id)
        raw = self._members(rows)[key]
        return None if raw is None else model.decode(model.RemoteGroupMember, key, raw)

    def test_unbound_port_is_a_member(self):
        port = self._port(host=None, security_groups=[self.web["id"]])
        rows = self._take_journal(everything=True)
        member = self._member(rows, self.web["id"], port["id"])
        self.assertEqual(
            (port["id"], tuple(ip["ip_address"] for ip in port["fixed_ips"])),
            (member.port_id, member.ips),
        )
        self.assertEqual(
            [KEYS.remote_group_member(self.web["id"], port["id"])], [k for k, _ in rows]
        )

    def test_bound_port_member_and_binding_value(self):
        port = self._port(security_groups=[self.web["id"], self.admins["id"]])
        self.assertIs(True, port[portbindings.VIF_DETAILS][portbindings.CAP_PORT_FILTER])
        rows = self._take_journal(everything=True)
        self.assertEqual(
            {
                KEYS.remote_group_member(sg, port["id"])
                for sg in (self.web["id"], self.admins["id"])
            },
            set(self._members(rows)),
        )
        binding = self._value(
            KEYS.port(t.HOST1, port["id"]), dict(rows)[KEYS.port(t.HOST1, port["id"])]
        )
        self.assertEqual(
            tuple(sorted([self.web["id"], self.admins["id"]])), binding.security_groups
        )
        self.assertTrue(binding.port_security_enabled)

    def test_default_group_when_none_given(self):
        port = self._port(host=None)
        (sg_id,) = port["security_groups"]
        rows = self._take_journal(everything=True)
        self.assertIsNotNone(self._member(rows, sg_id, port["id"]))

    def test_group_change_moves_membership(self):
        port = self._port(security_groups=[self.web["id"]])
        self._take_journal(everything=True)
        self._update_port(port["id"], security_groups=[self.admins["id"]])
        rows = self._take_journal(everything=True)
        self.assertIsNone(self._member(rows, self.web["id"], port["id"]))
        self.assertIsNotNone(self._member(rows, self.admins["id"], port["id"]))
        binding = self._value(*[(k, v) for k, v in rows if "/nodes/" in k][0])
        self.assertEqual((self.admins["id"],), binding.security_groups)

    def test_ip_and_address_pair_changes_rewrite_member(self):
        port = self._port(security_groups=[self.web["id"]])
        self._take_journal(everything=True)
        subnet_id = port["fixed_ips"][0]["subnet_id"]
        self._update_port(
            port["id"], fixed_ips=[{"subnet_id": subnet_id, "ip_address": "10.1.0.77"}]
        )
        rows = self._take_journal(everything=True)
        self.assertEqual(("10.1.0.77",), self._member(rows, self.web["id"], port["id"]).ips)
        self._update_port(
            port["id"],
            allowed_address_pairs=[{"ip_address": "10.8.0.0/16"}, {"ip_address": "10.1.0.99"}],
        )
        rows = self._take_journal(everything=True)
        self.assertEqual(
            ("10.1.0.77", "10.1.0.99", "10.8.0.0/16"),
            self._member(rows, self.web["id"], port["id"]).ips,
        )
        binding = self._value(*[(k, v) for k, v in rows if "/nodes/" in k][0])
        self.assertEqual(
            {"10.8.0.0/16", "10.1.0.99"}, {p.ip_address for p in binding.allowed_address_pairs}
        )

    def test_unrelated_update_writes_no_member(self):
        port = self._port(security_groups=[self.web["id"]])
        self._take_journal(everything=True)
        self._update_port(port["id"], name="renamed")
        self.assertEqual({}, self._members(self._journal(everything=True)))

    def test_port_security_off_and_on(self):
        port = self._port(security_groups=[self.web["id"]])
        self._take_journal(everything=True)
        # Neutron: a port without port security has no groups (and no address pairs).
        self._update_port(port["id"], security_groups=[], port_security_enabled=False)
        rows = self._take_journal(everything=True)
        self.assertIsNone(self._member(rows, self.web["id"], port["id"]))
        binding = self._value(*[(k, v) for k, v in rows if "/nodes/" in k][0])
        self.assertEqual((False, ()), (binding.port_security_enabled, binding.security_groups))

        self._update_port(port["id"], port_security_enabled=True, security_groups=[self.web["id"]])
        rows = self._take_journal(everything=True)
        self.assertIsNotNone(self._member(rows, self.web["id"], port["id"]))
        binding = self._value(*[(k, v) for k, v in rows if "/nodes/" in k][0])
        self.assertEqual(
            (True, (self.web["id"],)), (binding.port_security_enabled, binding.security_groups)
        )

    def test_port_created_without_port_security_is_no_member(self):
        self._port(host=None, port_security_enabled=False)
        self.assertEqual({}, self._members(self._journal(everything=True)))

    def test_port_delete_deletes_members(self):
        port = self._port(host=None, security_groups=[self.web["id"], self.admins["id"]])
        self._take_journal(everything=True)
        self._delete("ports", port["id"], as_admin=True)
        self.assertEqual(
            {
                KEYS.remote_group_member(sg, port["id"]): None
                for sg in (self.web["id"], self.admins["id"])
            },
            self._members(self._journal(everything=True)),
        )

    def test_deleting_an_auto_address_subnet_rewrites_members(self):
        v6 = self._make_subnet(
            self.fmt,
            {"network": self.net},
            "2001:db8:1::1",
            "2001:db8:1::/64",
            ip_version=6,
            ipv6_ra_mode="slaac",
            ipv6_address_mode="slaac",
        )["subnet"]
        port = self._port(host=None, security_groups=[self.web["id"]])
        self.assertEqual(2, len(port["fixed_ips"]))
        self._take_journal(everything=True)
        self._delete("subnets", v6["id"], as_admin=True)
        rows = self._take_journal(everything=True)
        v4 = [ip["ip_address"] for ip in port["fixed_ips"] if ":" not in ip["ip_address"]]
        self.assertEqual(tuple(v4), self._member(rows, self.web["id"], port["id"]).ips)


class TestRollback(SecGroupTestCase):
    """A failure later in Neutron's transaction takes our journal rows with it."""

    _mechanism_drivers = ["vpp", "vpp_test_failing"]

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(FailingMechanismDriver.fail_on.clear)
        self.sg = self._group()
        self._take_journal(everything=True)
        # Spy on the journal: our callbacks did write, before the later failure.
        patcher = mock.patch.object(journal_api, "record", wraps=journal_api.record)
        self.record = patcher.start()
        self.addCleanup(patcher.stop)

    def _assert_rolled_back(self) -> None:
        self.assertTrue(self.record.called, "vpp wrote no row: the test proves nothing")
        self.assertEqual([], self._journal(everything=True))

    def _fail_after_us(self, resource: str, event: str) -> None:
        def boom(*args, **kwargs):
            raise RuntimeError("a later precommit failed")

        # Priority: after the vpp callbacks (default priority) of the same event.
        registry.subscribe(boom, resource, event, priority=priority_group.PRIORITY_DEFAULT + 1)
        self.addCleanup(registry.unsubscribe, boom, resource, event)

    def test_rule_create(self):
        self._fail_after_us(resources.SECURITY_GROUP_RULE, events.PRECOMMIT_CREATE)
        self._rule(self.sg["id"], expected=409, protocol="tcp")
        self._assert_rolled_back()
        rules = self._show("security-groups", self.sg["id"], as_admin=True)["security_group"]
        self.assertEqual(2, len(rules["security_group_rules"]))

    def test_group_delete(self):
        self._fail_after_us(resources.SECURITY_GROUP, events.PRECOMMIT_DELETE)
        self._delete("security-groups", self.sg["id"], expected_code=409, as_admin=True)
        self._assert_rolled_back()
        self._show("security-groups", self.sg["id"], as_admin=True)

    def test_port_create(self):
        FailingMechanismDriver.fail_on.add("create_port_precommit")
        res = self._create_port(
            self.fmt,
            self.net["id"],
            security_groups=[self.sg["id"]],
            arg_list=("security_groups",),
            is_admin=True,
        )
        self.assertEqual(500, res.status_int)
        self._assert_rolled_back()

    def test_port_update(self):
        port = self._port(host=None, security_groups=[self.sg["id"]])
        self._take_journal(everything=True)
        self.record.reset_mock()
        FailingMechanismDriver.fail_on.add("update_port_precommit")
        self._update(
            "ports", port["id"], {"port": {"security_groups": []}}, expected_code=500, as_admin=True
        )
        self._assert_rolled_back()
        self.assertEqual([self.sg["id"]], self._show_port(port["id"])["security_groups"])


class TestDesiredState(SecGroupTestCase):
    """The resync's view equals what replaying the journal from an empty etcd gives."""

    def _replay(self) -> dict[str, str]:
        state: dict[str, str] = {}
        for key, value in self._journal(everything=True):
            if "/global/" not in key:
                continue
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        return state

    def test_equals_journal_replay(self):
        web, admins, gone = self._group("web"), self._group("admins"), self._group("gone")
        self._rule(
            web["id"],
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_group_id=admins["id"],
        )
        self._rule(
            web["id"],
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
            remote_group_id=gone["id"],
        )
        icmp = self._rule(admins["id"], protocol="icmp")
        self._delete("security-group-rules", icmp["id"], as_admin=True)
        self._delete("security-groups", gone["id"], as_admin=True)
        self._port(security_groups=[web["id"]])
        moved = self._port(
            host=None,
            security_groups=[admins["id"]],
            allowed_address_pairs=[{"ip_address": "10.9.0.0/24"}],
        )
        self._update_port(moved["id"], security_groups=[web["id"], admins["id"]])
        deleted = self._port(host=t.HOST2)
        self._delete("ports", deleted["id"], as_admin=True)
        self._port(host=None, port_security_enabled=False)
        self._make_network(self.fmt, "theirs", True, project_id=OTHER_PROJECT)

        desired = desired_secgroup_state(self.ctx)
        self.assertEqual(self._replay(), desired)
        self.assertIn(KEYS.remote_group_member(web["id"], moved["id"]), desired)
        self.assertNotIn(KEYS.secgroup(gone["id"]), desired)
        self.assertIn(KEYS.secgroup(self._default_group(OTHER_PROJECT)["id"]), desired)
        self.assertTrue(all(k.startswith(KEYS.global_prefix()) for k in desired))

    def test_reads_inside_a_transaction_too(self):
        self._group("web")
        with db_api.CONTEXT_READER.using(self.ctx):
            self.assertEqual(self._replay(), desired_secgroup_state(self.ctx))

    def test_unexpressible_legacy_rule_is_left_out(self):
        sg = self._group()
        # A rule from before networking-vpp: written behind the API's back.
        from neutron.objects import securitygroup as sg_obj

        sg_obj.SecurityGroupRule(
            self.ctx,
            security_group_id=sg["id"],
            direction="ingress",
            ethertype="IPv4",
            protocol="sctp",
            port_range_min=1,
            port_range_max=2,
            project_id=sg["project_id"],
        ).create()
        with self.assertLogs("networking_vpp.server.secgroups.db", "WARNING") as logs:
            desired = desired_secgroup_state(self.ctx)
        self.assertIn("cannot match ports of protocol sctp", "\n".join(logs.output))
        key = KEYS.secgroup(sg["id"])
        self.assertEqual(2, len(model.decode(model.SecurityGroup, key, desired[key]).rules))
        # The next change of the group writes the same thing (and says so, louder).
        self._take_journal(everything=True)
        self._rule(sg["id"], protocol="udp")
        self.assertEqual(
            3, len(self._group_value(sg["id"], self._take_journal(everything=True)).rules)
        )
