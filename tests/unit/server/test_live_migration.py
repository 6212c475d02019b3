"""Live migration on Neutron's ML2 base: the destination is prepared before the guest moves.

Nova's multiple-bindings flow (an INACTIVE binding, activate, delete) and the
legacy flow (``migrating_to`` in binding:profile); the journal rows each step
writes, the state watcher's "plugged" for the destination, and the resync's
view of destinations.
"""

from __future__ import annotations

from unittest import mock

from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from neutron_lib.api.definitions import portbindings_extended as pbe
from neutron_lib.db import api as db_api

from networking_vpp.common import model
from networking_vpp.server import agents
from networking_vpp.server.desired import DesiredStateBuilder, plugin_port_source
from networking_vpp.server.journal import models
from networking_vpp.server.state import StateHandler
from tests.unit.server.test_mech_driver import DEAD, HOST1, HOST2, KEYS, VppDriverTestCase


class LiveMigrationTestCase(VppDriverTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.port = self._port(device_owner="compute:nova", device_id="vm-1")
        self.key1, self.key2 = KEYS.port(HOST1, self.port["id"]), KEYS.port(HOST2, self.port["id"])
        ((key, raw),) = self._take_journal()
        self.value1 = self._value(key, raw)

    def _create_binding(self, host: str = HOST2) -> dict:
        return self.plugin.create_port_binding(
            self.ctx, self.port["id"], {pbe.RESOURCE_NAME: {pbe.HOST: host}}
        )

    def _destinations(self) -> dict[str, models.VppPortDestination]:
        with db_api.CONTEXT_READER.using(self.ctx):
            rows = self.ctx.session.query(models.VppPortDestination).filter_by(
                port_id=self.port["id"]
            )
            return {r.host: r for r in rows}


class TestMultipleBindings(LiveMigrationTestCase):
    def test_inactive_binding_prepares_the_destination(self):
        self._create_binding()
        ((key, raw),) = self._take_journal()
        self.assertEqual(self.key2, key)
        value = self._value(key, raw)
        self.assertNotEqual(self.value1.binding_id, value.binding_id)
        self.assertEqual(self._destinations()[HOST2].binding_id, value.binding_id)
        # The port as the guest sees it, on the destination's segment and vif.
        self.assertEqual(self.value1.mac_address, value.mac_address)
        self.assertEqual(self.value1.fixed_ips, value.fixed_ips)
        self.assertEqual(self.value1.security_groups, value.security_groups)
        self.assertEqual(("vlan", "physnet1", 42), (value.network_type, value.physnet, 42))
        self.assertEqual("vhostuser", value.binding_type)
        assert value.vhostuser is not None
        self.assertEqual(self.value1.vhostuser, value.vhostuser)
        # The source is untouched, and the port stays as it was.
        self.assertEqual(HOST1, self._binding_row(self.port["id"]).host)

    def test_port_update_during_migration_rewrites_both_hosts(self):
        self._create_binding()
        self._take_journal()
        self._update_port(self.port["id"], allowed_address_pairs=[{"ip_address": "10.9.9.9"}])
        rows = dict(self._take_journal())
        self.assertEqual({self.key1, self.key2}, set(rows))
        for key, raw in rows.items():
            pairs = self._value(key, raw).allowed_address_pairs
            self.assertEqual(["10.9.9.9"], [p.ip_address for p in pairs])

    def test_network_mtu_change_rewrites_the_destination(self):
        self._create_binding()
        self._take_journal()
        self._update("networks", self.net["id"], {"network": {"mtu": 1400}}, as_admin=True)
        rows = dict(self._take_journal())
        self.assertEqual({self.key1, self.key2}, set(rows))
        self.assertEqual({1400}, {self._value(k, v).mtu for k, v in rows.items()})

    def test_activate_moves_the_port_and_keeps_the_destination_key(self):
        self._create_binding()
        self._take_journal()
        self.plugin.activate(self.ctx, HOST2, self.port["id"])
        rows = self._take_journal()
        # The source goes; the destination's key is the active binding's now (a put,
        # never a delete, so its agent keeps the port).
        self.assertEqual([(self.key1, None)], rows[:1])
        self.assertEqual([self.key2], [k for k, _ in rows[1:]])
        self.assertIsNotNone(rows[1][1])
        self.assertEqual({}, self._destinations())
        self.assertEqual(HOST2, self._binding_row(self.port["id"]).host)
        # Nova then drops the source's (now inactive, unbound) binding: nothing to write.
        self.plugin.delete_port_binding(self.ctx, HOST1, self.port["id"])
        self.assertEqual([], self._journal())

    def test_deleting_the_inactive_binding_cleans_the_destination(self):
        self._create_binding()
        self._take_journal()
        self.plugin.delete_port_binding(self.ctx, HOST2, self.port["id"])
        self.assertEqual([(self.key2, None)], self._journal())
        self.assertEqual({}, self._destinations())
        self.assertEqual(HOST1, self._binding_row(self.port["id"]).host)

    def test_deleting_the_port_deletes_every_host_key(self):
        self._create_binding()
        self._take_journal()
        self._delete("ports", self.port["id"], as_admin=True)
        self.assertEqual({(self.key1, None), (self.key2, None)}, set(self._journal()))

    def test_destination_without_a_live_agent_is_refused(self):
        from neutron_lib import exceptions as n_exc

        self.assertRaises(n_exc.NeutronException, self._create_binding, DEAD)
        self.assertEqual([], self._journal())
        self.assertEqual({}, self._destinations())


class TestLegacyFlow(LiveMigrationTestCase):
    def _profile(self, profile: dict, **attrs) -> dict:
        # As Nova does, with its service role (the API's policy keeps profiles to it).
        attrs[portbindings.PROFILE] = profile
        return self.plugin.update_port(self.ctx, self.port["id"], {"port": attrs})

    def test_migrating_to_prepares_the_destination(self):
        self._profile({"migrating_to": HOST2})
        rows = dict(self._take_journal())
        value = self._value(self.key2, rows[self.key2])
        self.assertNotEqual(self.value1.binding_id, value.binding_id)
        self.assertEqual(self.value1.physnet, value.physnet)
        # ML2 rebinds the source for the profile change: its key is rewritten (a new
        # binding id, as ML2 set the port DOWN), never deleted, so the VM keeps its network.
        self.assertIsNotNone(rows[self.key1])
        self.assertNotIn((self.key1, None), self._journal())

    def test_host_change_completes_the_move(self):
        self._profile({"migrating_to": HOST2})
        self._take_journal()
        self._profile({}, **{portbindings.HOST_ID: HOST2})
        rows = self._take_journal()
        self.assertEqual([(self.key1, None)], rows[:1])
        self.assertEqual([self.key2], [k for k, _ in rows[1:]])
        self.assertIsNotNone(rows[1][1])
        self.assertEqual({}, self._destinations())

    def test_aborted_migration_cleans_the_destination(self):
        self._profile({"migrating_to": HOST2})
        self._take_journal()
        self._profile({})
        rows = self._journal()
        self.assertIn((self.key2, None), rows)
        self.assertNotIn((self.key1, None), rows)
        self.assertEqual({}, self._destinations())

    def test_migrating_to_a_dead_host_prepares_nothing(self):
        self._profile({"migrating_to": DEAD})
        self.assertEqual([self.key1], [k for k, _ in self._journal()])


class TestDestinationReports(LiveMigrationTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.handler = StateHandler(KEYS, agents.AgentRegistry())
        self.revision = 0

    def _report(self, host: str, binding_id: str):
        from networking_vpp.common.etcd.stream import Event

        self.revision += 1
        state = model.PortState(port_id=self.port["id"], binding_id=binding_id, status="active")
        return Event(
            "put",
            KEYS.port_state(host, self.port["id"]),
            model.encode(state).encode(),
            self.revision,
        )

    def test_destination_report_tells_nova_plugged(self):
        self.handler.on_events([self._report(HOST1, self.value1.binding_id)])
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(self.port["id"])["status"])
        self._create_binding()
        dest = self._destinations()[HOST2].binding_id
        notifier = mock.Mock()
        with mock.patch.object(self.plugin, "nova_notifier", notifier, create=True):
            self.handler.on_events([self._report(HOST2, "an-earlier-binding")])
            notifier.notify_port_active_direct.assert_not_called()
            self.handler.on_events([self._report(HOST2, dest)])
            self.handler.on_events([self._report(HOST2, dest)])  # told once
        ((port,), _) = notifier.notify_port_active_direct.call_args
        self.assertEqual(1, notifier.notify_port_active_direct.call_count)
        self.assertEqual((self.port["id"], "vm-1"), (port.id, port.device_id))
        # The port itself stays ACTIVE on the source.
        self.assertEqual(n_const.PORT_STATUS_ACTIVE, self._show_port(self.port["id"])["status"])
        self.assertEqual(1, self.handler.ports.destinations_plugged)


class TestResync(LiveMigrationTestCase):
    def test_desired_state_includes_destinations(self):
        self._create_binding()
        ((key2, raw2),) = self._take_journal()
        builder = DesiredStateBuilder(KEYS, self.mech.journal, plugin_port_source())
        state = builder.compute(self.ctx)
        self.assertEqual(raw2, state.values.get(self.key2))
        self.assertIn(self.key1, state.values)
        self.assertEqual({}, state.stale_memory)
        self.plugin.delete_port_binding(self.ctx, HOST2, self.port["id"])
        self.assertNotIn(self.key2, builder.compute(self.ctx).values)
