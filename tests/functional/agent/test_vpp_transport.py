"""The agent's transport on VPP's API socket (``agent/vpp/transport.py``).

Against the emulator's socket server, through vpp_papi's client with our
transport in place of its own: replies reach the caller and events the
callback, in the order VPP sent them, however the socket cuts the stream; and
once VPP has gone, every read says so at once.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter, VppConnectionError
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.agent.vpp.transport import SocketTransport
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.socket_server import ApiServer
from networking_vpp.testing.wait import wait_for

NICS = 1500  # enough interface details to fill several reads (about 0.8 MB)


@pytest.fixture
def vpp() -> Iterator[tuple[VppEmulator, ApiServer]]:
    path = Path(tempfile.mkdtemp(prefix="vpp-tr-"))  # short: a socket path
    emulator = VppEmulator()
    server = ApiServer(emulator, str(path / "api.sock"), str(path / "api"))
    try:
        yield emulator, server
    finally:
        server.close()


def _adapter(server: ApiServer) -> VppAdapter:
    adapter = vpp_adapter(server.path, server.api_dir, "transport-test")
    adapter.connect()
    return adapter


def test_the_agent_uses_our_transport(vpp: tuple[VppEmulator, ApiServer]) -> None:
    adapter = _adapter(vpp[1])
    assert isinstance(adapter._client.transport, SocketTransport)
    adapter.disconnect()


def test_a_dump_longer_than_a_read_arrives_whole(vpp: tuple[VppEmulator, ApiServer]) -> None:
    emulator, server = vpp
    for i in range(NICS):
        emulator.add_hardware_interface(
            f"GigabitEthernet{i // 256}/{i % 256}/0", "52:54:00:00:00:01"
        )
    adapter = _adapter(server)
    names = [i.name for i in adapter.dump_interfaces()]
    assert len(names) == NICS + 1  # and local0
    assert names[-1] == f"GigabitEthernet{(NICS - 1) // 256}/{(NICS - 1) % 256}/0"
    adapter.disconnect()


def test_events_reach_the_callback_and_replies_the_caller(
    vpp: tuple[VppEmulator, ApiServer],
) -> None:
    emulator, server = vpp
    nics = [emulator.add_hardware_interface(f"eth{i}", "52:54:00:00:00:02") for i in range(50)]
    adapter = _adapter(server)
    events: list[t.InterfaceEvent] = []
    adapter.on_interface_event(events.append)
    with adapter.batch():  # 50 requests in flight; each change sends an event
        for idx in nics:
            adapter.set_admin_up(idx, True)
    wait_for(lambda: len(events) == len(nics), timeout=10, what="an event per change")
    assert [e.sw_if_index for e in events] == nics
    assert all(e.admin_up for e in events)
    assert all(i.admin_up for i in adapter.dump_interfaces() if i.sw_if_index in nics)
    adapter.disconnect()


def test_once_vpp_has_gone_every_read_says_so_at_once(
    vpp: tuple[VppEmulator, ApiServer],
) -> None:
    emulator, server = vpp
    adapter = _adapter(server)
    transport = adapter._client.transport
    emulator.restart()  # VPP's restart closes every API connection
    wait_for(transport._ended.is_set, timeout=10, what="the reader to see the end")
    started = time.monotonic()
    assert transport.read() is None
    assert transport.read() is None  # vpp_papi's own waited out its read timeout here
    assert time.monotonic() - started < 1.0
    with pytest.raises(VppConnectionError):
        adapter.ping()


def test_a_hung_vpp_fails_the_writer_instead_of_holding_it(
    vpp: tuple[VppEmulator, ApiServer],
) -> None:
    # VPP's main thread stops (the emulator's lock held): it reads no more of
    # its socket, whose buffer fills under a batch; the write must give up
    # after the read timeout, not block the agent (and its lock) for ever.
    emulator, server = vpp
    nic = emulator.add_hardware_interface("eth0", "52:54:00:00:00:03")
    adapter = vpp_adapter(server.path, server.api_dir, "hung-test", read_timeout=0.5)
    adapter.connect()
    outcome: list[BaseException | None] = []

    def program() -> None:
        try:
            with adapter.batch():
                for i in range(20_000):  # megabytes: far more than a socket buffer
                    adapter.set_tag(nic, f"tag-{i:040d}")
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            outcome.append(exc)

    with emulator.lock:
        worker = threading.Thread(target=program, daemon=True)
        worker.start()
        worker.join(10)
        stuck = worker.is_alive()
    worker.join(10)
    assert not stuck, "the write blocked while VPP was hung"
    assert len(outcome) == 1 and isinstance(outcome[0], VppConnectionError), outcome
