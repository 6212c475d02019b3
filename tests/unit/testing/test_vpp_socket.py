"""The emulator's API socket, spoken to by the real vpp_papi client.

VPP's protocol as vpp_papi's socket transport speaks it: registration and
the message table (names with the CRCs of the generated ``.api.json``),
framing, dumps ended by the client's control_ping, events to subscribers,
and the connection's life (closed by a VPP restart, refused while VPP is
stopped).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vpp_papi import VPPApiClient

from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.socket_server import ApiServer

UPLINK = "GigabitEthernet0/8/0"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[VppEmulator, ApiServer]]:
    vpp = VppEmulator()
    vpp.add_hardware_interface(UPLINK, "52:54:00:00:08:00")
    server = ApiServer(vpp, str(tmp_path / "api.sock"), str(tmp_path / "api"))
    yield vpp, server
    server.close()


def client(server: ApiServer) -> VPPApiClient:
    return VPPApiClient(apidir=[server.api_dir], server_address=server.path, read_timeout=5)


@pytest.fixture
def papi(served: tuple[VppEmulator, ApiServer]) -> Iterator[VPPApiClient]:
    c = client(served[1])
    c.connect("test")
    yield c
    c.disconnect()


def test_the_message_table_names_every_message_with_its_generated_crc(served, papi):
    vpp, server = served
    crcs = {}
    for path in Path(server.api_dir).glob("*.api.json"):
        for m in json.loads(path.read_text())["messages"]:
            crcs[m[0]] = m[-1]["crc"]
    table = papi.dump_message_table()
    assert table == {f"{name}_{crc[2:]}": table[f"{name}_{crc[2:]}"] for name, crc in crcs.items()}
    assert table["sockclnt_create_" + crcs["sockclnt_create"][2:]] == 15
    assert table["sockclnt_create_reply_" + crcs["sockclnt_create_reply"][2:]] == 16
    for name in vpp.requests:
        assert callable(getattr(papi.api, name)), name


def test_calls_dumps_and_the_control_ping_that_ends_a_dump(served, papi):
    vpp, _ = served
    reply = papi.api.create_vlan_subif(sw_if_index=1, vlan_id=100)
    assert reply.retval == 0
    pings = vpp.calls["control_ping"]
    rows = papi.api.sw_interface_dump()
    assert [r.interface_name for r in rows] == ["local0", UPLINK, f"{UPLINK}.100"]
    assert vpp.calls["control_ping"] == pings + 1  # vpp_papi's, after the dump
    assert papi.api.sw_interface_dump(sw_if_index=99) == []
    assert papi.api.control_ping().vpe_pid == vpp.vpe_pid


def test_events_reach_subscribers_only_and_before_the_reply(served, papi):
    _, server = served
    seen: list[Any] = []
    papi.register_event_callback(lambda name, msg: seen.append((name, msg.sw_if_index)))
    assert papi.api.want_interface_events(enable_disable=1, pid=7).retval == 0
    other = client(server)
    other_seen: list[Any] = []
    other.register_event_callback(lambda name, msg: other_seen.append(name))
    other.connect("other")
    try:
        # this client's own change: its event is handled before its reply returns
        assert papi.api.sw_interface_set_flags(sw_if_index=1, flags=1).retval == 0
        assert seen == [("sw_interface_event", 1)]
        # another client's change reaches the subscriber on its reader thread
        arrived = threading.Event()
        papi.register_event_callback(lambda name, msg: arrived.set())
        assert other.api.sw_interface_set_flags(sw_if_index=1, flags=0).retval == 0
        assert arrived.wait(5)
        assert other_seen == []
    finally:
        other.disconnect()


def test_a_restart_closes_the_connection_and_the_socket_keeps_serving(served, papi):
    vpp, server = served
    pid = papi.api.control_ping().vpe_pid
    vpp.restart()
    with pytest.raises(OSError):
        papi.api.control_ping()  # EOF on the reader, or a broken pipe on the write
    papi.disconnect()
    papi.connect("again")
    assert papi.api.control_ping().vpe_pid != pid


def test_a_stopped_vpp_refuses_connections_until_it_starts(served, papi):
    vpp, server = served
    vpp.stop()
    with pytest.raises(OSError):
        papi.api.control_ping()
    papi.disconnect()
    with pytest.raises(OSError):
        client(server).connect("while stopped")
    vpp.start()
    papi.connect("back")
    assert papi.api.control_ping().retval == 0


def test_an_injected_io_failure_breaks_the_connection(served, papi):
    vpp, _ = served
    vpp.fail_next(message="sw_interface_set_flags")
    with pytest.raises(OSError):
        papi.api.sw_interface_set_flags(sw_if_index=1, flags=1)
    assert vpp.interface(1).admin_up is False


def test_disconnect_deletes_the_registration(served):
    vpp, server = served
    c = client(server)
    c.connect("leaving")
    c.api.want_interface_events(enable_disable=1, pid=1)
    assert vpp.state.subscribers
    c.disconnect()  # sockclnt_delete, answered, then the socket closes
    with vpp.lock:
        assert not vpp.state.subscribers


def test_an_unknown_message_ends_the_connection(served):
    _, server = served
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        raw.connect(server.path)
        body = struct.pack(">H", 9999) + b"\0" * 8
        raw.sendall(struct.pack(">QII", 0, len(body), 0) + body)
        assert raw.recv(16) == b""  # closed, no answer


def test_the_call_log_holds_each_served_message_with_its_arguments(tmp_path: Path):
    from networking_vpp.testing.vpp.socket_server import CallLog

    vpp = VppEmulator()
    vpp.add_hardware_interface(UPLINK, "52:54:00:00:08:00")
    log = CallLog()
    server = ApiServer(vpp, str(tmp_path / "api.sock"), str(tmp_path / "api"), call_log=log)
    c = client(server)
    c.connect("test")
    try:
        log.take()  # the handshake's own messages (control_ping ...)
        assert c.api.create_vlan_subif(sw_if_index=1, vlan_id=100).retval == 0
        assert c.api.sw_interface_set_flags(sw_if_index=99, flags=1).retval != 0
        c.api.sw_interface_dump()
        calls = log.take()
        assert [name for name, _ in calls] == [
            "create_vlan_subif",
            "sw_interface_set_flags",  # refused by VPP, yet served
            "sw_interface_dump",
            "control_ping",  # vpp_papi's, ending the dump
        ]
        assert calls[0][1] == {"sw_if_index": 1, "vlan_id": 100}
        assert calls[1][1]["sw_if_index"] == 99
        assert log.take() == []
    finally:
        c.disconnect()
        server.close()
