"""No HA routers (issue 13 item 7): refused at the API, their replicated
interfaces not bound, on Neutron's ML2 and L3 test base.

An HA router's interface (``network:ha_router_replicated_interface``) has a
distributed binding, one per host whose L3 agent hosts the router, and each of
those agents plugs the device; networking-vpp keeps one key per port and would
wire only one of them (server/routers.py).
"""

from __future__ import annotations

import logging

from neutron.plugins.ml2 import db as ml2_db
from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import provider_net as pnet
from neutron_lib.db import api as db_api
from neutron_lib.plugins import directory
from oslo_config import cfg

from networking_vpp.common import keys
from networking_vpp.server.journal import models
from tests.unit.server import base

KEYS = keys.KeySpace()
HOSTS = ("compute-1", "compute-2")
ROUTER_ID = "5b0b2f9b-9f6d-4e7d-8a4f-8e1d3c2b6f02"


class TestHaRouters(base.VppTestCase):
    """Neutron's own L3 plugin, with its 'l3-ha' API extension."""

    l3_plugin = "neutron.services.l3_router.l3_router_plugin.L3RouterPlugin"

    def get_additional_service_plugins(self) -> dict[str, str]:
        return {"flavors": "flavors"}  # the L3 plugin's router flavors need it

    def setUp(self) -> None:
        super().setUp()
        self.ext_api = self.api

    def _create(self, **attrs: object):
        body = {"router": {"name": "r", "project_id": self._project_id, **attrs}}
        req = self.new_create_request("routers", body, self.fmt, as_admin=True)
        return req.get_response(self.ext_api)

    def test_ha_router_refused_with_the_reason(self):
        res = self._create(ha=True)
        self.assertEqual(400, res.status_int, res.body)
        self.assertIn("networking-vpp does not implement HA routers", res.text)
        self.assertIn("ha=False", res.text)

    def test_l3_ha_default_refused_with_the_fix(self):
        cfg.CONF.set_override("l3_ha", True)
        res = self._create()
        self.assertEqual(400, res.status_int, res.body)
        self.assertIn("l3_ha = False", res.text)
        # An explicit ha=False still works under that default.
        res = self._create(ha=False)
        self.assertEqual(201, res.status_int, res.body)
        self.assertIs(False, self.deserialize(self.fmt, res)["router"]["ha"])

    def test_legacy_router_created(self):
        res = self._create()
        self.assertEqual(201, res.status_int, res.body)
        self.assertIs(False, self.deserialize(self.fmt, res)["router"]["ha"])

    def test_update_to_ha_refused(self):
        router = self.deserialize(self.fmt, self._create(admin_state_up=False))["router"]
        res = self._update(
            "routers", router["id"], {"router": {"ha": True}}, expected_code=400, as_admin=True
        )
        self.assertIn("does not implement HA routers", str(res))
        self.assertIs(False, self._show("routers", router["id"], as_admin=True)["router"]["ha"])


class TestReplicatedInterfaces(base.VppTestCase):
    """A replicated interface left from before the driver: bound on no host."""

    def setUp(self) -> None:
        super().setUp()
        attrs = {pnet.NETWORK_TYPE: "vlan", pnet.PHYSICAL_NETWORK: "physnet1"}
        net = self._make_network(
            self.fmt, "net", True, as_admin=True, arg_list=tuple(attrs), **attrs
        )
        self._make_subnet(self.fmt, net, "10.0.0.1", "10.0.0.0/24")
        self.net = net["network"]
        self.ctx = n_context.get_admin_context()

    def test_replicated_interface_is_not_bound_on_any_host(self):
        port = self._make_port(
            self.fmt,
            self.net["id"],
            device_owner=n_const.DEVICE_OWNER_HA_REPLICATED_INT,
            device_id=ROUTER_ID,
            as_admin=True,
        )["port"]
        plugin = directory.get_plugin()
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            for host in HOSTS:
                # What the L3 agents' RPC does on each host that hosts an HA router.
                plugin.update_distributed_port_binding(
                    self.ctx,
                    port["id"],
                    {"port": {portbindings.HOST_ID: host, "device_id": ROUTER_ID}},
                )
        with db_api.CONTEXT_READER.using(self.ctx):
            rows = self.ctx.session.query(models.VppJournal).all()
            self.assertEqual([], [r.key for r in rows if r.key.startswith(KEYS.nodes_prefix())])
        for host in HOSTS:
            per_host = ml2_db.get_distributed_port_binding_by_host(self.ctx, port["id"], host)
            # ML2 leaves it unbound or failed, never bound (no tap, no key).
            self.assertIn(
                per_host.vif_type,
                (portbindings.VIF_TYPE_BINDING_FAILED, portbindings.VIF_TYPE_UNBOUND),
                host,
            )
        self.assertIn("HA (replicated interface) router port", "\n".join(logs.output))
