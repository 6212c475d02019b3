"""The emulated VPP process: API dispatch, test hooks, restarts and counters.

``VppEmulator`` holds one :class:`~networking_vpp.testing.vpp.state.State`
(one life of the VPP process) behind one lock. Its one front door is VPP's
API socket (``socket_server.py``): vpp_papi clients connect there, and each
connection is an :class:`ApiClient` here. The server unpacks a request with
vpp_papi's serializer and hands its fields to :meth:`VppEmulator._call`,
which runs the message's handler under the lock; the server packs the
handler's answer with vpp_papi's serializer. The interface events a call
caused go to the subscribed connections, outside the lock, before the call's
reply is written: a client reads them first, as from VPP.

Test hooks play the parts of the world around VPP: uplink NICs
(``add_hardware_interface``), kernel interfaces for af_packet
(``add_kernel_interface``; or real devices, with ``kernel=NetlinkLinks()``:
see kernel.py), QEMU (``vm_connect``/``vm_disconnect``,
``auto_connect_vms``; a VM whose socket VPP served is cut off when VPP closes
it, one serving its own socket is reconnected), the VPP process itself (``restart``, ``stop``,
``start``, ``drop_connections``) and faults (``fail_next``). Packets:
``walk`` (where does a frame go), ``passes`` (does it get from A to B),
``features.verdicts`` (what the ACLs decided) and ``sessions`` (the ACL
plugin's permit+reflect sessions; ``sessions.clear()`` plays their timeout).
On real kernel devices af_packet interfaces carry real frames through the same
walk (``frames``, frameio.py).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

from networking_vpp.testing.vpp import packet
from networking_vpp.testing.vpp.acl_path import AclFeatures, SessionView
from networking_vpp.testing.vpp.convert import MACAddress
from networking_vpp.testing.vpp.defs import registry
from networking_vpp.testing.vpp.errors import ConnectionBroken
from networking_vpp.testing.vpp.frameio import FrameIO
from networking_vpp.testing.vpp.handlers import HANDLERS, Handler
from networking_vpp.testing.vpp.handlers.vpe import cli_reads_only
from networking_vpp.testing.vpp.kernel import KernelLinks, MemoryLinks, NetlinkLinks
from networking_vpp.testing.vpp.state import (
    EV_ADMIN_UP,
    EV_ALL,
    EV_DEL,
    EV_LINK_UP,
    Interface,
    State,
)

LOG = logging.getLogger(__name__)

_READ_ONLY = frozenset(
    {
        "control_ping",
        "show_version",
        "acl_plugin_control_ping",
        "acl_plugin_get_version",
        "acl_plugin_get_conn_table_max_entries",
    }
)
#: a socket client's registration, answered by the socket server itself (socket_server.py)
TRANSPORT = frozenset({"sockclnt_create", "sockclnt_delete"})
_IOERROR: Any = object()
# An event's flags (vl_api_if_status_flags_t) by the event bits it reports: the
# event's bits, not the interface's state (link_state_process).
_EVENT_FLAGS = [
    (1 if bits & EV_ADMIN_UP else 0) | (2 if bits & EV_LINK_UP else 0) for bits in range(EV_ALL + 1)
]
_EVENT_DELETED = [bool(bits & EV_DEL) for bits in range(EV_ALL + 1)]


class ApiClient(Protocol):
    """One API connection, as the emulator sees it (a socket server's session)."""

    name: str
    client_index: int  # given by the emulator when it attaches
    generation: int  # the emulator life it is attached to; -1 once detached
    connected: bool

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        """Send these ``sw_interface_event`` messages (their fields) to the client."""

    def _stop_events(self) -> None:
        """The VPP process ended: nothing more reaches the client (its socket closes)."""


@dataclasses.dataclass(frozen=True)
class Request:
    """A callable message: its handler and how it answers."""

    name: str
    reply: str  # the reply message, or the details of a dump
    stream: bool  # a dump: details, ended by the client's control_ping
    handler: Handler
    mutating: bool


def _read_only(name: str, stream: bool) -> bool:
    """Dumps, gets, pings and subscriptions do not change the configuration."""
    return stream or name in _READ_ONLY or name.endswith("_get") or name.startswith("want_")


@functools.cache
def api_requests() -> dict[str, Request]:
    """Every declared request with its handler (once per process)."""
    requests = {}
    for name, svc in registry().services.items():
        if name in TRANSPORT:
            continue
        if name not in HANDLERS:
            raise NotImplementedError(f"{name} is declared but has no handler")
        if svc.stream_msg:
            # VPP's new-style streams (a reply after the details) have no emulated
            # message yet: the socket server answers old-style dumps only.
            raise NotImplementedError(f"{name}: stream_msg services are not emulated")
        requests[name] = Request(
            name, svc.reply, svc.stream, HANDLERS[name], mutating=not _read_only(name, svc.stream)
        )
    return requests


@dataclasses.dataclass
class _Failure:
    remaining: int
    retval: int | None
    message: str | None


class VppEmulator:
    """A VPP you can run in a test: its API, its state, and a packet walk.

    Serve it (``socket_server.serve``) and connect with vpp_papi.
    ``random_bd_ids`` makes ``bridge_domain_add_del_v2`` pick random
    free ids instead of the lowest, to prove a caller does not guess them.
    ``kernel``: the kernel devices af_packet attaches to; by default
    in-memory ones (``add_kernel_interface``), ``NetlinkLinks()`` for the
    host's real ones, on which af_packet interfaces carry real frames
    (``frames``, see frameio.py; ``close()`` ends that).
    """

    def __init__(
        self,
        *,
        random_bd_ids: bool = False,
        seed: int = 0,
        kernel: KernelLinks | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.requests = api_requests()
        self._rng = random.Random(seed)
        self._random_bd_ids = random_bd_ids
        self._hardware: list[tuple[str, MACAddress]] = []
        #: NIC name -> the kernel device standing in for its cable (see add_hardware_interface)
        self._nic_wires: dict[str, str] = {}
        self._vms: dict[str, int] = {}  # socket -> memory regions of a VM wanting it
        # Sockets whose QEMU was the client of a socket VPP served and lost it:
        # Nova configures no reconnect, so the VM stays cut off until it reboots.
        self._cut_off: set[str] = set()
        self._clients: dict[int, ApiClient] = {}
        self._client_ids = 0
        self._generation = 0
        self._failures: list[_Failure] = []
        #: kernel interfaces af_packet can attach to (they outlive VPP restarts),
        #: each with whether its TX checksum offload is on
        self.kernel_interfaces: KernelLinks = MemoryLinks() if kernel is None else kernel
        #: QEMU connects to every vhost-user socket as soon as VPP creates it
        self.auto_connect_vms = False
        # calls by message name: a plain dict (faster than a Counter), ``calls`` shows it
        self._counts = dict.fromkeys(self.requests, 0)
        #: calls that changed (or tried to change) VPP's configuration
        self.mutations = 0
        #: the L2 feature hooks of the packet walk: the ACL plugin's ACLs and MACIP
        #: (``features.verdicts`` tells why a frame was dropped); replace to bypass
        self.features: packet.L2Features = AclFeatures(lambda: self.state)
        #: called with ``running`` after ``stop()`` and ``start()``, outside the lock
        #: (the socket server stops and starts listening)
        self.on_running: list[Callable[[bool], None]] = []
        #: the ACL plugin's sessions (``len``, iterate, ``clear()``)
        self.sessions = SessionView(self.lock, lambda: self.state)
        self.running = True
        self.vpe_pid = 4242
        self.state = self._new_state()
        #: the sockets of af_packet interfaces on real devices (None: in-memory kernel)
        self.frames: FrameIO | None = None
        if isinstance(self.kernel_interfaces, NetlinkLinks):
            self.frames = FrameIO(self, self.kernel_interfaces.netns)

    # --- connections (the socket server's sessions) ------------------------------------
    def _attach(self, client: ApiClient) -> None:
        with self.lock:
            if not self.running:
                raise ConnectionRefusedError(111, "Connection refused (VPP is not running)")
            self._client_ids += 1
            client.client_index = self._client_ids
            client.generation = self._generation
            client.connected = True
            self._clients[client.client_index] = client

    def _detach(self, client: ApiClient) -> None:
        with self.lock:
            client.generation = -1
            if self._clients.get(client.client_index) is client:
                del self._clients[client.client_index]
                self.state.subscribers.pop(client.client_index, None)

    def _drop_clients(self) -> None:
        self._generation += 1
        for c in self._clients.values():
            c.connected = False
            c.generation = -1
            c._stop_events()  # nothing more can reach it: its socket closes
        self._clients.clear()

    # --- the API ---------------------------------------------------------------------
    def _call(self, client: ApiClient, req: Request, args: dict[str, Any]) -> Any:
        """Run one request from ``client`` (its fields as vpp_papi unpacked them).

        Returns the handler's answer: the reply's fields, or a dump's details.
        Raises :class:`ConnectionBroken` when the connection is gone (a
        restart) or a fault test breaks it (``fail_next``).
        """
        with self.lock:
            if client.generation != self._generation:  # -1 once disconnected
                raise ConnectionBroken("the connection is gone")
            self._counts[req.name] += 1
            if self._failures and (failure := self._take_failure(req.name)) is not None:
                result = self._failed(req, failure)
            else:
                result = req.handler(self, client.client_index, args)
                if req.mutating and not (req.name == "cli_inband" and cli_reads_only(args["cmd"])):
                    self.mutations += 1
            # Most calls cause no event, and events go to subscribers only.
            events = self._events() if self.state.events else None
        if events:
            self._send(events)  # before the caller's reply: its client reads them first
        return result

    @staticmethod
    def _failed(req: Request, failure: Any) -> Any:
        """What a call that fails (``fail_next``) answers in place of its handler."""
        if failure is _IOERROR:
            raise ConnectionBroken("injected: the connection breaks")
        return [] if req.stream else {"retval": failure}

    def _take_failure(self, name: str) -> Any:
        for f in self._failures:
            if f.message is None or f.message == name:
                f.remaining -= 1
                if f.remaining <= 0:
                    self._failures.remove(f)
                return _IOERROR if f.retval is None else f.retval
        return None

    # --- events ----------------------------------------------------------------------
    def _events(self) -> list[tuple[ApiClient, list[dict[str, Any]]]]:
        """Turn the state's batched event bits into messages per subscriber (under lock)."""
        pending = self.state.take_events()
        if not pending or not self.state.subscribers:
            return []
        out = []
        for client_index, pid in self.state.subscribers.items():
            client = self._clients.get(client_index)
            if client is None:
                continue
            msgs = [
                {
                    "client_index": client_index,
                    "pid": pid,
                    "sw_if_index": idx,
                    "flags": _EVENT_FLAGS[bits],
                    "deleted": _EVENT_DELETED[bits],
                }
                for idx, bits in pending
            ]
            out.append((client, msgs))
        return out

    @staticmethod
    def _send(events: list[tuple[ApiClient, list[dict[str, Any]]]]) -> None:
        for client, msgs in events:
            client._deliver(msgs)

    def _hook(self, fn: Any, *args: Any) -> Any:
        """Run a world-side change under the lock and send the events it caused."""
        with self.lock:
            result = fn(*args)
            events = self._events()
        self._send(events)
        return result

    # --- the world around VPP ----------------------------------------------------------
    def _new_state(self) -> State:
        st = State(self._rng, random_bd_ids=self._random_bd_ids, kernel=self.kernel_interfaces)
        for name, mac in self._hardware:
            self._make_nic(st, name, mac)
        st.events.clear()  # discovered at start-up, before any client listens
        return st

    @staticmethod
    def _make_nic(st: State, name: str, mac: MACAddress) -> Interface:
        itf = st.new_interface(name, "dpdk", l2_address=mac, link_speed=10_000_000)
        itf.link_duplex = 2  # LINK_DUPLEX_API_FULL
        st.set_link(itf, True)
        return itf

    def add_hardware_interface(self, name: str, mac: str, wire: str | None = None) -> int:
        """An uplink NIC (dev type "dpdk", link up, admin down); it survives restarts.

        ``wire``: a real kernel device (a veth end) standing in for the NIC's
        cable, on an emulator with real devices: frames VPP sends by the NIC are
        written to it and frames it receives enter VPP by the NIC, so emulated
        hosts (and namespaces, a gateway) on one wire really talk. The NIC stays
        a NIC to VPP's API (dev type "dpdk", no af_packet); its socket completes
        partial checksums as a real wire would never carry them (frames from a
        namespace's kernel on the same wire have them).
        """
        mac_address = MACAddress(mac)
        if wire is not None and self.frames is None:
            raise ValueError("a NIC's wire needs an emulator on real devices (NetlinkLinks)")

        def add() -> int:
            if name in self.state.by_name:
                raise ValueError(f"VPP already has an interface named {name}")
            self._hardware.append((name, mac_address))
            itf = self._make_nic(self.state, name, mac_address)
            if wire is not None:
                self._nic_wires[name] = wire
                self._attach_wire(itf, wire)
            return itf.sw_if_index

        return int(self._hook(add))

    def _attach_wire(self, itf: Interface, wire: str) -> None:
        """Under the lock: the NIC's frames on its wire device (found by name now)."""
        assert self.frames is not None
        ifindex = self.kernel_interfaces.ifindex(wire)
        if ifindex is None:
            LOG.warning("NIC %s: its wire %s does not exist; it carries no frames", itf.name, wire)
            return
        self.frames.attach(itf, device=(wire, ifindex, True))

    def set_carrier(self, name: str, up: bool) -> None:
        """Plug or unplug a NIC's cable: its link follows when it is admin up."""

        def change() -> None:
            itf = self.state.by_name[name]
            itf.carrier = up
            # Unplugging drops the link; plugging in raises it only on an admin-up port.
            self.state.set_link(itf, up if itf.admin_up else (up and itf.link_up))

        self._hook(change)

    def add_kernel_interface(self, name: str, *, tx_checksum_offload: bool = True) -> None:
        """A Linux interface (a tap made by Nova or Neutron) af_packet can attach to.

        ``tx_checksum_offload``: on, as a veth's is by default, the kernel hands
        TCP/UDP frames over with partial checksums (see ``packet.py``). Adding
        an existing interface again changes it (``ethtool -K <name> tx off``).
        In-memory kernel only: real devices are made with ``ip link``.
        """
        with self.lock:
            self._memory_links().add(name, tx_checksum_offload)

    def remove_kernel_interface(self, name: str) -> None:
        """The Linux interface went away. As on a real VPP, an attached af_packet
        interface does not notice: it stays link-up, no event comes, and its
        socket is dead (see kernel.py)."""
        with self.lock:
            self._memory_links().remove(name)

    def _memory_links(self) -> MemoryLinks:
        if not isinstance(self.kernel_interfaces, MemoryLinks):
            raise TypeError("this emulator's kernel devices are real: use ip link")
        return self.kernel_interfaces

    def vm_waiting(self, sock_filename: str) -> int:
        """Memory regions of the VM that wants this socket (0: no VM); under the lock."""
        if sock_filename in self._cut_off:
            return 0
        if sock_filename in self._vms:
            return self._vms[sock_filename]
        return 1 if self.auto_connect_vms else 0

    def served_socket_closed(self, sock_filename: str) -> None:
        """VPP closed a socket it served with a VM on it (under the lock).

        QEMU was the client, and Nova gives it no ``reconnect``: the guest
        stays cut off, whatever VPP creates later, until it is rebooted
        (``vm_connect``). With QEMU as the server, VPP reconnects instead.
        """
        self._vms.pop(sock_filename, None)
        self._cut_off.add(sock_filename)

    def _close_served_sockets(self) -> None:
        """The VPP process ends: every socket it served closes (under the lock)."""
        for itf in self.state.vhosts.values():
            vhost = itf.vhost
            if vhost is not None and vhost.is_server and vhost.num_regions:
                self.served_socket_closed(vhost.sock_filename)

    def vm_connect(self, sock_filename: str, num_regions: int = 1) -> None:
        """QEMU connects to the socket (now, or as soon as VPP creates it).

        Also a guest rebooted after it lost a socket VPP served.
        """
        if num_regions < 1:
            raise ValueError("a connected VM shares at least one memory region")

        def connect() -> None:
            self._cut_off.discard(sock_filename)
            self._vms[sock_filename] = num_regions
            itf = self.state.vhost_by_socket.get(sock_filename)
            if itf is not None:
                self.state.vm_attach(itf, num_regions)

        self._hook(connect)

    def vm_disconnect(self, sock_filename: str) -> None:
        """QEMU goes away (the VM was shut down or migrated)."""

        def disconnect() -> None:
            self._cut_off.discard(sock_filename)
            self._vms.pop(sock_filename, None)
            itf = self.state.vhost_by_socket.get(sock_filename)
            if itf is not None:
                self.state.vm_attach(itf, 0)

        self._hook(disconnect)

    # --- the VPP process ---------------------------------------------------------------
    def restart(self) -> None:
        """VPP restarts: connections drop, state is wiped, NICs are found again.

        A VM whose socket VPP served stays cut off; VPP reconnects to a VM
        that serves its own socket (see ``served_socket_closed``).
        """
        with self.lock:
            self._close_served_sockets()
            self._close_frames()
            self._drop_clients()
            self.vpe_pid += 1
            self.running = True
            self.state = self._new_state()
            self._attach_wires()

    def stop(self) -> None:
        """VPP stops: connections drop and connecting is refused until ``start()``."""
        with self.lock:
            if self.running:
                self._close_served_sockets()
                self._close_frames()
            self._drop_clients()
            self.running = False
        for hook in self.on_running:
            hook(False)

    def start(self) -> None:
        """VPP starts again (after ``stop()``) with a fresh state."""
        with self.lock:
            if not self.running:
                self.vpe_pid += 1
                self.running = True
                self.state = self._new_state()
                self._attach_wires()
        for hook in self.on_running:
            hook(True)

    def _attach_wires(self) -> None:
        """Under the lock, after a (re)start: the NICs' sockets on their wires."""
        for name, wire in self._nic_wires.items():
            self._attach_wire(self.state.by_name[name], wire)

    def _close_frames(self) -> None:
        """The VPP process ends: its af_packet sockets close (under the lock; the
        reader thread ends by itself once it has closed them)."""
        if self.frames is not None:
            self.frames.detach_all()

    def close(self) -> None:
        """Close the af_packet sockets on real devices and wait for their reader
        (a test's teardown; the emulator's API keeps working, without frames)."""
        if self.frames is not None:
            self.frames.close()

    def drop_connections(self) -> None:
        """Every API connection breaks (VPP itself keeps running and keeps its state)."""
        with self.lock:
            self._drop_clients()
            self.state.subscribers.clear()

    def fail_next(self, n: int = 1, retval: int | None = None, message: str | None = None) -> None:
        """The next ``n`` calls (of ``message``, or any) fail without effect.

        With ``retval`` the reply carries it (a dump returns no details);
        without, the connection breaks (the client's call raises an ``IOError``).
        Failed calls count in ``calls`` but not in ``mutations``.
        """
        with self.lock:
            self._failures.append(_Failure(n, retval, message))

    @property
    def calls(self) -> collections.Counter[str]:
        """API calls received, by message name (including failed ones): a snapshot."""
        return collections.Counter({name: n for name, n in self._counts.items() if n})

    def reset_counters(self) -> None:
        """Zero ``calls`` and ``mutations``."""
        with self.lock:
            self._counts = dict.fromkeys(self.requests, 0)
            self.mutations = 0

    # --- packets -------------------------------------------------------------------------
    def walk(self, frame: packet.Frame, ingress: int | str) -> list[packet.Egress]:
        """Where a frame arriving on port ``ingress`` (index or name) leaves VPP."""
        with self.lock:
            if not self.running:
                return []  # a stopped VPP forwards nothing
            if self.state.afp_dead(ingress):
                return []  # its socket reads nothing
            out = packet.walk(self.state, self.features, frame, ingress, self.kernel_interfaces)
            # What VPP writes into a dead socket reaches no one.
            return [egress for egress in out if not self.state.afp_dead(egress.sw_if_index)]

    def passes(self, frame: packet.Frame, ingress: int | str, egress: int | str) -> bool:
        """Does ``frame``, arriving on port ``ingress``, leave by ``egress``
        in a state its receiver accepts (a right L4 checksum)?

        ``egress`` is a port or the L2 output interface (a VLAN sub-interface)
        by index or name. This is a real walk: MACs are learnt and ACL
        sessions made on the way, as the frame would make them.
        """
        for out in self.walk(frame, ingress):
            if not out.checksum_ok:
                continue
            if egress in (out.sw_if_index, out.name, out.via):
                return True
            if isinstance(egress, str):
                via = self.interface(out.via)
                if via is not None and via.name == egress:
                    return True
        return False

    # --- inspection ------------------------------------------------------------------------
    def interface(self, key: int | str) -> Interface | None:
        """The live interface by index or name (the emulator's own record)."""
        with self.lock:
            if isinstance(key, str):
                return self.state.by_name.get(key)
            return self.state.get(key)

    def __repr__(self) -> str:
        with self.lock:
            n = sum(1 for _ in self.state.interfaces())
            return f"<VppEmulator {n} interfaces, {len(self.state.bds)} bridge domains>"
