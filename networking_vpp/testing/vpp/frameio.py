"""Real frames on af_packet interfaces bound to real kernel devices.

A VPP af_packet interface is a PACKET socket bound to its device's ifindex
(``src/plugins/af_packet``): frames the kernel hands the device (from a veth's
other end: a namespace standing in for a VM, a DHCP agent's port, an uplink)
are read from it, and frames VPP sends by the interface are written to it. The
emulator does the same with one ``SOCK_RAW`` socket per interface (made when
the interface is created, closed when it is deleted or VPP stops) and one
reader thread for all of them, which runs the packet walk (``packet.walk``:
ethernet-input with tags, L2 learning, flooding, tag rewrite, ACLs with
sessions, MACIP) under the emulator's lock and writes each copy the walk gives
by the socket of the port it leaves, with the tags it leaves with. Copies
leaving by anything else (vhost-user, emulated NICs without a wire) reach
no one; a NIC given a wire device (``add_hardware_interface(wire=...)``)
reads and writes that device as an af_packet interface would.

What the kernel does to these sockets is the kernel's: frames to or from a
device that went away vanish (the socket is dead, also for a device made
again under the same name), and a device set down reads nothing. What
af_packet does with them:

* the kernel strips a frame's outer VLAN tag into the packet's metadata
  (``PACKETAUXDATA``); af_packet-input puts it back (as 802.1Q, which the walk
  does) before ethernet-input;
* with CKSUM_GSO the socket carries a virtio-net header (``PACKET_VNET_HDR``):
  a frame the kernel left with a partial TCP/UDP checksum (NEEDS_CSUM) leaves
  with a complete one, a TCP GSO super-frame leaves as segments
  (``rawframe.py``); without it the bytes leave as they came, partial checksum
  and all, and the receiving kernel drops them (real-vpp-facts #1, #13);
* a frame longer than the MTU the receiving device allows fails to send and
  is dropped (VPP's tx error);
* af_packet reads every frame the socket gets, including those the host's
  kernel itself sends out of the device (``PACKET_OUTGOING``); never its own,
  which the kernel does not loop back to the socket that sent them.

Interfaces in IP mode (no Ethernet header) carry no frames here.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import logging
import os
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from networking_vpp.testing.vpp import packet, rawframe
from networking_vpp.testing.vpp.vlan import Tag

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.state import Interface, State

LOG = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKETAUXDATA, PACKET_VNET_HDR = 8, 15
TP_STATUS_CSUMNOTREADY, TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 1 << 3, 1 << 4, 1 << 6
AUXDATA = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
_VNET_HDR = struct.Struct("=BBHHHH")  # struct virtio_net_hdr
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_ECN = 1, 4, 0x80
_TCP_GSO = frozenset({VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6})
_NO_VNET_HDR = bytes(_VNET_HDR.size)  # no offload asked of the kernel
_MAX_FRAME = 65536 + 64  # a GSO super-frame, tags and virtio-net header
_BATCH = 64  # frames read from one socket before looking at the others
_RCVBUF = 4 << 20
_CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class Vpp(Protocol):
    """What the frame I/O needs of the emulator."""

    lock: threading.Lock
    running: bool
    state: State
    features: packet.L2Features


@dataclasses.dataclass
class Counters:
    """Frames of one af_packet interface's socket.

    ``rx`` read, ``tx`` written, ``rx_dropped`` read but sent nowhere (the walk
    dropped them, or VPP was not forwarding), ``rx_errors`` unreadable
    (truncated, not Ethernet/IP as it claims), ``tx_errors`` refused by the
    kernel (too long, the device gone), ``csum_partial`` read with a partial
    checksum (TP_STATUS_CSUMNOTREADY, whether or not VPP knows), ``csum_fixed``
    frames whose checksum VPP completed (CKSUM_GSO).
    """

    rx: int = 0
    tx: int = 0
    rx_dropped: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    csum_partial: int = 0
    csum_fixed: int = 0


@dataclasses.dataclass(eq=False)
class _Port:
    itf: Interface
    sock: socket.socket
    vnet_hdr: bool
    counters: Counters = dataclasses.field(default_factory=Counters)


_Copy = tuple[_Port, tuple[Tag, ...]]  # a copy of a frame: the port it leaves by, its tags


def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """``fn()`` run in network namespace ``netns`` (None: here): on a thread of
    its own, since a thread's namespace is its own (setns)."""
    if netns is None:
        return fn()
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def open_socket(ifname: str, ifindex: int, vnet_hdr: bool) -> socket.socket | None:
    """A PACKET socket bound to device ``ifindex`` (None: that device is not
    ``ifname`` any more, so af_packet's socket would be dead)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((ifname, ETH_P_ALL))
        if socket.if_nametoindex(ifname) != ifindex:
            sock.close()
            return None
        sock.setsockopt(SOL_PACKET, PACKETAUXDATA, 1)
        if vnet_hdr:
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            return None
        raise
    return sock


class FrameIO:
    """The sockets of af_packet interfaces on real devices, and their reader.

    ``attach``/``detach``/``detach_all`` run under the emulator's lock (from
    the API handlers, restart and stop); ``close`` without it: it waits for
    the reader thread to end. The thread runs while at least one socket is
    open and ends by itself when the last one is closed.
    """

    def __init__(self, vpp: Vpp, netns: str | None = None) -> None:
        self._vpp = vpp
        self._netns = netns
        self._ports: dict[int, _Port] = {}  # sw_if_index -> open port (emulator lock)
        self._mu = threading.Lock()  # the reader's hand-over: below
        self._adds: list[_Port] = []
        self._removes: list[_Port] = []
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake: tuple[int, int] | None = None

    # --- the emulator's side (under its lock) ----------------------------------------
    def attach(self, itf: Interface, device: tuple[str, int, bool] | None = None) -> None:
        """af_packet_create: open the interface's socket.

        ``device``: (name, ifindex, vnet_hdr) of the kernel device to use
        instead of an af_packet interface's own (an emulated NIC's wire).
        """
        if device is not None:
            host, ifindex, vnet_hdr = device
        elif itf.host_if_name is None or not itf.ethernet:
            return  # IP mode: no Ethernet frames to walk
        else:
            vnet_hdr = bool(itf.afp_flags & packet.AF_PACKET_FLAG_CKSUM_GSO)
            host, ifindex = itf.host_if_name, itf.host_ifindex
        sock = in_netns(self._netns, lambda: open_socket(host, ifindex, vnet_hdr))
        if sock is None:
            return  # the device changed under us: no frames, as for a dead socket
        port = _Port(itf, sock, vnet_hdr)
        self._ports[itf.sw_if_index] = port
        with self._mu:
            self._adds.append(port)
            self._start_or_wake()

    def detach(self, itf: Interface) -> None:
        """af_packet_delete: close the interface's socket."""
        port = self._ports.get(itf.sw_if_index)
        if port is None or port.itf is not itf:
            return
        del self._ports[itf.sw_if_index]
        with self._mu:
            self._removes.append(port)
            self._start_or_wake()

    def detach_all(self) -> None:
        """VPP stops: every socket closes."""
        for port in list(self._ports.values()):
            self.detach(port.itf)

    def counters(self, sw_if_index: int) -> Counters:
        """A copy of an open interface's counters (zeros if it has no socket)."""
        port = self._ports.get(sw_if_index)
        return dataclasses.replace(port.counters) if port is not None else Counters()

    # --- outside the lock ---------------------------------------------------------------
    def close(self) -> None:
        """Close every socket and wait for the reader to end (not under the lock)."""
        with self._vpp.lock:
            self.detach_all()
        with self._mu:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    @property
    def running(self) -> bool:
        """Whether the reader thread runs."""
        with self._mu:
            return self._thread is not None

    # --- the reader ---------------------------------------------------------------------
    def _start_or_wake(self) -> None:
        """Under ``_mu``: hand the reader its work, starting it if needed."""
        if self._thread is None:
            self._selector = selectors.DefaultSelector()
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._wake = (r, w)
            self._selector.register(r, selectors.EVENT_READ, None)
            self._thread = threading.Thread(target=self._run, name="vpp-frame-io", daemon=True)
            self._thread.start()
        else:
            assert self._wake is not None
            try:
                os.write(self._wake[1], b"x")
            except BlockingIOError:
                pass  # a wake-up is pending already

    def _take_work(self) -> bool:
        """Register the new sockets, close the removed ones; False: nothing left
        to read, and the thread ends (all under ``_mu``, so no attach is lost)."""
        selector, wake = self._selector, self._wake
        assert selector is not None and wake is not None
        with self._mu:
            adds, self._adds = self._adds, []
            removes, self._removes = self._removes, []
            for port in adds:
                selector.register(port.sock, selectors.EVENT_READ, port)
            for port in removes:
                if port.sock.fileno() >= 0:
                    selector.unregister(port.sock)
                    port.sock.close()
            if len(selector.get_map()) > 1:
                return True
            selector.close()
            os.close(wake[0])
            os.close(wake[1])
            self._selector = self._wake = self._thread = None
            return False

    def _run(self) -> None:
        while self._take_work():
            assert self._selector is not None and self._wake is not None
            for key, _ in self._selector.select():
                if key.data is None:
                    try:
                        os.read(self._wake[0], 4096)
                    except BlockingIOError:
                        pass
                    continue
                try:
                    self._read(key.data)
                except Exception:  # noqa: BLE001 - one bad frame must not stop the wire
                    LOG.exception("frame I/O on %s failed", key.data.itf.name)

    def _read(self, port: _Port) -> None:
        for _ in range(_BATCH):
            try:
                data, ancdata, flags, _addr = port.sock.recvmsg(_MAX_FRAME, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ENETDOWN and the like: the device went down or away; the socket
                # reports it once and then reads nothing, as VPP's does.
                LOG.debug("%s: %s", port.itf.name, exc)
                return
            self._frame(port, data, ancdata, flags)

    def _frame(
        self, port: _Port, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int
    ) -> None:
        counters = port.counters
        counters.rx += 1
        vnet = None
        if port.vnet_hdr:
            if len(data) < _VNET_HDR.size:
                counters.rx_errors += 1
                return
            vnet = _VNET_HDR.unpack_from(data)
            data = data[_VNET_HDR.size :]
        for level, kind, value in ancdata:
            if level == SOL_PACKET and kind == PACKETAUXDATA and len(value) >= AUXDATA.size:
                status, _, _, _, _, tci, tpid = AUXDATA.unpack_from(value)
                if status & TP_STATUS_CSUMNOTREADY:
                    counters.csum_partial += 1
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    data = rawframe.insert_tag(data, tpid, tci)
        if flags & socket.MSG_TRUNC:
            counters.rx_errors += 1  # af_packet-input drops partial packets
            return
        try:
            frame, raw = rawframe.parse(data)
        except rawframe.Malformed:
            counters.rx_errors += 1
            return
        out = self._walk(port, frame)
        if not out:
            counters.rx_dropped += 1
            return
        payloads = self._payloads(raw.l3, vnet, counters)
        for egress_port, tags in out:
            prefix = _NO_VNET_HDR if egress_port.vnet_hdr else b""
            for l3 in payloads:
                try:
                    egress_port.sock.send(prefix + raw.build(tags, l3))
                except OSError as exc:
                    egress_port.counters.tx_errors += 1
                    LOG.debug("%s: send: %s", egress_port.itf.name, exc)
                else:
                    egress_port.counters.tx += 1

    def _walk(self, port: _Port, frame: packet.Frame) -> list[_Copy]:
        """The walk under the emulator's lock: the open ports the copies leave by."""
        vpp = self._vpp
        with vpp.lock:
            sw = port.itf.sw_if_index
            if not vpp.running or self._ports.get(sw) is not port:
                return []  # deleted (its socket closes soon) or VPP stopped
            try:
                copies = packet.walk(vpp.state, vpp.features, frame, sw)
            except ValueError as exc:  # a frame the model cannot judge
                LOG.debug("%s: frame not walked: %s", port.itf.name, exc)
                port.counters.rx_errors += 1
                return []
            out = []
            for egress in copies:
                target = self._ports.get(egress.sw_if_index)
                if target is not None:
                    out.append((target, tuple(zip(egress.tpids, egress.vlans, strict=True))))
            return out

    @staticmethod
    def _payloads(l3: bytes, vnet: tuple[int, ...] | None, counters: Counters) -> list[bytes]:
        """What follows the type field in each copy: as read, or (CKSUM_GSO) with
        its checksum completed and cut to segments as the virtio-net header says."""
        if vnet is None:
            return [l3]
        vflags, gso_type, _, gso_size, _, _ = vnet
        if gso_type & ~VIRTIO_NET_HDR_GSO_ECN in _TCP_GSO:
            counters.csum_fixed += 1
            return rawframe.segment(l3, gso_size)
        if vflags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
            counters.csum_fixed += 1
            return [rawframe.complete_checksum(l3)]
        return [l3]
