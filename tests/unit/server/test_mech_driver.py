"""The vpp driver on Neutron's ML2 test base: binding, journal rows, provisioning, state."""

from __future__ import annotations

import logging
import time
from unittest import mock

from neutron.db import provisioning_blocks
from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import provider_net as pnet
from neutron_lib.callbacks import resources
from neutron_lib.db import api as db_api
from neutron_lib.plugins import directory
from oslo_config import cfg

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.stream import Event
from networking_vpp.server import agents
from networking_vpp.server.journal import api as journal_api
from networking_vpp.server.journal import models
from networking_vpp.server.state import PROVISIONING_ENTITY, StateHandler
from tests.unit.server import base

KEYS = keys.KeySpace()
HOST1, HOST2, DEAD = "compute-1", "compute-2", "compute-dead"


class VppDriverTestCase(base.VppTestCase):
    """A VLAN network on physnet1 and two live hosts."""

    all_hosts_alive = False

    def setUp(self) -> None:
        # port_security_enabled is part of the binding value.
        cfg.CONF.set_override("extension_drivers", ["port_security"], group="ml2")
        super().setUp()
        self.mech.hosts.set_host(HOST1, True, ["physnet1", "physnet2"])
        self.mech.hosts.set_host(HOST2, True, ["physnet1"])
        self.mech.hosts.set_host(DEAD, False, ["physnet1"])
        self.net = self._net("vlan", "physnet1", 42)
        self.ctx = n_context.get_admin_context()

    # --- helpers ------------------------------------------------------------------
    def _net(self, net_type: str, physnet: str | None, seg_id: int | None, **kw) -> dict:
        attrs = {pnet.NETWORK_TYPE: net_type}
        if physnet:
            attrs[pnet.PHYSICAL_NETWORK] = physnet
        if seg_id is not None:
            attrs[pnet.SEGMENTATION_ID] = seg_id
        attrs.update(kw)
        n = self._nets = getattr(self, "_nets", 0) + 1
        net = self._make_network(
            self.fmt, "net", True, as_admin=True, arg_list=tuple(attrs), **attrs
        )
        self._make_subnet(self.fmt, net, f"10.{n}.0.1", f"10.{n}.0.0/24")
        return net["network"]

    def _port(self, host: str | None = HOST1, net: dict | None = None, **kw) -> dict:
        attrs = dict(kw)
        if host is not None:
            attrs[portbindings.HOST_ID] = host
        res = self._create_port(
            self.fmt, (net or self.net)["id"], arg_list=tuple(attrs), is_admin=True, **attrs
        )
        self.assertEqual(201, res.status_int, res.body)
        return self.deserialize(self.fmt, res)["port"]

    def _update_port(self, port_id: str, **attrs) -> dict:
        return self._update("ports", port_id, {"port": attrs}, as_admin=True)["port"]

    def _show_port(self, port_id: str) -> dict:
        return self._show("ports", port_id, as_admin=True)["port"]

    def _journal(self, everything: bool = False) -> list[tuple[str, str | None]]:
        """Journal rows in order: the port bindings' only, unless ``everything``.

        Ports are in security groups (the project's default one unless told
        otherwise), so most port changes journal /global/ rows too; the tests
        of this module are about the bindings (test_secgroups has the rest).
        """
        with db_api.CONTEXT_READER.using(self.ctx):
            rows = self.ctx.session.query(models.VppJournal).order_by(models.VppJournal.id)
            out = [(r.key, r.value) for r in rows]
        return out if everything else [r for r in out if r[0].startswith(KEYS.nodes_prefix())]

    def _take_journal(self, everything: bool = False) -> list[tuple[str, str | None]]:
        """Empty the journal; returns what :meth:`_journal` would have."""
        rows = self._journal(everything)
        with db_api.CONTEXT_WRITER.using(self.ctx):
            self.ctx.session.query(models.VppJournal).delete()
        return rows

    def _binding_row(self, port_id: str) -> models.VppPortBinding | None:
        with db_api.CONTEXT_READER.using(self.ctx):
            return self.ctx.session.get(models.VppPortBinding, port_id)

    def _value(self, key: str, raw: str | None) -> model.PortBinding:
        return model.decode(model.PortBinding, key, raw)


