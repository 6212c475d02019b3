"""Honest port status on Neutron's ML2 base: agents' ``down`` reports, recheck, rebind races.

A port the agent reports ``down`` (admin down, or its VM gone) goes DOWN, and
ACTIVE again when reported ``active``, as ML2/OVS's update_device_down/up do;
the heartbeat recheck only finishes completions the state watcher itself set
and lost; an earlier binding's report never completes a later one, even when
the rebind commits between the watcher's look-up and its completion.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from unittest import mock

from neutron.db import provisioning_blocks
from neutron.db.models import provisioning_block as pb_model
from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import resources
from neutron_lib.db import api as db_api
from neutron_lib.plugins import directory

from networking_vpp.common import model
from networking_vpp.common.etcd.stream import Event
from networking_vpp.server import agents, state
from networking_vpp.server.state import PROVISIONING_ENTITY, PortReports, StateHandler
from tests.unit.server.test_mech_driver import HOST1, KEYS, VppDriverTestCase

ACTIVE, DOWN = n_const.PORT_STATUS_ACTIVE, n_const.PORT_STATUS_DOWN


class PortStatusTestCase(VppDriverTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.handler = StateHandler(KEYS, agents.AgentRegistry())
        self.revision = 0

    def _report(
        self,
        port_id: str,
        binding_id: str,
        status: str = "active",
        reason: str = "",
        reported_at: float | None = None,
    ) -> Event:
        self.revision += 1
        at = time.time() if reported_at is None else reported_at
        report = model.PortState(port_id, binding_id, status, reason, reported_at=at)
        key = KEYS.port_state(HOST1, port_id)
        return Event("put", key, model.encode(report).encode(), self.revision)

    def _bound(self) -> tuple[str, str]:
        # A uuid device id: Nova's notifier ignores any other.
        port = self._port(device_owner="compute:nova", device_id=str(uuid.uuid4()))
        return port["id"], self._binding_row(port["id"]).binding_id

    def _active(self) -> tuple[str, str]:
        port_id, binding_id = self._bound()
        self.handler.on_events([self._report(port_id, binding_id)])
        self.assertEqual(ACTIVE, self._status(port_id))
        return port_id, binding_id

    def _status(self, port_id: str) -> str:
        return self._show_port(port_id)["status"]

    def _is_blocked(self, port_id: str) -> bool:
        return provisioning_blocks.is_object_blocked(self.ctx, port_id, resources.PORT)

    def _profile(self, port_id: str, profile: dict) -> None:
        # As Nova does, with its service role (the API's policy keeps profiles to it).
        self.plugin.update_port(self.ctx, port_id, {"port": {portbindings.PROFILE: profile}})


class TestDownReports(PortStatusTestCase):
    def test_admin_down_then_down_report_sets_port_down_and_up_again(self):
        port_id, binding_id = self._active()
        self._update_port(port_id, admin_state_up=False)
        self.assertEqual(ACTIVE, self._status(port_id))  # ML2 leaves it: the agent says
        self.handler.on_events([self._report(port_id, binding_id, "down", "admin down")])
        self.assertEqual(DOWN, self._status(port_id))
        self._update_port(port_id, admin_state_up=True)
        self.handler.on_events([self._report(port_id, binding_id)])
        self.assertEqual(ACTIVE, self._status(port_id))

    def test_vm_gone_sets_port_down_and_back_active_when_it_reconnects(self):
        port_id, binding_id = self._active()
        self.handler.on_events([self._report(port_id, binding_id, "down", "VM not connected")])
        self.assertEqual(DOWN, self._status(port_id))
        self.assertFalse(self._is_blocked(port_id))
        self.assertEqual([], self.handler.recheck())  # DOWN as reported: nothing owed
        self.handler.on_events([self._report(port_id, binding_id)])
        self.assertEqual(ACTIVE, self._status(port_id))

    def test_down_report_of_a_port_waiting_for_its_vm_keeps_it_waiting(self):
        port_id, binding_id = self._bound()
        self.handler.on_events([self._report(port_id, binding_id, "down", "VM not connected")])
        self.assertTrue(self._is_blocked(port_id))
        self.assertEqual(DOWN, self._status(port_id))
        self.handler.on_events([self._report(port_id, binding_id)])
        self.assertEqual(ACTIVE, self._status(port_id))

    def test_stale_down_report_leaves_the_port_alone(self):
        port_id, _ = self._active()
        self.handler.on_events([self._report(port_id, "an-earlier-binding", "down", "admin down")])
        self.assertEqual(ACTIVE, self._status(port_id))

    def test_full_load_sets_down_a_port_reported_down_while_away(self):
        port_id, binding_id = self._active()
        report = self._report(port_id, binding_id, "down", "VM not connected")
        self.handler.on_load({report.key: report.value}, 10)
        self.assertEqual(DOWN, self._status(port_id))


class TestRecheck(PortStatusTestCase):
    def test_recheck_leaves_a_port_another_component_set_down(self):
        port_id, _ = self._active()
        directory.get_plugin().update_port_status(self.ctx, port_id, DOWN)
        self.assertEqual([], self.handler.recheck())
        self.assertEqual(DOWN, self._status(port_id))

    def test_recheck_finishes_a_completion_whose_subscriber_failed(self):
        # Neutron only logs a PROVISIONING_COMPLETE subscriber's failure: the
        # block is gone, the port DOWN, and the report handled.
        port_id, binding_id = self._bound()
        plugin = directory.get_plugin()
        with mock.patch.object(plugin, "update_port_status", side_effect=RuntimeError("db")):
            self.handler.on_events([self._report(port_id, binding_id)])
        self.assertFalse(self._is_blocked(port_id))
        self.assertEqual(DOWN, self._status(port_id))
        self.assertEqual([port_id], self.handler.recheck())
        self.assertEqual(ACTIVE, self._status(port_id))
        self.assertEqual([], self.handler.recheck())
        # Once seen ACTIVE it is no longer owed: another component's DOWN stays.
        plugin.update_port_status(self.ctx, port_id, DOWN)
        self.assertEqual([], self.handler.recheck())
        self.assertEqual(DOWN, self._status(port_id))

    def test_full_load_leaves_a_port_set_down_after_its_report(self):
        port_id, binding_id = self._bound()
        # Reported a minute ago (the DB's updated_at may have whole seconds only).
        report = self._report(port_id, binding_id, reported_at=time.time() - 60)
        self.handler.on_events([report])
        directory.get_plugin().update_port_status(self.ctx, port_id, DOWN)
        self.handler.on_load({report.key: report.value}, 10)
        self.assertEqual(DOWN, self._status(port_id))


class TestEntityAndRaces(PortStatusTestCase):
    def test_the_block_is_the_l2_agents(self):
        self.assertEqual(provisioning_blocks.L2_AGENT_ENTITY, PROVISIONING_ENTITY)
        port_id, _ = self._bound()
        with db_api.CONTEXT_READER.using(self.ctx):
            entities = [b.entity for b in self.ctx.session.query(pb_model.ProvisioningBlock).all()]
        self.assertEqual([provisioning_blocks.L2_AGENT_ENTITY], entities)
        self.assertTrue(self._is_blocked(port_id))

    def test_a_block_of_the_old_entity_is_completed_too(self):
        # Ports bound before the upgrade carry a "VPP" block.
        port_id, binding_id = self._bound()
        with db_api.CONTEXT_WRITER.using(self.ctx):
            self.ctx.session.query(pb_model.ProvisioningBlock).update({"entity": "VPP"})
        self.handler.on_events([self._report(port_id, binding_id)])
        self.assertFalse(self._is_blocked(port_id))
        self.assertEqual(ACTIVE, self._status(port_id))

    def test_completion_while_migrating_to_is_set_tells_nova(self):
        # ML2 sends Nova's event during a legacy migration only for the L2 entity.
        port_id, _ = self._active()
        self._profile(port_id, {"migrating_to": "compute-2"})
        binding_id = self._binding_row(port_id).binding_id
        self.assertTrue(self._is_blocked(port_id))
        notifier = directory.get_plugin().nova_notifier
        with mock.patch.object(
            notifier, "context_enabled", return_value=contextlib.nullcontext()
        ) as enabled:
            self.handler.on_events([self._report(port_id, binding_id)])
        self.assertEqual(ACTIVE, self._status(port_id))
        enabled.assert_called_once_with(True)  # Nova hears network-vif-plugged

    def test_an_old_bindings_report_cannot_complete_a_rebind_racing_it(self):
        port_id, old = self._bound()
        lookup = PortReports._lookup

        def rebind_after_lookup(port_ids):
            found = lookup(port_ids)
            # The rebind commits after the watcher looked, before it completes.
            self._profile(port_id, {"x": "y"})
            return found

        with mock.patch.object(PortReports, "_lookup", side_effect=rebind_after_lookup):
            self.handler.on_events([self._report(port_id, old)])
        new = self._binding_row(port_id).binding_id
        self.assertNotEqual(old, new)
        self.assertTrue(self._is_blocked(port_id))
        self.assertEqual(DOWN, self._status(port_id))
        self.assertEqual(0, self.handler.ports.completed)
        self.handler.on_events([self._report(port_id, new)])
        self.assertEqual(ACTIVE, self._status(port_id))

    def test_a_block_added_after_the_completion_commits_is_respected(self):
        # Between the completion's commit and its publish, a rebind adds a block:
        # nothing may set the new binding ACTIVE.
        port_id, binding_id = self._bound()
        real = state._blocked

        def rebind_then_look(ctx, port_id_):
            self._profile(port_id, {"x": "z"})
            return real(ctx, port_id_)

        with mock.patch.object(state, "_blocked", side_effect=rebind_then_look):
            self.handler.on_events([self._report(port_id, binding_id)])
        self.assertTrue(self._is_blocked(port_id))
        self.assertEqual(DOWN, self._status(port_id))
