"""The fake Nova answers Neutron's notifier as Nova does and keeps arrival times."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from networking_vpp.testing.devcloud import web
from networking_vpp.testing.fake_nova import EVENTS_PATH, FakeNovaServer


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
