"""Full resync on Neutron's ML2 test base, against a real (in-process) etcd.

The journal is forwarded by a tiny in-test forwarder (rows in order, then
deleted), so "what the journal wrote" is exactly what lands in etcd.
"""

from __future__ import annotations

import sys
import types
from unittest import mock

import pytest
from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from neutron_lib.db import api as db_api

from networking_vpp.common import keys, model
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.server import desired as desired_mod
from networking_vpp.server.desired import DesiredStateBuilder, plugin_port_source
from networking_vpp.server.journal import models
from networking_vpp.server.journal.api import JournalStore, neutron_session_scope
from networking_vpp.server.journal.forwarder import NotLeader
from networking_vpp.server.sync import RACED, Resync
from tests.unit.server import test_mech_driver as tmd

HOST1, HOST2 = tmd.HOST1, tmd.HOST2
KEYS = keys.KeySpace()  # the driver's (default) prefix; the etcd fixture wipes it per test


class SyncTestCase(tmd.VppDriverTestCase):
    """Driver + journal on the ML2 test base, a real etcd, and a resync over both."""

    ports_only = True  # leave /global/ (security groups) out, unless a test wants it

    @pytest.fixture(autouse=True)
    def _etcd(self, etcd: EtcdClient) -> None:
        self.etcd = etcd

    def setUp(self) -> None:
        super().setUp()
        self.store = JournalStore(neutron_session_scope())
        self.builder = DesiredStateBuilder(KEYS, self.mech.journal, plugin_port_source())
        if self.ports_only:
            patcher = mock.patch.object(desired_mod, "_secgroup_source", return_value=None)
            patcher.start()
            self.addCleanup(patcher.stop)
        self.kicks = 0
        self.resync = Resync(self.etcd, self.builder, self.store, kick=self._kicked)

    def _kicked(self) -> None:
        self.kicks += 1

    # --- helpers ------------------------------------------------------------------
    def forward(self) -> int:
        """Copy pending journal rows to etcd in order, then drop them (the forwarder)."""
        rows = self.store.fetch(100000)
        for row in rows:
            if row.value is None:
                self.etcd.delete(row.key)
            else:
                self.etcd.put(row.key, row.value)
        self.store.delete([r.id for r in rows])
        return len(rows)

    def etcd_ports(self) -> dict[str, str]:
        kvs, _ = self.etcd.get_prefix(KEYS.nodes_prefix())
        return {kv.key: kv.value.decode() for kv in kvs if "/ports/" in kv.key}

    def etcd_all(self) -> dict[str, tuple[bytes, int]]:
        kvs, _ = self.etcd.get_prefix(KEYS.prefix + "/")
        return {kv.key: (kv.value, kv.mod_revision) for kv in kvs}

    def desired_ports(self, host: str | None = None) -> dict[str, str]:
        state = self.builder.compute(self.ctx, host)
        return {k: v for k, v in state.values.items() if k.startswith(KEYS.nodes_prefix())}

    def some_ports(self) -> tuple[dict, dict, dict]:
        """Two ports on HOST1, one on HOST2, forwarded to etcd."""
        ports = self._port(), self._port(), self._port(host=HOST2)
        self.forward()
        return ports

    def ops(self, report: dict, kind: str) -> dict[str, str]:
        return {e["key"]: e.get("reason", "") for e in report[kind]}