class TestBinding(VppDriverTestCase):
    def test_vhostuser_binding(self):
        port = self._port(device_owner="compute:nova")
        self.assertEqual(portbindings.VIF_TYPE_VHOST_USER, port[portbindings.VIF_TYPE])
        details = port[portbindings.VIF_DETAILS]
        self.assertEqual(
            f"{base.SOCKET_DIR}/vhu{port['id'][:11]}", details[portbindings.VHOST_USER_SOCKET]
        )
        # QEMU (whose role Nova reads) is the socket server by default; VPP the client.
        self.assertEqual(portbindings.VHOST_USER_MODE_SERVER, details[portbindings.VHOST_USER_MODE])
        self.assertIs(False, details[portbindings.VHOST_USER_OVS_PLUG])
        self.assertIs(True, details[portbindings.CAP_PORT_FILTER])  # the agent filters
        self.assertEqual(
            portbindings.CONNECTIVITY_L2, details[portbindings.VIF_DETAILS_CONNECTIVITY]
        )
        self.assertEqual(n_const.PORT_STATUS_DOWN, port["status"])

    def test_vpp_as_vhostuser_server_makes_qemu_client(self):
        cfg.CONF.set_override("vpp_vhostuser_role", "server", group="ml2_vpp")
        self.mech.initialize()
        self.mech.hosts.set_host(HOST1, True, ["physnet1"])
        port = self._port()
        self.assertEqual(
            portbindings.VHOST_USER_MODE_CLIENT,
            port[portbindings.VIF_DETAILS][portbindings.VHOST_USER_MODE],
        )
        ((key, raw),) = self._journal()
        self.assertEqual("server", self._value(key, raw).vhostuser.mode)

    def test_tap_for_network_device_owners(self):
        port = self._port(device_owner=n_const.DEVICE_OWNER_DHCP)
        self.assertEqual(portbindings.VIF_TYPE_TAP, port[portbindings.VIF_TYPE])
        self.assertNotIn(portbindings.VHOST_USER_SOCKET, port[portbindings.VIF_DETAILS])
        ((key, raw),) = self._journal()
        value = self._value(key, raw)
        self.assertEqual("tap", value.binding_type)
        self.assertEqual("tap" + port["id"][:11], value.tap.ifname)

    def test_tap_hosts_option(self):
        cfg.CONF.set_override("tap_hosts", [HOST2], group="ml2_vpp")
        self.mech.initialize()
        self.mech.hosts.set_host(HOST1, True, ["physnet1"])
        self.mech.hosts.set_host(HOST2, True, ["physnet1"])
        self.assertEqual(portbindings.VIF_TYPE_TAP, self._port(host=HOST2)[portbindings.VIF_TYPE])
        self.assertEqual(
            portbindings.VIF_TYPE_VHOST_USER, self._port(host=HOST1)[portbindings.VIF_TYPE]
        )

    def test_flat_network(self):
        net = self._net("flat", "physnet2", None)
        port = self._port(net=net)
        self.assertEqual(portbindings.VIF_TYPE_VHOST_USER, port[portbindings.VIF_TYPE])
        ((key, raw),) = self._journal()
        value = self._value(key, raw)
        self.assertEqual(
            ("flat", "physnet2", None), (value.network_type, value.physnet, value.segmentation_id)
        )

    def _assert_declined(self, port: dict, reason: str, logs: str) -> None:
        self.assertEqual(portbindings.VIF_TYPE_BINDING_FAILED, port[portbindings.VIF_TYPE])
        self.assertIn(f"not binding port {port['id']}", logs)
        self.assertIn(reason, logs)
        self.assertEqual([], self._journal())
        self.assertIsNone(self._binding_row(port["id"]))

    def test_declines_host_without_live_agent(self):
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            port = self._port(host=DEAD)
        self._assert_declined(port, "no live vpp-agent", "\n".join(logs.output))

    def test_declines_unknown_host(self):
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            port = self._port(host="nowhere")
        self._assert_declined(port, "no live vpp-agent", "\n".join(logs.output))

    def test_declines_physnet_not_served(self):
        net = self._net("vlan", "physnet2", 7)
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            port = self._port(host=HOST2, net=net)
        self._assert_declined(port, "physnet 'physnet2' is not served", "\n".join(logs.output))

    def test_declines_unsupported_network_type(self):
        net = self._net("vxlan", None, 1234)
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            port = self._port(net=net)
        self._assert_declined(port, "network type 'vxlan' is not supported", "\n".join(logs.output))

    def test_declines_non_normal_vnic(self):
        with self.assertLogs("networking_vpp.server.mech_driver", logging.INFO) as logs:
            port = self._port(**{portbindings.VNIC_TYPE: portbindings.VNIC_DIRECT})
        self._assert_declined(port, "vnic_type 'direct' is not 'normal'", "\n".join(logs.output))

    def test_binds_when_agent_comes_alive(self):
        port = self._port(host=DEAD)
        self.assertEqual(portbindings.VIF_TYPE_BINDING_FAILED, port[portbindings.VIF_TYPE])
        self.mech.hosts.set_host(DEAD, True, ["physnet1"])
        # Nova retries by updating the binding host; ML2 binds afresh.
        port = self._update_port(port["id"], **{portbindings.HOST_ID: DEAD})
        self.assertEqual(portbindings.VIF_TYPE_VHOST_USER, port[portbindings.VIF_TYPE])

    def test_check_segment_for_agent(self):
        segment = {
            "id": "s",
            "network_type": "vlan",
            "physical_network": "physnet1",
            "segmentation_id": 5,
        }
        agent = {
            "agent_type": agents.AGENT_TYPE,
            "configurations": {"interface_mappings": {"physnet1": "Gi0/8/0"}},
        }
        self.assertTrue(self.mech.check_segment_for_agent(segment, agent))
        self.assertFalse(
            self.mech.check_segment_for_agent(dict(segment, physical_network="physnet9"), agent)
        )
        self.assertFalse(
            self.mech.check_segment_for_agent(segment, dict(agent, agent_type="Open vSwitch agent"))
        )


