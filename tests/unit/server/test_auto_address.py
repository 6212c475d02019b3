"""IPv6 auto-address subnets (SLAAC, DHCPv6-stateless) through the journal, on ML2's test base.

Creating such a subnet gives every port already on the network an address
(Neutron allocates it, then runs an empty ``update_port`` for each port, whose
``context.original`` already has the address); deleting it takes the address
away in the subnet's delete transaction, without any port update. Both must
reach the port's remote-group member values (what rules naming its groups
match) and its binding value (the agent's MACIP anti-spoofing).
"""

from __future__ import annotations

from unittest import mock

from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings_extended as pbe
from neutron_lib.db import api as db_api

from networking_vpp.common import model
from networking_vpp.server.journal import models
from tests.unit.server import test_mech_driver as t
from tests.unit.server import test_secgroups as tsg

KEYS = t.KEYS


class AutoAddressTestCase(tsg.SecGroupTestCase):
    """Ports in a group on self.net (bound on two hosts, and unbound), then a v6 subnet."""

    ipv6_mode = n_const.IPV6_SLAAC

    def setUp(self) -> None:
        super().setUp()
        self.web = self._group("web")
        self.bound1 = self._port(t.HOST1, security_groups=[self.web["id"]])
        self.bound2 = self._port(t.HOST2, security_groups=[self.web["id"]])
        self.unbound = self._port(host=None, security_groups=[self.web["id"]])
        # Bound, but in no group: its binding value still carries its addresses.
        self.open = self._port(t.HOST1, security_groups=[], port_security_enabled=False)
        self.ports = [self.bound1, self.bound2, self.unbound, self.open]
        self._take_journal(everything=True)

    # --- helpers ------------------------------------------------------------------
    def _add_v6_subnet(self) -> dict:
        return self._make_subnet(
            self.fmt,
            {"network": self.net},
            "2001:db8:1::1",
            "2001:db8:1::/64",
            ip_version=6,
            ipv6_ra_mode=self.ipv6_mode,
            ipv6_address_mode=self.ipv6_mode,
        )["subnet"]

    def _v6(self, port_id: str) -> str:
        """The auto address Neutron gave the port (its only IPv6 fixed IP)."""
        (v6,) = [ip for ip in self._show_port(port_id)["fixed_ips"] if ":" in ip["ip_address"]]
        return v6["ip_address"]

    def _members_ips(self, rows, port_id: str) -> tuple[str, ...]:
        key = KEYS.remote_group_member(self.web["id"], port_id)
        raw = dict(rows).get(key)  # dict(): the last row of each key wins, as in etcd
        self.assertIsNotNone(raw, f"no member row for {port_id} in {rows}")
        return model.decode(model.RemoteGroupMember, key, raw).ips

    def _binding_ips(self, rows, host: str, port_id: str) -> set[str]:
        key = KEYS.port(host, port_id)
        raw = dict(rows).get(key)
        self.assertIsNotNone(raw, f"no binding row for {port_id} in {rows}")
        return {ip.ip_address for ip in self._value(key, raw).fixed_ips}

    def _v4(self, port: dict) -> set[str]:
        return {ip["ip_address"] for ip in port["fixed_ips"]}


class TestSlaac(AutoAddressTestCase):
    def test_adding_the_subnet_rewrites_members_and_bindings(self):
        self._add_v6_subnet()
        rows = self._take_journal(everything=True)
        for port in (self.bound1, self.bound2, self.unbound):
            v6 = self._v6(port["id"])
            self.assertEqual(
                tuple(sorted(self._v4(port) | {v6})),
                tuple(sorted(self._members_ips(rows, port["id"]))),
            )
        for host, port in ((t.HOST1, self.bound1), (t.HOST2, self.bound2), (t.HOST1, self.open)):
            self.assertEqual(
                self._v4(port) | {self._v6(port["id"])},
                self._binding_ips(rows, host, port["id"]),
            )

    def test_the_rewrite_is_in_the_transaction_that_allocates(self):
        # Neutron's empty update_port per port comes in later transactions; a
        # server that dies before them must not leave the addresses unjournaled.
        with mock.patch.object(self.plugin, "update_port") as update_port:
            self._add_v6_subnet()
        self.assertTrue(update_port.called)  # the path skipped is the one Neutron takes
        rows = self._take_journal(everything=True)
        for port in (self.bound1, self.bound2, self.unbound):
            self.assertIn(self._v6(port["id"]), self._members_ips(rows, port["id"]))
        for host, port in ((t.HOST1, self.bound1), (t.HOST2, self.bound2), (t.HOST1, self.open)):
            self.assertIn(self._v6(port["id"]), self._binding_ips(rows, host, port["id"]))

    def test_deleting_the_subnet_rewrites_members_and_bindings(self):
        v6 = self._add_v6_subnet()
        self._take_journal(everything=True)
        self._delete("subnets", v6["id"], as_admin=True)
        rows = self._take_journal(everything=True)
        for port in (self.bound1, self.bound2, self.unbound):
            self.assertEqual(tuple(self._v4(port)), self._members_ips(rows, port["id"]))
        for host, port in ((t.HOST1, self.bound1), (t.HOST2, self.bound2), (t.HOST1, self.open)):
            self.assertEqual(self._v4(port), self._binding_ips(rows, host, port["id"]))
        # The journal's memory of each binding is what it wrote.
        for port in (self.bound1, self.bound2, self.open):
            row = self._binding_row(port["id"])
            assert row is not None
            self.assertEqual(
                self._v4(port),
                {ip.ip_address for ip in self._value("", row.value).fixed_ips},
            )

    def test_after_the_subnet_an_unrelated_update_writes_nothing(self):
        self._add_v6_subnet()
        self._take_journal(everything=True)
        self._update_port(self.bound1["id"], name="renamed")
        self.assertEqual([], self._journal(everything=True))

    def test_members_are_diffed_against_what_was_journaled(self):
        """An address that reached the database without a journal row is journaled by the
        next update of the port, although ML2's ``original`` already has it."""
        with db_api.CONTEXT_WRITER.using(self.ctx):
            self.ctx.session.query(models.VppRemoteGroupMember).filter_by(
                port_id=self.unbound["id"]
            ).update({"value": "stale"})
        self._update_port(self.unbound["id"], name="renamed")
        rows = self._take_journal(everything=True)
        self.assertEqual(tuple(self._v4(self.unbound)), self._members_ips(rows, self.unbound["id"]))


class TestDhcpv6Stateless(TestSlaac):
    ipv6_mode = n_const.DHCPV6_STATELESS


class TestLiveMigrationDestination(AutoAddressTestCase):
    """A port prepared on a destination host: that host's value follows the addresses too."""

    def test_destination_value_follows_the_subnet(self):
        port = self._port(t.HOST1, device_owner="compute:nova", device_id="vm-1")
        self.plugin.create_port_binding(
            self.ctx, port["id"], {pbe.RESOURCE_NAME: {pbe.HOST: t.HOST2}}
        )
        v6 = self._add_v6_subnet()
        rows = self._take_journal()
        address = self._v6(port["id"])
        for host in (t.HOST1, t.HOST2):
            self.assertEqual(self._v4(port) | {address}, self._binding_ips(rows, host, port["id"]))
        self._delete("subnets", v6["id"], as_admin=True)
        rows = self._take_journal()
        for host in (t.HOST1, t.HOST2):
            self.assertEqual(self._v4(port), self._binding_ips(rows, host, port["id"]))
