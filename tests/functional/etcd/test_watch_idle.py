"""A watch that sees no events is normal: no warning, no reconnect.

etcd tells an idle watch it is alive with progress notifications (every
``--experimental-watch-progress-notify-interval``, 10 minutes by default); the
watcher waits longer than that before it doubts the stream, and TCP keepalive
finds a connection whose peer is gone.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.stream import WatchStream
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.wait import wait_for

from .conftest import Mirror

P = "/nvpp/idle/"
#: etcd's default progress notification interval (seconds)
ETCD_PROGRESS_INTERVAL = 600


@pytest.fixture(scope="module")
def chatty_etcd() -> Iterator[EtcdServer]:
    """An etcd that sends watch progress every second."""
    server = EtcdServer(extra_args=("--experimental-watch-progress-notify-interval", "1s"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_idle_watch_hears_progress_and_stays(
    chatty_etcd: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = EtcdClient(chatty_etcd.settings())
    mirror = Mirror()
    # A watchdog above etcd's interval (here 1 s), as the default is above 10 min.
    watcher = PrefixWatcher(client, P, mirror.on_load, mirror.on_events, idle_timeout=2.5)
    caplog.set_level(logging.DEBUG)
    watcher.start()
    try:
        assert watcher.wait_loaded(10)
        wait_for(lambda: watcher.progress_notifications >= 4, 15, "4 progress notifications")
        assert watcher.reconnects == 0 and watcher.connected
        client.put(P + "k", "v")  # and the stream still carries events
        wait_for(lambda: mirror.snapshot().get(P + "k") == b"v", 5, "the event")
    finally:
        watcher.stop()
        client.close()
    assert warnings_of(caplog) == []


def test_default_watchdog_waits_longer_than_etcd_progress_interval(etcd: EtcdClient) -> None:
    watcher = PrefixWatcher(etcd, P, lambda *_: None, lambda _: None)
    assert watcher.idle_timeout > ETCD_PROGRESS_INTERVAL


def test_silent_stream_is_watched_again_without_a_warning(
    etcd: EtcdClient, caplog: pytest.LogCaptureFixture
) -> None:
    """etcd (default interval) says nothing within a short watchdog: the stream
    is made again, as routine (INFO), from the revision it had reached."""
    mirror = Mirror()
    watcher = PrefixWatcher(etcd, P, mirror.on_load, mirror.on_events, idle_timeout=0.5)
    caplog.set_level(logging.DEBUG)
    watcher.start()
    try:
        assert watcher.wait_loaded(10)
        wait_for(lambda: watcher.reconnects >= 2, 10, "two watchdog reconnects")
        etcd.put(P + "k", "v")
        wait_for(lambda: mirror.snapshot().get(P + "k") == b"v", 5, "the event")
    finally:
        watcher.stop()
    assert warnings_of(caplog) == []
    assert any("silent" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_etcd_connections_use_tcp_keepalive(etcd: EtcdClient) -> None:
    """A watch's peer that vanishes without a word (host down, partition) is
    found by TCP keepalive well before the watchdog."""
    stream = WatchStream(etcd.transport, P, None, 1, idle_timeout=None)
    replies = iter(stream)
    try:
        assert next(replies).created
        resp = stream._resp
        assert resp is not None
        sock = resp.raw._connection.sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        interval = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
        count = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
        assert idle + interval * count <= 120
    finally:
        stream.close()