class TestDesiredState(SyncTestCase):
    def test_equals_what_the_journal_wrote(self):
        flat = self._net("flat", "physnet2", None)
        a = self._port(device_owner="compute:nova", device_id="vm-1")
        b = self._port(host=HOST2)
        c = self._port(net=flat, device_owner=n_const.DEVICE_OWNER_DHCP)
        d = self._port()
        e = self._port(host=None)
        self.forward()
        with self.subnet(network={"network": self.net}, cidr="10.9.0.0/24") as sub:
            self._update_port(
                a["id"], fixed_ips=[{"subnet_id": sub["subnet"]["id"], "ip_address": "10.9.0.9"}]
            )
            self._update_port(
                a["id"],
                allowed_address_pairs=[
                    {"ip_address": "10.1.1.0/24"},
                    {"ip_address": "10.2.2.2", "mac_address": "fa:16:3e:00:00:99"},
                ],
            )
            self._update_port(b["id"], admin_state_up=False)
            self._update_port(b["id"], **{portbindings.HOST_ID: HOST1})  # rebind
            self._update_port(c["id"], security_groups=[], port_security_enabled=False)
            self._update_port(d["id"], **{portbindings.HOST_ID: ""})  # unbind
            self._update_port(e["id"], **{portbindings.HOST_ID: HOST2})  # bind later
            self._update("networks", self.net["id"], {"network": {"mtu": 1400}}, as_admin=True)
            self._delete("ports", self._port(host=HOST2)["id"], as_admin=True)
            self.forward()

            state = self.builder.compute(self.ctx)
            written = self.etcd_ports()
            self.assertEqual(
                {KEYS.port(HOST1, a["id"]), KEYS.port(HOST1, b["id"])}
                | {KEYS.port(HOST1, c["id"]), KEYS.port(HOST2, e["id"])},
                set(written),
            )
            self.assertEqual(written, state.values)
            self.assertEqual({}, state.stale_memory)
            self.assertEqual([], state.problems)
            report = self.resync.run().to_json()
        self.assertEqual(([], [], 0), (report["put"], report["delete"], report["applied"]))
        self.assertEqual((4, 4), (report["desired_keys"], report["etcd_keys"]))

    def test_host_filter(self):
        p1, _, p3 = self.some_ports()
        self.assertEqual(
            {KEYS.port(HOST2, p3["id"])}, set(self.builder.compute(self.ctx, HOST2).values)
        )
        self.assertIn(KEYS.port(HOST1, p1["id"]), self.builder.compute(self.ctx, HOST1).values)

    def test_journal_memory_disagreeing_with_ml2_is_a_problem(self):
        p1, _, _ = self.some_ports()
        with db_api.CONTEXT_WRITER.using(self.ctx):
            self.ctx.session.query(models.VppPortBinding).filter_by(port_id=p1["id"]).update(
                {"host": HOST2}
            )
        state = self.builder.compute(self.ctx)
        self.assertIn(KEYS.port(HOST2, p1["id"]), state.values)  # the journal's view wins
        self.assertEqual(1, len(state.problems))
        self.assertIn("ML2 has it bound on compute-1", state.problems[0])


class TestDesiredGlobalState(SyncTestCase):
    ports_only = False

    def test_equals_what_the_journal_wrote(self):
        if desired_mod._secgroup_source() is None:
            self.skipTest(f"{desired_mod.SECGROUPS_MODULE} is not there yet")
        project = self._project_id
        sg = self.plugin.create_security_group(
            self.ctx, {"security_group": {"name": "web", "description": "", "project_id": project}}
        )
        rule = {
            "security_group_id": sg["id"],
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "remote_group_id": sg["id"],
            "remote_ip_prefix": None,
            "remote_address_group_id": None,
            "description": "",
            "project_id": project,
        }
        self.plugin.create_security_group_rule(self.ctx, {"security_group_rule": rule})
        port = self._port(security_groups=[sg["id"]])
        self._port(host=None, security_groups=[sg["id"]])
        self.forward()
        self._update_port(port["id"], allowed_address_pairs=[{"ip_address": "10.1.1.0/24"}])
        self.forward()
        kvs, _ = self.etcd.get_prefix(KEYS.global_prefix())
        written = {kv.key: kv.value.decode() for kv in kvs}
        self.assertTrue(written)
        state = self.builder.compute(self.ctx)
        computed = {k: v for k, v in state.values.items() if k.startswith(KEYS.global_prefix())}
        self.assertEqual(written, computed)
        self.assertTrue(self.resync.run().clean)


