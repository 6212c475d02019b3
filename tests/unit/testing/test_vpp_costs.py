"""VPP's service times, charged by the emulator's socket: one main thread for every client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vpp_papi import VPPApiClient

from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.costs import DEFAULT_SERVICE, DEFAULTS, CostModel
from networking_vpp.testing.vpp.socket_server import ApiServer
from networking_vpp.testing.wait import wait_for

SLOW = 0.3  # seconds: well above any machine's scheduling noise


def test_the_table_has_vpps_measured_times_and_takes_overrides():
    model = CostModel()
    assert model.service("af_packet_create_v3") == DEFAULTS["af_packet_create_v3"] == 59e-3
    assert model.service("sw_interface_set_flags") == DEFAULT_SERVICE
    assert model.service("sw_interface_dump", details=10) == pytest.approx(
        DEFAULT_SERVICE + 10 * model.per_detail
    )
    mine = CostModel.parse("af_packet_create_v3=0.37, default=0.001,per_detail=0")
    assert mine.service("af_packet_create_v3") == 0.37
    assert mine.service("control_ping") == 0.001
    assert mine.service("sw_interface_dump", details=99) == 0.001
    assert CostModel.parse("").service("af_packet_create_v3") == 59e-3
    with pytest.raises(ValueError, match="expected"):
        CostModel.parse("af_packet_create_v3")


def test_messages_are_served_one_after_the_other_in_arrival_order():
    model = CostModel(overrides={"slow": 1.0, "fast": 0.1})
    assert model.charge(10.0, "slow") == 11.0
    # arrived while the main thread was busy: starts when the slow one is done
    assert model.charge(10.5, "fast") == pytest.approx(11.1)
    # arrived after an idle spell: starts at once
    assert model.charge(20.0, "fast") == pytest.approx(20.1)
    assert model.charged == pytest.approx(1.2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[VppEmulator, ApiServer]]:
    vpp = VppEmulator()
    vpp.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    costs = CostModel(overrides={"sw_interface_set_flags": SLOW})
    server = ApiServer(vpp, str(tmp_path / "api.sock"), str(tmp_path / "api"), costs)
    yield vpp, server
    server.close()


def connected(server: ApiServer, name: str) -> VPPApiClient:
    c = VPPApiClient(apidir=[server.api_dir], server_address=server.path, read_timeout=5)
    c.connect(name)
    return c


def test_a_slow_message_delays_the_next_one_from_another_client(served):
    vpp, server = served
    a, b = connected(server, "a"), connected(server, "b")
    try:
        started = time.monotonic()
        slow = threading.Thread(target=lambda: a.api.sw_interface_set_flags(sw_if_index=1, flags=1))
        slow.start()
        wait_for(lambda: vpp.calls["sw_interface_set_flags"] == 1, 5, "the slow message served")
        assert b.api.control_ping().retval == 0
        # VPP's main thread was busy with a's message: b's ping waited behind it
        assert time.monotonic() - started >= SLOW
        slow.join(5)
        assert vpp.interface(1).admin_up
    finally:
        a.disconnect()
        b.disconnect()
    assert server.costs is not None
    assert server.costs.charged >= SLOW


def test_without_a_model_nothing_is_charged(tmp_path):
    vpp = VppEmulator()
    server = ApiServer(vpp, str(tmp_path / "api.sock"), str(tmp_path / "api"))
    try:
        c = connected(server, "plain")
        assert c.api.control_ping().retval == 0
        c.disconnect()
        assert server.costs is None
    finally:
        server.close()
