"""``networking-vpp journal`` on a real database (an SQLite file with Neutron's
tables) and a real etcd, with the real forwarder and election."""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from neutron.db import models_v2  # noqa: F401 - 'ports', which the tables below refer to
from neutron.db.models import securitygroup  # noqa: F401 - 'securitygroups', likewise

from networking_vpp.cli import main as cli
from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.election import Election
from networking_vpp.server.journal import models
from networking_vpp.server.journal.forwarder import ROLE, Forwarder, wait_drained
from networking_vpp.testing.journal import JournalDb

K = keys.KeySpace()
PORT_KEY = K.port("compute-1", "p1")
MEMBER_KEY = K.remote_group_member("sg1", "p1")
GROUP_KEY = K.secgroup("sg1")


class Rig:
    """A journal database, a neutron.conf pointing at it and at etcd."""

    def __init__(self, tmp_path: Path, etcd: EtcdClient) -> None:
        self.etcd = etcd
        self.db = JournalDb(str(tmp_path / "neutron.sqlite"))
        # The tables whose rows say what the journal last wrote for a key
        # (replay consults them); their foreign keys are not enforced here.
        tables = models.VppJournal.metadata.tables
        for name in (
            "vpp_port_bindings",
            "vpp_port_destinations",
            "vpp_remote_group_members",
            # a security group's owner row, which a replay of its key locks
            "standardattributes",
            "securitygroups",
        ):
            tables[name].create(self.db.engine, checkfirst=True)
        self.conf = tmp_path / "neutron.conf"
        self.conf.write_text(
            f"[database]\nconnection = sqlite:///{self.db.path}\n"
            f"[etcd]\nendpoints = {etcd.settings.endpoints[0]}\n"
        )

    def run(self, *argv: str) -> tuple[int, str]:
        args = cli.parser().parse_args(["journal", *argv, "--config-file", str(self.conf)])
        out = io.StringIO()
        code = args.run(args, out)
        return code, out.getvalue()

    def show(self, *argv: str) -> dict:
        code, text = self.run("--json", *argv)
        assert code == 0, text
        return json.loads(text)

    def sql(self, statement: str, **params: object) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def dead_letter(self, key: str, value: str | None, reason: str = "too big") -> int:
        """Journal a row and set it aside as the forwarder does with what etcd refuses."""
        self.db.write([(key, value)])
        row = [r for r in self.db.store.fetch(1000) if r.key == key][-1]
        self.db.store.dead_letter([row], reason)
        return row.id

    def forwarder(self) -> Forwarder:
        return Forwarder(self.db.store, self.etcd, K, identity="fwd-1", poll_interval=0.1)


@pytest.fixture
def rig(tmp_path: Path, etcd: EtcdClient) -> Iterator[Rig]:
    r = Rig(tmp_path, etcd)
    yield r
    r.db.close()


def test_an_empty_healthy_journal_passes_the_check(rig: Rig) -> None:
    view = rig.show()
    assert view["pending"] == {"count": 0, "oldest_age": None, "oldest": []}
    assert view["dead"] == []
    assert view["leader"] is None
    assert rig.run("--check")[0] == 0


def test_pending_rows_dead_rows_and_the_leader(rig: Rig, etcd: EtcdClient) -> None:
    rig.db.write([(PORT_KEY, "{}"), (MEMBER_KEY, "{}")])
    rig.db.write([(GROUP_KEY, None)])
    dead_id = rig.dead_letter(K.port("compute-2", "p9"), "x", "etcd: request is too large")
    election = Election(etcd, K.election(ROLE), "neutron-server-1:4242", ttl=2)
    election.start()
    try:
        assert election.wait_leader(10)
        view = rig.show("--oldest", "2")
        code, text = rig.run()  # the human view says the same
    finally:
        election.stop()

    assert view["pending"]["count"] == 3
    assert [r["key"] for r in view["pending"]["oldest"]] == [PORT_KEY, MEMBER_KEY]
    assert 0 <= view["pending"]["oldest_age"] < 60
    [dead] = view["dead"]
    assert dead["id"] == dead_id
    assert dead["key"] == K.port("compute-2", "p9")
    assert dead["reason"] == "etcd: request is too large"
    assert dead["failed_at"]
    assert view["leader"] == "neutron-server-1:4242"

    assert code == 0
    assert "3 pending" in text and PORT_KEY in text
    assert "neutron-server-1:4242" in text and "request is too large" in text


