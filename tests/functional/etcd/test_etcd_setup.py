"""``networking-vpp etcd-setup`` against a real etcd: auth on, one identity per host.

Each test starts its own etcd (auth enabled is for good on a data directory).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from networking_vpp.cli import etcd_setup
from networking_vpp.cli.main import main
from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdAuthError, EtcdClient, EtcdSettings
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.wait import wait_for

from .conftest import Mirror

KEYS = keys.KeySpace()
HOSTS = ("compute-1", "compute-2")


@pytest.fixture
def server() -> Iterator[EtcdServer]:
    etcd = EtcdServer()
    try:
        etcd.start()
        yield etcd
    finally:
        etcd.stop()


def run(server: EtcdServer, out: Path, *args: str) -> int:
    return main(["etcd-setup", "--etcd-endpoint", server.endpoint, "--output", str(out), *args])


def client_for(server: EtcdServer, snippet: Path, **over: object) -> EtcdClient:
    user, password = etcd_setup.read_identity(snippet)
    settings = server.settings(user=None, timeout=2.0, **over)
    settings.username, settings.password = user, password
    return EtcdClient(settings)


def refused(action: Callable[[], object]) -> bool:
    try:
        action()
    except EtcdAuthError:
        return True
    return False


def test_setup_enables_auth_and_each_identity_holds_only_its_keys(server, tmp_path, capsys):
    out = tmp_path / "ids"
    assert run(server, out, "--host", "compute-1,compute-2") == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["host-compute-1.ini", "host-compute-2.ini", "root.ini", "server.ini"]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    printed = capsys.readouterr()
    for path in out.iterdir():  # no secret on the terminal
        assert etcd_setup.read_identity(path)[1] not in printed.out + printed.err

    anonymous = EtcdClient(server.settings(user=None, timeout=2.0))
    assert refused(lambda: anonymous.get(KEYS.port("compute-1", "p")))

    root = client_for(server, out / "root.ini")
    server_id = client_for(server, out / "server.ini")
    c1 = client_for(server, out / "host-compute-1.ini")
    try:
        # The server journals the desired state, elects, kicks, and reads the reports.
        server_id.put(KEYS.port("compute-1", "p1"), "binding")
        server_id.put(KEYS.port("compute-2", "p2"), "binding")
        server_id.put(KEYS.secgroup("sg"), "rules")
        server_id.put(KEYS.remote_group_member("sg", "p1"), "ips")
        server_id.put(KEYS.election("forwarder"), "me")
        server_id.put(KEYS.kick("forwarder"), "")
        root.put(KEYS.port_state("compute-2", "p2"), "report")
        assert server_id.get_prefix(KEYS.state_prefix())[0]
        assert refused(lambda: server_id.put(KEYS.port_state("compute-1", "p1"), "forged"))
        assert refused(lambda: server_id.put("/elsewhere", "x"))

        # A host reads its bindings and every group, and writes its own reports...
        assert c1.get(KEYS.port("compute-1", "p1")) is not None
        assert len(c1.get_prefix(KEYS.global_prefix())[0]) == 2
        lease = c1.lease_grant(5)
        c1.put(KEYS.alive("compute-1"), "up", lease=lease)
        assert c1.lease_keepalive(lease) > 0
        c1.put(KEYS.port_state("compute-1", "p1"), "report")
        c1.put(KEYS.summary("compute-1"), "summary")
        assert c1.get(KEYS.summary("compute-1")) is not None
        c1.delete(KEYS.port_state("compute-1", "p1"))
        c1.lease_revoke(lease)
        assert root.get(KEYS.alive("compute-1")) is None
        # ...and nothing else.
        attempts = [
            lambda: c1.put(KEYS.port("compute-1", "p1"), "own desired state"),
            lambda: c1.put(KEYS.port("compute-2", "p2"), "x"),
            lambda: c1.get(KEYS.port("compute-2", "p2")),
            lambda: c1.put(KEYS.port_state("compute-2", "p2"), "forged"),
            lambda: c1.get(KEYS.port_state("compute-2", "p2")),
            lambda: c1.put(KEYS.secgroup("sg"), "open"),
            lambda: c1.delete(KEYS.election("forwarder")),
            lambda: c1.put(KEYS.election("forwarder"), "me"),
            lambda: c1.get(KEYS.election("forwarder")),
            lambda: c1.put(KEYS.kick("forwarder"), ""),
            lambda: c1.get_prefix(KEYS.nodes_prefix()),
        ]
        assert [refused(a) for a in attempts] == [True] * len(attempts)
    finally:
        for c in (anonymous, root, server_id, c1):
            c.close()


def test_a_host_identity_can_watch_its_bindings(server, tmp_path):
    out = tmp_path / "ids"
    assert run(server, out, "--host", "compute-1") == 0
    server_id = client_for(server, out / "server.ini")
    c1 = client_for(server, out / "host-compute-1.ini")
    mirror = Mirror()
    watcher = PrefixWatcher(
        c1, KEYS.host_ports_prefix("compute-1"), mirror.on_load, mirror.on_events, name="w"
    )
    watcher.start()
    try:
        assert watcher.wait_loaded(10)
        last = server_id.put(KEYS.port("compute-1", "p1"), "binding")
        wait_for(lambda: watcher.last_revision == last, timeout=10, what="the event")
        assert mirror.snapshot() == {KEYS.port("compute-1", "p1"): b"binding"}
    finally:
        watcher.stop()
        c1.close()
        server_id.close()


def roles_and_users(server: EtcdServer, out: Path) -> dict[str, object]:
    root = client_for(server, out / "root.ini")
    try:
        admin = etcd_setup.AuthAdmin(root)
        return {
            "users": {u: admin.user_roles(u) for u in admin.users()},
            "roles": {r: admin.role_perms(r) for r in admin.roles()},
        }
    finally:
        root.close()


def test_setup_is_idempotent_and_adds_hosts(server, tmp_path, capsys):
    out = tmp_path / "ids"
    assert run(server, out, "--host", "compute-1") == 0
    before = roles_and_users(server, out)
    files = {p.name: p.read_text() for p in out.iterdir()}
    capsys.readouterr()

    assert run(server, out, "--host", "compute-1", "--dry-run") == 0
    assert "no change" in capsys.readouterr().out
    assert run(server, out, "--host", "compute-1") == 0
    assert "no change" in capsys.readouterr().out
    assert roles_and_users(server, out) == before
    assert {p.name: p.read_text() for p in out.iterdir()} == files

    # A new host: --dry-run says what it would do (and exits 1), and does nothing.
    assert run(server, out, "--host", "compute-3", "--dry-run") == 1
    planned = capsys.readouterr().out
    assert "networking-vpp-host-compute-3" in planned and "READ" in planned
    assert not (out / "host-compute-3.ini").exists()
    assert roles_and_users(server, out) == before
    # The hosts already set up stay (and are checked) without being named again.
    assert run(server, out, "--host", "compute-3") == 0
    c3 = client_for(server, out / "host-compute-3.ini")
    c1 = client_for(server, out / "host-compute-1.ini")
    try:
        c3.put(KEYS.port_state("compute-3", "p"), "report")
        c1.put(KEYS.port_state("compute-1", "p"), "report")
    finally:
        c3.close()
        c1.close()


def test_setup_takes_the_agents_already_seen(server, tmp_path):
    plain = EtcdClient(server.settings(user=None))
    plain.put(KEYS.alive("compute-7"), "up")
    plain.put(KEYS.port_state("compute-8", "p"), "report")
    plain.close()
    out = tmp_path / "ids"
    assert run(server, out, "--seen") == 0
    assert (out / "host-compute-7.ini").exists() and (out / "host-compute-8.ini").exists()


def test_setup_repairs_permissions_that_drifted(server, tmp_path, capsys):
    out = tmp_path / "ids"
    assert run(server, out, "--host", "compute-1") == 0
    root = client_for(server, out / "root.ini")
    try:
        admin = etcd_setup.AuthAdmin(root)
        role = etcd_setup.host_user("compute-1")
        admin.grant_perm(role, etcd_setup.Perm.prefix("READWRITE", KEYS.nodes_prefix()))
        admin.grant_role(role, "root")
    finally:
        root.close()
    capsys.readouterr()
    assert run(server, out, "--dry-run") == 1
    planned = capsys.readouterr().out
    assert "revoke" in planned and "root" in planned
    assert run(server, out) == 0
    c1 = client_for(server, out / "host-compute-1.ini")
    try:
        assert refused(lambda: c1.put(KEYS.port("compute-2", "p"), "x"))
    finally:
        c1.close()


def test_an_identity_whose_password_is_unknown_is_reported_and_can_be_reset(
    server, tmp_path, capsys
):
    out = tmp_path / "ids"
    assert run(server, out, "--host", "compute-1") == 0
    (out / "host-compute-1.ini").unlink()
    assert run(server, out) == 1
    assert "--reset-passwords" in capsys.readouterr().err
    assert run(server, out, "--reset-passwords") == 0
    c1 = client_for(server, out / "host-compute-1.ini")
    try:
        c1.put(KEYS.port_state("compute-1", "p"), "report")
    finally:
        c1.close()


def test_operator_passwords_are_taken_from_the_snippets(server, tmp_path):
    out = tmp_path / "ids"
    out.mkdir()
    etcd_setup.write_identity(out / "root.ini", "root", "operator-root")
    etcd_setup.write_identity(
        out / "host-compute-1.ini", etcd_setup.host_user("compute-1"), "operator-host"
    )
    assert run(server, out, "--host", "compute-1") == 0
    assert etcd_setup.read_identity(out / "host-compute-1.ini")[1] == "operator-host"
    c1 = client_for(server, out / "host-compute-1.ini")
    try:
        c1.put(KEYS.port_state("compute-1", "p"), "report")
    finally:
        c1.close()
    # A snippet that does not match the user's password is said, not overwritten.
    etcd_setup.write_identity(
        out / "host-compute-1.ini", etcd_setup.host_user("compute-1"), "wrong"
    )
    assert run(server, out) == 1


def test_setup_over_tls_with_client_certificates(tmp_path):
    etcd = EtcdServer(tls=True)
    etcd.start()
    try:
        assert etcd.pki is not None
        conf = tmp_path / "etcd.ini"
        conf.write_text(
            "[etcd]\n"
            f"endpoints = {etcd.endpoint}\n"
            f"ca_cert = {etcd.pki.ca_cert}\n"
            f"cert_file = {etcd.pki.client_cert}\n"
            f"key_file = {etcd.pki.client_key}\n"
        )
        out = tmp_path / "ids"
        argv = ["etcd-setup", "--config-file", str(conf), "--output", str(out)]
        assert main([*argv, "--host", "compute-1"]) == 0
        # The agent's files: its own configuration, then its identity.
        agent_conf = EtcdSettings.from_conf(_conf(conf, out / "host-compute-1.ini"))
        c1 = EtcdClient(agent_conf)
        try:
            c1.put(KEYS.port_state("compute-1", "p"), "report")
            assert refused(lambda: c1.put(KEYS.port_state("compute-2", "p"), "x"))
        finally:
            c1.close()
    finally:
        etcd.stop()


def _conf(*files: Path):  # noqa: ANN202 - an oslo ConfigOpts
    from oslo_config import cfg

    from networking_vpp.common import config

    conf = cfg.ConfigOpts()
    config.register_etcd_opts(conf)
    args: list[str] = []
    for path in files:
        args += ["--config-file", str(path)]
    conf(args=args, project="test", default_config_files=[], default_config_dirs=[])
    return conf


def test_snippets_are_private_even_under_a_loose_umask(tmp_path):
    old = os.umask(0)
    try:
        etcd_setup.write_identity(tmp_path / "x.ini", "u", "p")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.ini").stat().st_mode) == 0o600
    assert etcd_setup.read_identity(tmp_path / "x.ini") == ("u", "p")
