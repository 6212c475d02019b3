"""TLS (mutual, with REQUESTS_CA_BUNDLE set elsewhere) and token auth, on one etcd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from networking_vpp.common.etcd.client import (
    EtcdAuthError,
    EtcdClient,
    EtcdUnavailable,
)
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.pki import make_pki
from networking_vpp.testing.wait import wait_for

from .conftest import Mirror


@pytest.fixture(scope="module")
def secure() -> Iterator[EtcdServer]:
    # --snapshot-count 10: a restart then replays only recent raft entries, so the simple
    # tokens issued before are really gone (a token's Authenticate entry still in the WAL
    # would be replayed and the token would survive).
    server = EtcdServer(tls=True, auth=True, extra_args=("--snapshot-count", "10"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def other_ca(tmp_path, monkeypatch) -> str:
    """REQUESTS_CA_BUNDLE pointing at a CA that did not sign etcd's certificate."""
    bundle = make_pki(str(tmp_path / "other")).ca_cert
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)
    return bundle


def test_tls_with_our_ca_despite_requests_ca_bundle(secure: EtcdServer, other_ca: str) -> None:
    client = EtcdClient(secure.settings(user="root"))
    client.put("/tls/a", "x")
    kv = client.get("/tls/a")
    assert kv is not None and kv.value == b"x"
    assert secure.endpoint.startswith("https://")
    # The hazard this guards against: a default session lets the environment win over verify.
    assert secure.pki is not None
    naive = requests.Session()
    naive.verify = secure.pki.ca_cert
    naive.cert = (secure.pki.client_cert, secure.pki.client_key)
    with pytest.raises(requests.exceptions.SSLError):
        naive.post(secure.endpoint + "/v3/maintenance/status", json={}, timeout=5)


def test_tls_without_client_certificate_is_refused(secure: EtcdServer) -> None:
    client = EtcdClient(secure.settings(user="root", cert_file=None, key_file=None, timeout=1))
    with pytest.raises(EtcdUnavailable):
        client.get("/tls/a")


def test_users_and_permissions(secure: EtcdServer) -> None:
    neutron = EtcdClient(secure.settings(user="neutron"))
    neutron.put("/nvpp/a", "x")
    with pytest.raises(EtcdAuthError):
        neutron.put("outside/the/prefix", "x")  # neutron may only write under "/"
    wrong = EtcdClient(secure.settings(user="neutron", password="wrong"))
    with pytest.raises(EtcdAuthError):
        wrong.get("/nvpp/a")
    anonymous = EtcdClient(secure.settings(user=None))
    with pytest.raises(EtcdAuthError):
        anonymous.get("/nvpp/a")


def test_token_reauth_after_restart_for_requests_and_watches(secure: EtcdServer) -> None:
    client = EtcdClient(secure.settings(user="neutron", timeout=2))
    mirror = Mirror()
    watcher = PrefixWatcher(client, "/auth/", mirror.on_load, mirror.on_events, name="auth")
    watcher.start()
    try:
        assert watcher.wait_loaded(10)
        for i in range(30):  # push the Authenticate entry behind a snapshot
            client.put(f"/auth/k{i}", "v")
        old_token = client.transport.token
        secure.kill()
        secure.restart()
        raw = requests.Session()
        raw.trust_env = False
        assert secure.pki is not None
        raw.verify = secure.pki.ca_cert
        raw.cert = (secure.pki.client_cert, secure.pki.client_key)
        reply = raw.post(
            secure.endpoint + "/v3/kv/range",
            json={"key": "L2F1dGgvazA="},
            headers={"Authorization": old_token or ""},
            timeout=5,
        )
        assert reply.status_code == 401  # the old token is gone...
        kv = client.get("/auth/k0")  # ...and the client gets a new one by itself
        assert kv is not None and client.transport.token != old_token
        last = client.put("/auth/after", "restart")
        wait_for(lambda: watcher.last_revision == last, timeout=15, what="watch after re-auth")
        assert mirror.snapshot()["/auth/after"] == b"restart" and watcher.loads == 1
    finally:
        watcher.stop()