def test_check_fails_on_a_stalled_journal_and_on_dead_rows(rig: Rig) -> None:
    rig.db.write([(PORT_KEY, "{}")])
    assert rig.run("--check", "--stall-after", "600")[0] == 0
    an_hour_ago = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        hours=1
    )
    rig.sql("UPDATE vpp_journal SET created_at = :t", t=an_hour_ago)
    code, text = rig.run("--check", "--stall-after", "600")
    assert code == 1
    assert "stalled" in text

    rig.sql("DELETE FROM vpp_journal")
    dead_id = rig.dead_letter(GROUP_KEY, "{}")
    code, text = rig.run("--check")
    assert code == 1
    assert "dead" in text
    assert rig.run("drop", str(dead_id))[0] == 0
    assert rig.show()["dead"] == []
    assert rig.run("--check")[0] == 0
    assert rig.run("drop", str(dead_id))[0] == 1  # no such row any more


def test_replay_moves_a_dead_row_back_and_the_forwarder_writes_it(
    rig: Rig, etcd: EtcdClient
) -> None:
    rig.db.write([(PORT_KEY, '{"early": 1}')])  # an older row of another key
    rig.sql(
        "INSERT INTO vpp_remote_group_members (port_id, security_group_id, value) "
        "VALUES ('p1', 'sg1', '[\"10.0.0.1\"]')"
    )
    dead_id = rig.dead_letter(MEMBER_KEY, '["10.0.0.1"]')

    code, text = rig.run("replay", str(dead_id))
    assert code == 0, text
    assert rig.show()["dead"] == []
    pending = rig.db.store.fetch(10)
    assert [r.key for r in pending] == [PORT_KEY, MEMBER_KEY]
    assert pending[-1].id > pending[0].id  # after whatever is pending: order kept

    forwarder = rig.forwarder()
    forwarder.start()
    try:
        assert wait_drained(forwarder, 10)
    finally:
        forwarder.stop()
    kv = etcd.get(MEMBER_KEY)
    assert kv is not None and kv.value == b'["10.0.0.1"]'


def test_replay_refuses_a_row_that_a_newer_value_of_its_key_supersedes(rig: Rig) -> None:
    # A newer row of the key is pending: it carries the latest value.
    rig.sql(
        "INSERT INTO vpp_remote_group_members (port_id, security_group_id, value) "
        "VALUES ('p1', 'sg1', '[\"10.0.0.2\"]')"
    )
    dead_id = rig.dead_letter(MEMBER_KEY, '["10.0.0.1"]')
    rig.db.write([(MEMBER_KEY, '["10.0.0.2"]')])
    code, text = rig.run("replay", str(dead_id))
    assert code == 1
    assert "newer" in text
    assert [d["id"] for d in rig.show()["dead"]] == [dead_id]  # left for the operator

    # The newer row was forwarded already: what the journal last wrote differs.
    rig.sql("DELETE FROM vpp_journal")
    code, text = rig.run("replay", str(dead_id))
    assert code == 1
    assert "newer" in text
    assert rig.db.store.pending() == 0


def test_replay_of_a_key_whose_latest_value_is_not_recorded_needs_force(rig: Rig) -> None:
    dead_id = rig.dead_letter(GROUP_KEY, '{"rules": []}')
    code, text = rig.run("replay", str(dead_id))
    assert code == 1
    assert "resync" in text  # the way to re-derive it
    assert rig.run("replay", str(dead_id), "--force")[0] == 0
    assert [r.key for r in rig.db.store.fetch(10)] == [GROUP_KEY]


def test_replay_of_a_port_key_follows_the_binding_the_journal_holds(rig: Rig) -> None:
    rig.sql(
        "INSERT INTO vpp_port_bindings (port_id, host, binding_id, value) "
        "VALUES ('p1', 'compute-1', 'b1', '{\"v\": 2}')"
    )
    stale = rig.dead_letter(PORT_KEY, '{"v": 1}')
    assert rig.run("replay", str(stale))[0] == 1
    current = rig.dead_letter(PORT_KEY, '{"v": 2}')
    assert rig.run("drop", str(stale))[0] == 0
    assert rig.run("replay", str(current))[0] == 0
    # An unbind that etcd refused (a delete) replays while the port is bound elsewhere.
    gone = rig.dead_letter(K.port("compute-2", "p1"), None)
    assert rig.run("replay", str(gone))[0] == 0
