"""No DVR: distributed router ports are not bound, distributed routers are refused.

A distributed port has one binding per host, while the journal keeps one key
per port: a second host's binding would delete the first host's key.
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
HOST1, HOST2 = "compute-1", "compute-2"
ROUTER_ID = "4a9a1e8a-8f5c-4d6c-9f3e-7d0c2b1a5e01"


class TestDistributedPorts(base.VppTestCase):
    def setUp(self) -> None:
        super().setUp()
        attrs = {pnet.NETWORK_TYPE: "vlan", pnet.PHYSICAL_NETWORK: "physnet1"}
        net = self._make_network(
            self.fmt, "net", True, as_admin=True, arg_list=tuple(attrs), **attrs
        )
        self._make_subnet(self.fmt, net, "10.0.0.1", "10.0.0.0/24")
        self.net = net["network"]
        self.ctx = n_context.get_admin_context()

    def _node_rows(self) -> list[str]:
        with db_api.CONTEXT_READER.using(self.ctx):
            rows = self.ctx.session.query(models.VppJournal).all()
            return [r.key for r in rows if r.key.startswith(KEYS.nodes_prefix())]

    def test_distributed_port_is_not_bound_on_any_host(self):
        port = self._make_port(
            self.fmt,
            self.net["id"],
            device_owner=n_const.DEVICE_OWNER_DVR_INTERFACE,
            device_id=ROUTER_ID,
            as_admin=True,
        )["port"]
        plugin = directory.get_plugin()
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            for host in (HOST1, HOST2):
                # What the L3 agents' RPC does on each host that hosts the router.
                plugin.update_distributed_port_binding(
                    self.ctx,
                    port["id"],
                    {"port": {portbindings.HOST_ID: host, "device_id": ROUTER_ID}},
                )
        self.assertEqual([], self._node_rows())
        for host in (HOST1, HOST2):
            per_host = ml2_db.get_distributed_port_binding_by_host(self.ctx, port["id"], host)
            self.assertEqual(portbindings.VIF_TYPE_BINDING_FAILED, per_host.vif_type, host)
        output = "\n".join(logs.output)
        self.assertIn(f"not binding port {port['id']} on {HOST1}", output)
        self.assertIn("distributed (DVR) router port", output)

    def test_centralized_router_port_is_bound(self):
        res = self._create_port(
            self.fmt,
            self.net["id"],
            arg_list=(portbindings.HOST_ID,),
            is_admin=True,
            device_owner=n_const.DEVICE_OWNER_ROUTER_INTF,
            device_id=ROUTER_ID,
            **{portbindings.HOST_ID: HOST1},
        )
        port = self.deserialize(self.fmt, res)["port"]
        self.assertEqual(portbindings.VIF_TYPE_TAP, port[portbindings.VIF_TYPE])
        self.assertEqual([KEYS.port(HOST1, port["id"])], self._node_rows())


class TestDistributedRouters(base.VppTestCase):
    """Neutron's own L3 plugin, with its 'dvr' API extension."""

    l3_plugin = "neutron.services.l3_router.l3_router_plugin.L3RouterPlugin"

    def get_additional_service_plugins(self) -> dict[str, str]:
        return {"flavors": "flavors"}  # the L3 plugin's router flavors need it

    def setUp(self) -> None:
        super().setUp()
        self.ext_api = self.api  # the API router serves routers too; _update looks here

    def _create(self, **attrs: object):
        body = {"router": {"name": "r", "project_id": self._project_id, **attrs}}
        req = self.new_create_request("routers", body, self.fmt, as_admin=True)
        return req.get_response(self.ext_api)

    def test_distributed_router_refused(self):
        res = self._create(distributed=True)
        self.assertEqual(400, res.status_int, res.body)
        self.assertIn("does not implement distributed (DVR) routers", res.text)

    def test_centralized_router_created(self):
        res = self._create()
        self.assertEqual(201, res.status_int, res.body)
        self.assertIs(False, self.deserialize(self.fmt, res)["router"]["distributed"])
        res = self._create(distributed=False)
        self.assertEqual(201, res.status_int, res.body)

    def test_router_distributed_default_refused_with_the_fix(self):
        cfg.CONF.set_override("router_distributed", True)
        res = self._create()
        self.assertEqual(400, res.status_int, res.body)
        self.assertIn("router_distributed = False", res.text)
        # An explicit distributed=False still works under that default.
        self.assertEqual(201, self._create(distributed=False).status_int)

    def test_update_to_distributed_refused(self):
        res = self._create(admin_state_up=False)
        router = self.deserialize(self.fmt, res)["router"]
        res = self._update(
            "routers",
            router["id"],
            {"router": {"distributed": True}},
            expected_code=400,
            as_admin=True,
        )
        self.assertIn("does not implement distributed (DVR) routers", str(res))
        shown = self._show("routers", router["id"], as_admin=True)["router"]
        self.assertIs(False, shown["distributed"])