class TestJournalRows(VppDriverTestCase):
    def test_bind_writes_one_put(self):
        port = self._port(device_owner="compute:nova", device_id="vm-1")
        ((key, raw),) = self._journal()
        self.assertEqual(KEYS.port(HOST1, port["id"]), key)
        value = self._value(key, raw)
        row = self._binding_row(port["id"])
        self.assertEqual((HOST1, value.binding_id, raw), (row.host, row.binding_id, row.value))
        self.assertEqual(port["mac_address"], value.mac_address)
        self.assertEqual(
            ("vlan", "physnet1", 42), (value.network_type, value.physnet, value.segmentation_id)
        )
        self.assertEqual(self.net["mtu"], value.mtu)
        self.assertEqual(
            [ip["ip_address"] for ip in port["fixed_ips"]],
            [ip.ip_address for ip in value.fixed_ips],
        )
        self.assertEqual(tuple(sorted(port["security_groups"])), value.security_groups)
        self.assertEqual(
            ("compute:nova", "vm-1", True),
            (value.device_owner, value.device_id, value.admin_state_up),
        )
        self.assertEqual("vhostuser", value.binding_type)
        self.assertEqual(
            port[portbindings.VIF_DETAILS][portbindings.VHOST_USER_SOCKET], value.vhostuser.socket
        )
        self.assertEqual("client", value.vhostuser.mode)  # VPP's role: QEMU serves

    def test_unbound_port_writes_nothing(self):
        self._port(host=None)
        self.assertEqual([], self._journal())

    def test_rebind_deletes_old_host_and_puts_new(self):
        port = self._port()
        ((_, raw1),) = self._take_journal()
        self._update_port(port["id"], **{portbindings.HOST_ID: HOST2})
        rows = self._take_journal()
        self.assertEqual(
            [KEYS.port(HOST1, port["id"]), KEYS.port(HOST2, port["id"])], [k for k, _ in rows]
        )
        self.assertIsNone(rows[0][1])
        first = self._value(KEYS.port(HOST1, port["id"]), raw1)
        second = self._value(rows[1][0], rows[1][1])
        self.assertNotEqual(first.binding_id, second.binding_id)
        self.assertEqual(HOST2, self._binding_row(port["id"]).host)

    def test_updates_rewrite_value_with_same_binding_id(self):
        port = self._port()
        ((key, raw),) = self._take_journal()
        binding_id = self._value(key, raw).binding_id
        with self.subnet(network={"network": self.net}, cidr="10.9.0.0/24") as sub:
            changes = [
                {"fixed_ips": [{"subnet_id": sub["subnet"]["id"], "ip_address": "10.9.0.9"}]},
                {"allowed_address_pairs": [{"ip_address": "10.1.1.0/24"}]},
                {"admin_state_up": False},
                {"security_groups": [], "allowed_address_pairs": []},
                {"port_security_enabled": False},
            ]
            for change in changes:
                self._update_port(port["id"], **change)
                ((k, raw),) = self._take_journal()
                value = self._value(k, raw)
                self.assertEqual((key, binding_id), (k, value.binding_id), change)
        self.assertFalse(value.port_security_enabled)
        self.assertEqual((), value.security_groups)
        self.assertFalse(value.admin_state_up)
        self.assertEqual(["10.9.0.9"], [ip.ip_address for ip in value.fixed_ips])

    def test_address_pairs_and_security_groups_in_value(self):
        port = self._port()
        self._take_journal()
        pairs = [
            {"ip_address": "10.1.1.0/24"},
            {"ip_address": "10.2.2.2", "mac_address": "fa:16:3e:00:00:99"},
        ]
        self._update_port(port["id"], allowed_address_pairs=pairs)
        ((key, raw),) = self._take_journal()
        value = self._value(key, raw)
        self.assertEqual(
            [("10.1.1.0/24", port["mac_address"]), ("10.2.2.2", "fa:16:3e:00:00:99")],
            [(p.ip_address, p.mac_address) for p in value.allowed_address_pairs],
        )
        self.assertEqual(1, len(value.security_groups))

    def test_status_only_update_writes_nothing(self):
        port = self._port()
        self._take_journal()
        self.plugin.update_port_status(self.ctx, port["id"], n_const.PORT_STATUS_ACTIVE)
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(port["id"])["status"])
        self._update_port(port["id"], name="renamed")
        self.assertEqual([], self._journal())

    def test_network_mtu_change_rewrites_bound_ports(self):
        p1, p2 = self._port(), self._port(host=HOST2)
        self._port(host=None)  # unbound: nothing to rewrite
        self._take_journal()
        self._update("networks", self.net["id"], {"network": {"mtu": 1400}}, as_admin=True)
        rows = self._take_journal()
        self.assertEqual(
            sorted([KEYS.port(HOST1, p1["id"]), KEYS.port(HOST2, p2["id"])]),
            sorted(k for k, _ in rows),
        )
        self.assertEqual({1400}, {self._value(k, v).mtu for k, v in rows})
        self._update("networks", self.net["id"], {"network": {"name": "same-mtu"}}, as_admin=True)
        self.assertEqual([], self._journal())

    def test_unbind_deletes_key(self):
        port = self._port()
        self._take_journal()
        self._update_port(port["id"], **{portbindings.HOST_ID: ""})
        self.assertEqual([(KEYS.port(HOST1, port["id"]), None)], self._journal())
        self.assertIsNone(self._binding_row(port["id"]))

    def test_rebind_same_host_after_unbind_gets_new_binding_id(self):
        port = self._port()
        ((key, raw),) = self._take_journal()
        self._update_port(port["id"], **{portbindings.HOST_ID: ""})
        self._update_port(port["id"], **{portbindings.HOST_ID: HOST1})
        rows = self._take_journal()
        self.assertEqual([(key, None)], rows[:1])
        self.assertNotEqual(self._value(key, raw).binding_id, self._value(*rows[1]).binding_id)

    def test_delete_port_deletes_key(self):
        port = self._port()
        self._take_journal()
        self._delete("ports", port["id"], as_admin=True)
        self.assertEqual([(KEYS.port(HOST1, port["id"]), None)], self._journal())
        self.assertIsNone(self._binding_row(port["id"]))

    def test_delete_unbound_port_writes_nothing(self):
        port = self._port(host=None)
        self._delete("ports", port["id"], as_admin=True)
        self.assertEqual([], self._journal())


