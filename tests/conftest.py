"""Shared fixtures. Keep this small: area-specific fixtures live next to their tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.etcd import EtcdCluster, EtcdServer
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.socket_server import ApiServer, serve


@pytest.fixture(scope="module")
def etcd_server() -> Iterator[EtcdServer]:
    """One real etcd per test module (killed at teardown, whatever happened)."""
    server = EtcdServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def etcd(etcd_server: EtcdServer) -> Iterator[EtcdClient]:
    """A client of ``etcd_server``, emptied before the test (revived if a test killed it)."""
    if not etcd_server.running:
        etcd_server.restart()
    client = EtcdClient(etcd_server.settings())
    client.delete_prefix("")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def etcd_cluster() -> Iterator[EtcdCluster]:
    """A 3-member etcd cluster on loopback, per test module."""
    cluster = EtcdCluster(3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def vpp() -> VppEmulator:
    """An emulated VPP with one uplink NIC, GigabitEthernet0/8/0 (sw_if_index 1).

    Tests talk to it through its API socket with vpp_papi (``vpp_api``).
    """
    emulator = VppEmulator()
    emulator.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    return emulator


@pytest.fixture
def serve_vpp() -> Iterator[Callable[[VppEmulator], ApiServer]]:
    """Serves an emulator on an API socket of its own, closed after the test."""
    servers: list[ApiServer] = []

    def serve_one(emulator: VppEmulator) -> ApiServer:
        servers.append(serve(emulator))
        return servers[-1]

    yield serve_one
    for server in servers:
        server.close()


@pytest.fixture
def vpp_api(vpp: VppEmulator, serve_vpp: Callable[[VppEmulator], ApiServer]) -> ApiServer:
    """The ``vpp`` fixture's API socket: ``vpp_api.connect("test").api.<message>(...)``,
    or ``VppAdapter(vpp_api.client)``. An event reaches a client's callback before
    the reply to any call that client makes afterwards (``control_ping`` waits for it)."""
    return serve_vpp(vpp)
