"""Trusted ports (``network:*`` owners) are never filtered, with or without port_security.

Neutron's rule (``neutron_lib.utils.net.is_port_trusted``): DHCP and router
ports are trusted and get no security groups and no anti-spoofing. ML2 loads
no extension driver by default, so the port dicts then carry no
``port_security_enabled`` at all.
"""

from __future__ import annotations

from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import provider_net as pnet
from neutron_lib.db import api as db_api
from oslo_config import cfg

from networking_vpp.common import keys, model
from networking_vpp.server.journal import models
from tests.unit.server import base

KEYS = keys.KeySpace()
HOST = "compute-1"
TRUSTED = (
    n_const.DEVICE_OWNER_DHCP,
    n_const.DEVICE_OWNER_ROUTER_INTF,
    n_const.DEVICE_OWNER_ROUTER_GW,
    n_const.DEVICE_OWNER_ROUTER_HA_INTF,
)


class _Ports(base.VppTestCase):
    """A VLAN network with a subnet; ports bound to a live host; their journaled values."""

    def setUp(self) -> None:
        super().setUp()
        attrs = {pnet.NETWORK_TYPE: "vlan", pnet.PHYSICAL_NETWORK: "physnet1"}
        net = self._make_network(
            self.fmt, "net", True, as_admin=True, arg_list=tuple(attrs), **attrs
        )
        self._make_subnet(self.fmt, net, "10.0.0.1", "10.0.0.0/24")
        self.net = net["network"]
        self.ctx = n_context.get_admin_context()

    def _port(self, **attrs: object) -> dict:
        attrs[portbindings.HOST_ID] = HOST
        res = self._create_port(
            self.fmt, self.net["id"], arg_list=tuple(attrs), is_admin=True, **attrs
        )
        self.assertEqual(201, res.status_int, res.body)
        return self.deserialize(self.fmt, res)["port"]

    def _update_port(self, port_id: str, **attrs: object) -> dict:
        return self._update("ports", port_id, {"port": attrs}, as_admin=True)["port"]

    def _value(self, port_id: str) -> model.PortBinding:
        """The last value the journal holds for the port's key."""
        key = KEYS.port(HOST, port_id)
        with db_api.CONTEXT_READER.using(self.ctx):
            rows = (
                self.ctx.session.query(models.VppJournal)
                .filter(models.VppJournal.key == key)
                .order_by(models.VppJournal.id)
                .all()
            )
            raw = rows[-1].value
        return model.decode(model.PortBinding, key, raw)


class TestWithoutPortSecurityExtension(_Ports):
    """ML2's default: no extension driver, so no ``port_security_enabled`` on ports."""

    def test_trusted_ports_are_unfiltered(self):
        for owner in TRUSTED:
            port = self._port(device_owner=owner, device_id="r1")
            self.assertNotIn("port_security_enabled", port)
            self.assertIs(False, self._value(port["id"]).port_security_enabled, owner)

    def test_vm_ports_are_filtered(self):
        for owner in ("compute:nova", "", "trunk:subport"):
            port = self._port(device_owner=owner)
            self.assertIs(True, self._value(port["id"]).port_security_enabled, owner)

    def test_port_becoming_a_router_interface_is_no_longer_filtered(self):
        port = self._port(device_owner="")
        self.assertTrue(self._value(port["id"]).port_security_enabled)
        self._update_port(port["id"], device_owner=n_const.DEVICE_OWNER_ROUTER_INTF, device_id="r1")
        self.assertIs(False, self._value(port["id"]).port_security_enabled)


class TestWithPortSecurityExtension(_Ports):
    def setUp(self) -> None:
        cfg.CONF.set_override("extension_drivers", ["port_security"], group="ml2")
        super().setUp()

    def test_trusted_ports_are_unfiltered(self):
        for owner in TRUSTED:
            port = self._port(device_owner=owner, device_id="r1")
            self.assertIs(False, self._value(port["id"]).port_security_enabled, owner)

    def test_explicitly_disabled_port_is_unfiltered(self):
        port = self._port(
            device_owner="compute:nova", port_security_enabled=False, security_groups=[]
        )
        self.assertIs(False, self._value(port["id"]).port_security_enabled)

    def test_trust_wins_over_an_enabled_flag(self):
        # A port made a router interface after creation keeps port_security_enabled
        # True in Neutron's database (the extension decides only at creation), yet
        # Neutron's firewalls skip it as trusted: so do we.
        port = self._port(device_owner="compute:nova")
        self.assertTrue(self._value(port["id"]).port_security_enabled)
        port = self._update_port(
            port["id"], device_owner=n_const.DEVICE_OWNER_ROUTER_INTF, device_id="r1"
        )
        self.assertIs(True, port["port_security_enabled"])
        self.assertIs(False, self._value(port["id"]).port_security_enabled)