class TestProvisioning(VppDriverTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.handler = StateHandler(KEYS, agents.AgentRegistry())
        self.revision = 0

    def _is_blocked(self, port_id: str) -> bool:
        return provisioning_blocks.is_object_blocked(self.ctx, port_id, resources.PORT)

    def _report(self, host: str, port_id: str, binding_id: str, status: str = "active"):
        self.revision += 1
        state = model.PortState(
            port_id=port_id,
            binding_id=binding_id,
            status=status,
            reason="boom" if status == "error" else "",
            reported_at=time.time(),
        )
        return Event(
            "put", KEYS.port_state(host, port_id), model.encode(state).encode(), self.revision
        )

    def _bound(self) -> tuple[dict, str]:
        port = self._port(device_owner="compute:nova", device_id="vm-1")
        return port, self._binding_row(port["id"]).binding_id

    def test_bind_adds_provisioning_block(self):
        port, _ = self._bound()
        self.assertTrue(self._is_blocked(port["id"]))
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])

    def test_update_of_bound_port_adds_no_block(self):
        port, binding_id = self._bound()
        self.handler.on_events([self._report(HOST1, port["id"], binding_id)])
        self._update_port(port["id"], admin_state_up=True, name="x")
        self.assertFalse(self._is_blocked(port["id"]))

    def test_current_report_makes_port_active(self):
        port, binding_id = self._bound()
        self.handler.on_events([self._report(HOST1, port["id"], binding_id)])
        self.assertFalse(self._is_blocked(port["id"]))
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(port["id"])["status"])
        self.assertEqual(1, self.handler.ports.completed)

    def test_stale_binding_id_leaves_port_down(self):
        port, _ = self._bound()
        self.handler.on_events([self._report(HOST1, port["id"], "an-earlier-binding")])
        self.assertTrue(self._is_blocked(port["id"]))
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])
        self.assertEqual(1, self.handler.ports.stale)

    def test_report_from_previous_host_is_stale(self):
        port, old_binding = self._bound()
        self._update_port(port["id"], **{portbindings.HOST_ID: HOST2})
        self.handler.on_events([self._report(HOST1, port["id"], old_binding)])
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])
        new_binding = self._binding_row(port["id"]).binding_id
        self.handler.on_events([self._report(HOST2, port["id"], new_binding)])
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(port["id"])["status"])

    def test_error_report_leaves_port_down(self):
        port, binding_id = self._bound()
        with self.assertLogs("networking_vpp.server.state", logging.ERROR) as logs:
            self.handler.on_events([self._report(HOST1, port["id"], binding_id, "error")])
        self.assertIn("could not program port", logs.output[0])
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])

    def test_full_load_completes_ports_reported_while_away(self):
        port, binding_id = self._bound()
        other, _ = self._bound()
        report = self._report(HOST1, port["id"], binding_id)
        stale = self._report(HOST1, other["id"], "old")
        self.handler.on_load({report.key: report.value, stale.key: stale.value}, 10)
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(port["id"])["status"])
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(other["id"])["status"])

    def test_full_load_finishes_a_completion_cut_off_between_its_two_steps(self):
        # Neutron drops the block, then sets ACTIVE: a state watcher killed in
        # between left the port DOWN with no block. Its successor's load finishes it.
        port, binding_id = self._bound()
        provisioning_blocks.remove_provisioning_component(
            self.ctx, port["id"], resources.PORT, PROVISIONING_ENTITY
        )
        self.assertFalse(self._is_blocked(port["id"]))
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])
        report = self._report(HOST1, port["id"], binding_id)
        self.handler.on_load({report.key: report.value}, 10)
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(port["id"])["status"])
        self.assertEqual(1, self.handler.ports.completed)
        # Once ACTIVE, the same report completes nothing again.
        self.handler.on_load({report.key: report.value}, 11)
        self.assertEqual(1, self.handler.ports.completed)

    def test_an_administratively_down_port_is_left_down(self):
        # No block and DOWN, but by the operator's will: nothing to finish.
        port, binding_id = self._bound()
        provisioning_blocks.remove_provisioning_component(
            self.ctx, port["id"], resources.PORT, PROVISIONING_ENTITY
        )
        self._update_port(port["id"], admin_state_up=False)
        report = self._report(HOST1, port["id"], binding_id)
        self.handler.on_load({report.key: report.value}, 10)
        self.assertEqual(0, self.handler.ports.completed)
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])

    def test_recheck_completes_a_reported_port_left_down(self):
        # A PROVISIONING_COMPLETE subscriber that fails is only logged by
        # Neutron: the port stays DOWN although its report was handled.
        port, binding_id = self._bound()
        other, other_binding = self._bound()
        plugin = directory.get_plugin()
        with mock.patch.object(plugin, "update_port_status", side_effect=RuntimeError("db")):
            self.handler.on_events(
                [
                    self._report(HOST1, port["id"], binding_id),
                    self._report(HOST1, other["id"], other_binding, "error"),
                ]
            )
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])
        self.assertFalse(self._is_blocked(port["id"]))
        with self.assertNoLogs("networking_vpp.server.state", logging.ERROR):
            self.assertEqual([port["id"]], self.handler.recheck())  # the error is not retold
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(port["id"])["status"])
        self.assertEqual([], self.handler.recheck())

    def test_recheck_forgets_a_withdrawn_report(self):
        port, binding_id = self._bound()
        report = self._report(HOST1, port["id"], binding_id)
        self.handler.on_load({}, 10)
        self.handler.on_events([Event("delete", report.key, None, 11)])
        self.assertEqual([], self.handler.recheck())
        self.assertEqual(n_const.PORT_STATUS_DOWN, self._show_port(port["id"])["status"])
        self.handler.on_events([report])
        self.handler.on_events([Event("delete", report.key, None, 12)])
        directory.get_plugin().update_port_status(self.ctx, port["id"], n_const.PORT_STATUS_DOWN)
        self.assertEqual([], self.handler.recheck())  # withdrawn: nothing to complete

    def test_report_for_deleted_port_is_ignored(self):
        port, binding_id = self._bound()
        self._delete("ports", port["id"], as_admin=True)
        self.handler.on_events([self._report(HOST1, port["id"], binding_id)])
        self.assertEqual(0, self.handler.ports.completed)


