"""The fake Nova answers Neutron's notifier as Nova does and keeps arrival times."""

from __future__ import annotations

import json
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from networking_vpp.testing.devcloud import web
from networking_vpp.testing.fake_nova import (
    EVENTS_PATH,
    FakeNovaServer,
    MetadataServer,
    instance_signature,
)


@pytest.fixture
def nova() -> Iterator[str]:
    server = FakeNovaServer(0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def event(tag: str, name: str = "network-vif-plugged") -> dict[str, str]:
    return {"server_uuid": "srv-" + tag, "name": name, "status": "completed", "tag": tag}


def test_events_are_accepted_and_recorded_with_arrival_time(nova: str) -> None:
    before = time.time()
    reply = web.request_json(
        "POST", nova + EVENTS_PATH, {"events": [event("p1"), event("p2", "network-changed")]}
    )
    assert [e["code"] for e in reply["events"]] == [200, 200]
    assert reply["events"][0]["tag"] == "p1"

    recorded = web.get_json(nova + "/events")["events"]
    assert [e["tag"] for e in recorded] == ["p1", "p2"]
    assert all(before <= e["received_at"] <= time.time() for e in recorded)
    plugged = web.get_json(nova + "/events?name=network-vif-plugged&tag=p1")["events"]
    assert [e["tag"] for e in plugged] == ["p1"]
    assert web.get_json(nova + "/events?tag=nope")["events"] == []


def test_clear_and_bad_requests(nova: str) -> None:
    web.request_json("POST", nova + EVENTS_PATH, {"events": [event("p1")]})
    web.request_json("DELETE", nova + "/events")
    assert web.get_json(nova + "/events")["events"] == []
    with pytest.raises(Exception, match="400"):
        web.request_json("POST", nova + EVENTS_PATH, {"no": "events"})
    with pytest.raises(Exception, match="404"):
        web.request_json("POST", nova + "/v2.1/servers", {})


# --- the metadata API behind Neutron's metadata agent ---------------------------------
SECRET = "s3cret"


@pytest.fixture
def metadata() -> Iterator[str]:
    server = MetadataServer(0, SECRET)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _signed(instance: str, signature: str | None = None) -> dict[str, str]:
    # Signed as Neutron's metadata agent signs (neutron.common.utils.sign_instance_id).
    from neutron.common import utils as n_utils

    conf = types.SimpleNamespace(metadata_proxy_shared_secret=SECRET)
    return {
        "X-Instance-ID": instance,
        "X-Tenant-ID": "proj-1",
        "X-Forwarded-For": "10.0.0.5",
        "X-Instance-ID-Signature": signature or n_utils.sign_instance_id(conf, instance),
    }


def test_metadata_answers_the_metadata_agent(metadata: str) -> None:
    instance = "4a0f4e5c-0d53-4d2c-9f59-6a4a8b0e1f00"
    assert _get(metadata + "/", _signed(instance)) == (200, "latest")
    assert _get(metadata + "/latest/meta-data/instance-id", _signed(instance)) == (200, instance)
    assert _get(metadata + "/latest/meta-data/local-ipv4", _signed(instance)) == (200, "10.0.0.5")
    code, body = _get(metadata + "/openstack/latest/meta_data.json", _signed(instance))
    assert code == 200
    assert json.loads(body)["uuid"] == instance
    assert json.loads(body)["project_id"] == "proj-1"
    assert _get(metadata + "/nope", _signed(instance))[0] == 404


def test_metadata_refuses_a_bad_signature(metadata: str) -> None:
    instance = "4a0f4e5c-0d53-4d2c-9f59-6a4a8b0e1f00"
    other = instance_signature(SECRET, "another-instance")
    assert _get(metadata + "/", _signed(instance, signature=other))[0] == 403
    assert _get(metadata + "/", _signed(instance, signature="0" * 64))[0] == 403
    wrong_secret = instance_signature("not-the-secret", instance)
    assert _get(metadata + "/", _signed(instance, signature=wrong_secret))[0] == 403
    assert _get(metadata + "/", {})[0] == 403