class TestRepair(SyncTestCase):
    def test_missing_wrong_and_extra_keys_are_repaired(self):
        p1, p2, p3 = self.some_ports()
        good = self.etcd_ports()
        missing, wrong = KEYS.port(HOST1, p1["id"]), KEYS.port(HOST2, p3["id"])
        extra = KEYS.port(HOST2, "no-such-port")
        ha = f"{KEYS.host_prefix(HOST1)}routers/ha"  # not ours to judge: keepalived writes it
        self.etcd.delete(missing)
        self.etcd.put(wrong, good[wrong].replace('"mtu":1500', '"mtu":9000'))
        self.etcd.put(extra, good[wrong])
        self.etcd.put(ha, "1")

        report = self.resync.run().to_json()
        self.assertEqual({missing: "missing", wrong: "differs"}, self.ops(report, "put"))
        self.assertEqual({extra: "extra"}, self.ops(report, "delete"))
        self.assertEqual({"etcd"}, {p["via"] for p in report["put"]})
        self.assertEqual(3, report["applied"])
        self.assertFalse(report["dry_run"])
        self.assertEqual(good, self.etcd_ports())
        self.assertEqual(b"1", self.etcd.get(ha).value)
        again = self.resync.run()
        self.assertTrue(again.clean, again.to_json())

    def test_dry_run_changes_nothing(self):
        p1, _, p3 = self.some_ports()
        self.etcd.delete(KEYS.port(HOST1, p1["id"]))
        self.etcd.put(KEYS.port(HOST1, "ghost"), "junk")
        before = self.etcd_all()
        report = self.resync.run(dry_run=True).to_json()
        self.assertTrue(report["dry_run"])
        self.assertEqual({KEYS.port(HOST1, p1["id"]): "missing"}, self.ops(report, "put"))
        self.assertEqual([KEYS.port(HOST1, "ghost")], list(self.ops(report, "delete")))
        self.assertEqual(0, report["applied"])
        self.assertEqual(before, self.etcd_all())

    def test_host_limits_the_repair_to_one_host(self):
        p1, _, p3 = self.some_ports()
        self.etcd.delete(KEYS.port(HOST1, p1["id"]))
        self.etcd.delete(KEYS.port(HOST2, p3["id"]))
        self.etcd.put(KEYS.port(HOST1, "ghost"), "junk")
        report = self.resync.run(host=HOST2).to_json()
        self.assertEqual(HOST2, report["host"])
        self.assertEqual({KEYS.port(HOST2, p3["id"]): "missing"}, self.ops(report, "put"))
        self.assertEqual({}, self.ops(report, "delete"))
        self.assertEqual(["ports"], report["scopes"])
        self.assertIsNone(self.etcd.get(KEYS.port(HOST1, p1["id"])))
        self.assertIsNotNone(self.etcd.get(KEYS.port(HOST1, "ghost")))
        self.assertIsNotNone(self.etcd.get(KEYS.port(HOST2, p3["id"])))

    def test_pending_journal_rows_win(self):
        p1, p2, _ = self.some_ports()
        k1, k2 = KEYS.port(HOST1, p1["id"]), KEYS.port(HOST1, p2["id"])
        self._update_port(p1["id"], admin_state_up=False)  # a pending row for k1 ...
        self.etcd.put(k1, "corrupt")  # ... whose key is also wrong in etcd
        self._update_port(p2["id"], **{portbindings.HOST_ID: ""})  # pending delete of k2
        self.etcd.delete(k2)
        self._update_port(p2["id"], **{portbindings.HOST_ID: HOST1})  # and a pending put
        report = self.resync.run().to_json()
        self.assertEqual(
            {k1: "pending journal row", k2: "pending journal row"},
            {s["key"]: s["reason"] for s in report["skipped"]},
        )
        self.assertEqual(([], []), (report["put"], report["delete"]))
        self.assertEqual(b"corrupt", self.etcd.get(k1).value)
        self.assertIsNone(self.etcd.get(k2))
        self.forward()
        self.assertTrue(self.resync.run().clean)
        value = model.decode(model.PortBinding, k1, self.etcd.get(k1).value)
        self.assertFalse(value.admin_state_up)

    def test_a_key_moved_during_the_resync_is_left_alone(self):
        p1, _, _ = self.some_ports()
        key = KEYS.port(HOST1, p1["id"])
        self.etcd.put(key, "stale")
        real = self.builder.compute

        def compute_then_forwarder_writes(*args, **kwargs):
            state = real(*args, **kwargs)
            self.etcd.put(key, "written by the journal meanwhile")
            return state

        with mock.patch.object(self.builder, "compute", compute_then_forwarder_writes):
            report = self.resync.run().to_json()
        self.assertEqual([{"key": key, "reason": RACED}], report["skipped"])
        self.assertEqual(b"written by the journal meanwhile", self.etcd.get(key).value)

    def test_missing_key_created_meanwhile_is_left_alone(self):
        p1, _, _ = self.some_ports()
        key = KEYS.port(HOST1, p1["id"])
        self.etcd.delete(key)
        real = self.builder.compute

        def compute_then_forwarder_writes(*args, **kwargs):
            state = real(*args, **kwargs)
            self.etcd.put(key, "newer")
            return state

        with mock.patch.object(self.builder, "compute", compute_then_forwarder_writes):
            report = self.resync.run().to_json()
        self.assertEqual([{"key": key, "reason": RACED}], report["skipped"])
        self.assertEqual(b"newer", self.etcd.get(key).value)

    def test_stale_journal_memory_is_repaired_through_the_journal(self):
        p1, _, _ = self.some_ports()
        key = KEYS.port(HOST1, p1["id"])
        right = self.etcd.get(key).value.decode()
        wrong = right.replace('"admin_state_up":true', '"admin_state_up":false')
        with db_api.CONTEXT_WRITER.using(self.ctx):
            self.ctx.session.query(models.VppPortBinding).filter_by(port_id=p1["id"]).update(
                {"value": wrong}
            )
        self.etcd.put(key, wrong)  # as if the journal had written it
        report = self.resync.run().to_json()
        self.assertEqual([{"key": key, "reason": "differs", "via": "journal"}], report["put"])
        self.assertEqual(wrong.encode(), self.etcd.get(key).value)  # the forwarder's job
        self.assertEqual([(key, right)], [(r.key, r.value) for r in self.store.fetch(10)])
        self.assertEqual(right, self._binding_row(p1["id"]).value)
        self.assertEqual(1, self.kicks)
        self.forward()
        self.assertTrue(self.resync.run().clean)

    def test_guard_failure_means_not_leader(self):
        p1, _, _ = self.some_ports()
        self.etcd.delete(KEYS.port(HOST1, p1["id"]))
        lease = self.etcd.lease_grant(30)
        election = KEYS.election("forwarder")
        self.etcd.put(election, "someone else", lease=lease)
        guard = codec.compare(election, "LEASE", "EQUAL", lease + 1)
        with self.assertRaises(NotLeader):
            self.resync.run(guard=lambda: guard)
        self.assertIsNone(self.etcd.get(KEYS.port(HOST1, p1["id"])))
        ours = codec.compare(election, "LEASE", "EQUAL", lease)
        report = self.resync.run(guard=lambda: ours)
        self.assertEqual(1, report.applied)
        self.etcd.lease_revoke(lease)

    def test_many_changes_go_in_transactions_of_at_most_128(self):
        self.some_ports()
        for n in range(300):
            self.etcd.put(KEYS.port(HOST2, f"ghost-{n:03d}"), "x")
        with mock.patch.object(self.etcd, "txn", wraps=self.etcd.txn) as txn:
            report = self.resync.run(guard=None)
        self.assertEqual(300, report.applied)
        self.assertEqual(3, txn.call_count)
        self.assertTrue(all(len(call.args[1]) <= 128 for call in txn.call_args_list))