class TestAgentLiveness(VppDriverTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.handler = StateHandler(KEYS, agents.AgentRegistry())

    def _agents(self) -> dict[str, dict]:
        found = self.plugin.get_agents(self.ctx, filters={"agent_type": [agents.AGENT_TYPE]})
        return {a["host"]: a for a in found}

    def _alive(self, host: str, rev: int) -> list[Event]:
        alive = model.HostAlive(host=host, agent_version="1.0", started_at=1.0)
        phys = model.HostPhysnet(name="physnet1", interface="GigabitEthernet0/8/0")
        return [
            Event("put", KEYS.physnet(host, "physnet1"), model.encode(phys).encode(), rev),
            Event("put", KEYS.alive(host), model.encode(alive).encode(), rev + 1),
        ]

    def test_alive_key_makes_a_live_agent(self):
        self.handler.on_events(self._alive(HOST1, 1))
        agent = self._agents()[HOST1]
        self.assertTrue(agent["alive"])
        self.assertEqual(("vpp-agent", "N/A"), (agent["binary"], agent["topic"]))
        self.assertEqual(
            {"physnet1": "GigabitEthernet0/8/0"}, agent["configurations"]["interface_mappings"]
        )

    def test_alive_key_gone_marks_agent_dead(self):
        self.handler.on_events(self._alive(HOST1, 1))
        self.handler.on_events([Event("delete", KEYS.alive(HOST1), None, 5)])
        self.assertFalse(self._agents()[HOST1]["alive"])
        # ... and alive again when the agent comes back.
        self.handler.on_events(self._alive(HOST1, 6))
        self.assertTrue(self._agents()[HOST1]["alive"])

    def test_full_load_marks_vanished_agents_dead(self):
        self.handler.on_events(self._alive(HOST1, 1) + self._alive(HOST2, 3))
        events = self._alive(HOST2, 10)
        self.handler.on_load({e.key: e.value for e in events}, 11)
        found = self._agents()
        self.assertEqual((False, True), (found[HOST1]["alive"], found[HOST2]["alive"]))

    def test_heartbeat_refreshes_live_agents_only(self):
        self.handler.on_events(self._alive(HOST1, 1))
        self.handler.agents.mark_down([HOST1])
        self.assertFalse(self._agents()[HOST1]["alive"])
        self.assertEqual(1, self.handler.agents.heartbeat(self.handler.live_hosts()))
        self.assertTrue(self._agents()[HOST1]["alive"])


class TestWorkerHooks(VppDriverTestCase):
    def test_services_start_only_in_api_workers(self):
        from neutron.api import wsgi
        from neutron_lib.callbacks import events

        cfg.CONF.set_override("start_services", True, group="ml2_vpp")
        with mock.patch("networking_vpp.server.services.ServerServices") as services:
            self.mech._after_init(resources.PROCESS, events.AFTER_INIT, object())
            services.assert_not_called()  # e.g. neutron-periodic-workers
            self.mech._after_init(resources.PROCESS, events.AFTER_INIT, wsgi.WorkerService)
            self.mech._after_init(resources.PROCESS, events.AFTER_INIT, wsgi.WorkerService)
        services.assert_called_once()
        services.return_value.start.assert_called_once_with()

    def test_services_start_in_rpc_workers(self):
        # neutron-rpc-server's workers bind the DHCP and L3 agents' ports.
        from neutron import service
        from neutron_lib.callbacks import events

        cfg.CONF.set_override("start_services", True, group="ml2_vpp")
        worker = service.RpcWorker([], worker_process_count=0)
        with mock.patch("networking_vpp.server.services.ServerServices") as services:
            self.mech._after_init(resources.PROCESS, events.AFTER_INIT, worker)
        services.return_value.start.assert_called_once_with()

    def test_postcommit_kicks_the_forwarder_only_after_rows(self):
        self.mech.services = mock.Mock()
        port = self._port()
        # Created (its security group membership), then bound (its binding).
        self.assertEqual(2, self.mech.services.kick.call_count)
        self.mech.services.kick.reset_mock()
        self._update_port(port["id"], name="no binding change")
        self.mech.services.kick.assert_not_called()
        self._delete("ports", port["id"], as_admin=True)
        self.mech.services.kick.assert_called_once_with()


class TestJournalStoreOnNeutronDb(VppDriverTestCase):
    def test_fetch_dead_letter_delete(self):
        store = journal_api.JournalStore(journal_api.neutron_session_scope())
        self._take_journal()
        p1, p2 = self._port(security_groups=[]), self._port(host=HOST2, security_groups=[])
        rows = store.fetch(10)
        self.assertEqual(
            [KEYS.port(HOST1, p1["id"]), KEYS.port(HOST2, p2["id"])], [r.key for r in rows]
        )
        self.assertEqual(2, store.pending())
        store.dead_letter(rows[:1], "too big")
        self.assertEqual([rows[0].id], [r.id for r in store.dead()])
        self.assertEqual([rows[1].id], [r.id for r in store.fetch(10)])
        store.delete([rows[1].id])
        self.assertEqual(0, store.pending())
