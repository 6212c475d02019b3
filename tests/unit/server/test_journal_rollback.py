"""Journal rows live and die with Neutron's transaction.

A second mechanism driver, listed after vpp, raises in its precommit: ML2 rolls
the whole transaction back, and the rows vpp wrote in its own precommit of the
same transaction must be gone too.
"""

from __future__ import annotations

from unittest import mock

from neutron_lib.api.definitions import portbindings

from networking_vpp.server.journal import api as journal_api
from networking_vpp.testing.ml2_drivers import FailingMechanismDriver
from tests.unit.server import test_mech_driver as t


class RollbackCase(t.VppDriverTestCase):
    """A bound port, and a failing driver listed after vpp."""

    __test__ = False  # a base: collected through its subclasses only
    _mechanism_drivers = ["vpp", "vpp_test_failing"]

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(FailingMechanismDriver.fail_on.clear)
        self.port = self._port()
        self.row = self._binding_row(self.port["id"])
        self._take_journal()

    def _fail(self, method: str) -> None:
        FailingMechanismDriver.fail_on.add(method)
        # Spy on the journal: vpp's precommit did write, before the next driver raised.
        patcher = mock.patch.object(journal_api, "record", wraps=journal_api.record)
        self.record = patcher.start()
        self.addCleanup(patcher.stop)

    def _assert_untouched(self) -> None:
        self.assertTrue(self.record.called, "vpp wrote no row: the test proves nothing")
        self.assertEqual([], self._journal(everything=True))
        row = self._binding_row(self.port["id"])
        self.assertEqual(
            (self.row.host, self.row.binding_id, self.row.value),
            (row.host, row.binding_id, row.value),
        )


class TestJournalRollback(RollbackCase):
    __test__ = True

    def test_failed_port_update_leaves_no_row(self):
        self._fail("update_port_precommit")
        res = self._update(
            "ports",
            self.port["id"],
            {"port": {"allowed_address_pairs": [{"ip_address": "10.5.5.5"}]}},
            expected_code=500,
            as_admin=True,
        )
        self.assertIn("InjectedFailure", str(res))
        self._assert_untouched()
        self.assertEqual([], self._show_port(self.port["id"])["allowed_address_pairs"])

    def test_failed_rebind_leaves_no_row(self):
        self._fail("update_port_precommit")
        self._update(
            "ports",
            self.port["id"],
            {"port": {portbindings.HOST_ID: t.HOST2}},
            expected_code=500,
            as_admin=True,
        )
        self._assert_untouched()
        self.assertEqual(t.HOST1, self._show_port(self.port["id"])[portbindings.HOST_ID])

    def test_failed_mtu_change_leaves_no_row(self):
        self._fail("update_network_precommit")
        self._update(
            "networks", self.net["id"], {"network": {"mtu": 1400}}, expected_code=500, as_admin=True
        )
        self._assert_untouched()

    def test_failed_bind_commit_leaves_no_row(self):
        # The port is created, then its binding commit fails: ML2 deletes the port.
        self._fail("update_port_precommit")
        res = self._create_port(
            self.fmt,
            self.net["id"],
            arg_list=(portbindings.HOST_ID,),
            is_admin=True,
            **{portbindings.HOST_ID: t.HOST2},
        )
        self.assertEqual(500, res.status_int)
        self.assertTrue(self.record.called)
        self.assertEqual([], self._journal())
        # The port's creation committed (its security group membership with
        # it); the deletion that undid it deleted the membership again.
        last = dict(self._journal(everything=True))
        self.assertEqual({None}, set(last.values()) or {None})


class TestJournalRollbackOnDelete(RollbackCase):
    __test__ = True

    # ML2 calls delete_port_precommit in reverse driver order (teardown mirrors
    # binding), so the failing driver must be listed first to run after vpp.
    _mechanism_drivers = ["vpp_test_failing", "vpp"]

    def test_failed_delete_leaves_no_row(self):
        self._fail("delete_port_precommit")
        self._delete("ports", self.port["id"], expected_code=500, as_admin=True)
        self._assert_untouched()
        self._show_port(self.port["id"])  # still there
