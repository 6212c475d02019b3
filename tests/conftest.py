"""Shared fixtures. Keep this small: area-specific fixtures live next to their tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.etcd import EtcdCluster, EtcdServer
from networking_vpp.testing.vpp import VppEmulator


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
def vpp() -> Iterator[VppEmulator]:
    """An emulated VPP with one uplink NIC, GigabitEthernet0/8/0 (sw_if_index 1).

    Events are delivered synchronously, so a test sees them as soon as the call
    that caused them returns.
    """
    emulator = VppEmulator(event_delivery="sync")
    emulator.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    yield emulator
    assert not emulator.event_errors, emulator.event_errors
