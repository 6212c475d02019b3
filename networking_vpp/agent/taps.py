"""The kernel devices of this host's tap ports: looked up, and watched.

A tap port's device (``tap<port_id[:11]>``, made by Nova, or by Neutron's DHCP
and L3 agents through the ``vpp`` interface driver) may appear before or after
its binding, and may go and come back (a DHCP agent restart). VPP's af_packet
attaches only to a device that exists, and does not follow it afterwards: when
the device goes, the VPP interface stays link-up with no event, and a device
made again under the same name stays black-holed (real-vpp-facts #3). So the
agent watches the kernel itself: a netlink socket bound to RTMGRP_LINK, read
by a thread that only tells the agent which of its ports to reconcile again.
The reconcile (ports.py) looks the device up by name and compares its ifindex
with the one the port's af_packet interface was attached to.

Several agents in one process (tests' fake hosts) see the same devices: each
watch only reports the names of its own ports.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
from collections.abc import Callable

from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

LOG = logging.getLogger(__name__)

_RCVBUF = 1 << 20  # link events of a busy host (a DHCP agent plugging hundreds of ports)
_RECV_SIZE = 1 << 16


def device_ifindex(ifname: str) -> int | None:
    """The ifindex of the device named ``ifname`` in our namespace (None: no such device)."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


class TapWatch:
    """Netlink link events, filtered on the devices of this agent's tap ports.

    ``on_change(port_id)`` is called (on the watch's thread) when the device of
    a watched port appears, changes or goes; ``on_overflow()`` when the kernel
    dropped events (the socket's buffer overflowed): every watched port may
    have changed. Both must only queue work.
    """

    def __init__(
        self,
        on_change: Callable[[str], None],
        on_overflow: Callable[[], None],
        name: str = "tap-watch",
    ) -> None:
        self._on_change = on_change
        self._on_overflow = on_overflow
        self._name = name
        self._lock = threading.Lock()  # the worker registers, the watch reads
        self._ports: dict[str, str] = {}  # device name -> port id
        self._names: dict[str, str] = {}  # port id -> device name
        self._bound: dict[str, int] = {}  # port id -> ifindex its af_packet is attached to
        self._sock: socket.socket | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None

    # --- the ports it watches (the reconcile's thread) -----------------------------------
    def watch(self, port_id: str, ifname: str) -> None:
        """Report changes of ``ifname``, the device of ``port_id``."""
        with self._lock:
            old = self._names.get(port_id)
            if old is not None and old != ifname:
                self._ports.pop(old, None)
            self._names[port_id] = ifname
            self._ports[ifname] = port_id

    def forget(self, port_id: str) -> None:
        """The port is no longer a tap port here."""
        with self._lock:
            ifname = self._names.pop(port_id, None)
            if ifname is not None:
                self._ports.pop(ifname, None)
        self._bound.pop(port_id, None)

    def ports(self) -> list[str]:
        """Every watched port."""
        with self._lock:
            return list(self._names)

    def attached(self, port_id: str, ifindex: int | None) -> None:
        """The port's af_packet interface is attached to device ``ifindex`` (None: none)."""
        if ifindex is None:
            self._bound.pop(port_id, None)
        else:
            self._bound[port_id] = ifindex

    def attached_to(self, port_id: str) -> int | None:
        """The device the port's af_packet interface was attached to, if known.

        Unknown for an interface found in VPP at start-up: af_packet's dump does
        not say, and the device there now is taken to be it.
        """
        return self._bound.get(port_id)

    # --- the thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Open the netlink socket (events from now on are seen) and start reading."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind((0, RTMGRP_LINK))
        self._sock = sock
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the socket."""
        if self._thread is None:
            return
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        marshal = MarshalRtnl()
        while True:
            ready, _, _ = select.select([sock.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = sock.recv(_RECV_SIZE)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    LOG.exception("Tap watch: netlink socket failed; watch ends")
                    return
                LOG.warning("Tap watch: link events were lost; looking at every tap port")
                self._on_overflow()
                continue
            try:
                self._dispatch(marshal.parse(data))
            except Exception:  # noqa: BLE001 - one bad message must not end the watch
                LOG.exception("Tap watch: cannot read a link event; looking at every tap port")
                self._on_overflow()

    def _dispatch(self, messages: object) -> None:
        changed = []
        with self._lock:
            for msg in messages:  # type: ignore[attr-defined]
                port_id = self._ports.get(msg.get_attr("IFLA_IFNAME"))
                if port_id is not None:
                    changed.append(port_id)
        for port_id in changed:
            self._on_change(port_id)