class TestGlobalKeys(SyncTestCase):
    ports_only = False

    def _fake_secgroups(self, state: dict[str, str]) -> types.ModuleType:
        module = types.ModuleType(desired_mod.SECGROUPS_MODULE)
        module.desired_secgroup_state = lambda context, keyspace=None: dict(state)  # type: ignore[attr-defined]
        return module

    def test_global_keys_come_from_the_secgroup_module(self):
        sg_key, member_key = KEYS.secgroup("sg-1"), KEYS.remote_group_member("sg-1", "p")
        gpe = f"{KEYS.global_prefix()}gpe/5001/{HOST1}/fa:16:3e:00:00:01"  # agents write these
        stale = KEYS.secgroup("sg-gone")
        self.etcd.put(gpe, "agent data")
        self.etcd.put(stale, "{}")
        self.etcd.put(sg_key, "old")
        fake = self._fake_secgroups({sg_key: "rules", member_key: "ips"})
        with mock.patch.dict(sys.modules, {desired_mod.SECGROUPS_MODULE: fake}):
            report = self.resync.run().to_json()
        self.assertEqual(["ports", "secgroups", "remote_groups"], report["scopes"])
        self.assertEqual({sg_key: "differs", member_key: "missing"}, self.ops(report, "put"))
        self.assertEqual({stale: "extra"}, self.ops(report, "delete"))
        self.assertEqual(b"rules", self.etcd.get(sg_key).value)
        self.assertEqual(b"agent data", self.etcd.get(gpe).value)

    def test_without_the_secgroup_module_global_is_left_alone(self):
        stale = KEYS.secgroup("sg-gone")
        self.etcd.put(stale, "{}")
        with mock.patch.object(desired_mod, "_secgroup_source", return_value=None):
            report = self.resync.run().to_json()
        self.assertEqual(["ports"], report["scopes"])
        self.assertIn("desired_secgroup_state is not available", report["not_covered"][0])
        self.assertIsNotNone(self.etcd.get(stale))

    def test_host_resync_leaves_global_alone(self):
        report = self.resync.run(host=HOST1).to_json()
        self.assertEqual(["ports"], report["scopes"])
        self.assertIn("only a full resync", report["not_covered"][0])
