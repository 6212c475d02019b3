"""The emulated VPP's state and the vnet-level operations on it.

This is the emulator's model of VPP's ``vnet``: software interfaces in a pool
whose freed indices are reused last-freed-first (vppinfra's ``pool_get`` pops
the free list), hardware link state, admin state with VPP's rule that a
sub-interface cannot be up while its parent is down, L2 bridge membership,
VLAN tag rewrite, and the interface events VPP's ``link_state_process`` sends.
API handlers (``handlers/``) translate messages into these operations; the
packet walk (``packet.py``) reads the same objects.

Events are batched per sw_if_index until the emulator flushes them after the
API call, like VPP's process that ORs the event bits it was signalled before
it runs: one ``sw_interface_event`` per interface, whose flags are the *event
bits* (an admin-up event says ADMIN_UP only; a link-up event says LINK_UP
only), ``deleted`` set on deletion.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp import vlan
from networking_vpp.testing.vpp.acl_state import AclState
from networking_vpp.testing.vpp.convert import ZERO_MAC, MACAddress
from networking_vpp.testing.vpp.l2learn import DEFAULT_LEARN_LIMIT

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.kernel import KernelLinks

NO_INDEX = 0xFFFFFFFF
L2_BD_ID_MAX = (1 << 24) - 1
# vl_api_if_type_t
IF_TYPE_HARDWARE = 0
IF_TYPE_SUB = 1
# vl_api_sub_if_flags_t of a create_vlan_subif sub-interface: ONE_TAG | EXACT_MATCH
SUB_IF_DOT1Q_EXACT = 2 | 16
SUB_IF_FLAG_MASK_VNET = 254  # what sw_interface_details shows of the flags
# vl_api_l2_port_type_t
PORT_NORMAL, PORT_BVI, PORT_UU_FWD = 0, 1, 2
# VPP's api_events bits (interface_api.c)
EV_LINK_UP, EV_LINK_DOWN = 1 << 1, 1 << 2
EV_ADMIN_UP, EV_ADMIN_DOWN = 1 << 3, 1 << 4
EV_ADD, EV_DEL = 1 << 5, 1 << 6
EV_ALL = (1 << 7) - 1
# vnet_hw_if_rx_mode (vl_api_rx_mode_t)
RX_MODE_UNKNOWN, RX_MODE_POLLING, RX_MODE_INTERRUPT, RX_MODE_ADAPTIVE, RX_MODE_DEFAULT = range(5)
# ethernet_main's default MTU: link MTU and L3 MTU of a new Ethernet interface
DEFAULT_MTU = 9000


@dataclasses.dataclass(eq=False, slots=True)
class VhostUser:
    """The vhost-user side of a VirtualEthernet interface."""

    instance: int
    sock_filename: str
    is_server: bool
    num_regions: int = 0  # > 0 while a VM (QEMU) is connected


@dataclasses.dataclass(eq=False)
class BridgeDomain:
    """One bridge domain; ``members`` keeps VPP's member order (a dict as ordered set)."""

    bd_id: int
    bd_index: int
    flood: bool = True
    uu_flood: bool = True
    forward: bool = True
    learn: bool = True
    arp_term: bool = False
    arp_ufwd: bool = True
    mac_age: int = 0
    tag: str = ""
    members: dict[int, None] = dataclasses.field(default_factory=dict)
    bvi_sw_if_index: int = NO_INDEX
    uu_fwd_sw_if_index: int = NO_INDEX
    fib: dict[str, int] = dataclasses.field(default_factory=dict)  # learnt MAC -> sw_if_index
    learnt_at: dict[str, int] = dataclasses.field(default_factory=dict)  # MAC -> minute (u8)
    learn_limit: int = DEFAULT_LEARN_LIMIT  # bridge_domain_set_learn_limit (l2learn.py)


@dataclasses.dataclass(eq=False, slots=True)
class Interface:
    """A software interface (and, for a main interface, its hardware side)."""

    sw_if_index: int
    name: str
    dev_type: str  # the device class name VPP reports: "dpdk", "vhost-user", ...
    type: int = IF_TYPE_HARDWARE
    sup_sw_if_index: int = 0
    l2_address: MACAddress = ZERO_MAC
    ethernet: bool = True
    admin_up: bool = False
    link_up: bool = False  # hardware link; a sub-interface shows its parent's
    carrier: bool = True  # the cable (hardware NICs): link comes up with admin up
    link_speed: int = 0
    link_duplex: int = 0
    link_mtu: int = DEFAULT_MTU
    mtu: list[int] = dataclasses.field(default_factory=lambda: [DEFAULT_MTU, 0, 0, 0])
    tag: str = ""
    # sub-interface
    sub_id: int = 0
    outer_vlan: int = 0
    inner_vlan: int = 0
    sub_if_flags: int = 0
    n_tags: int = 0
    match_key: tuple[object, ...] = ()  # its key in the port's ``match`` (vlan.py)
    match_flags: int = 0  # the tag counts it takes (subint_config_t flags)
    # port: sub-interfaces by id, and by what they match (ethernet-input's tables)
    subifs: dict[int, int] = dataclasses.field(default_factory=dict)  # sub_id -> sw_if_index
    match: dict[tuple[object, ...], int] = dataclasses.field(default_factory=dict)
    efp: bool = False  # l2_interface_efp_filter
    # l2_interface_vlan_tag_rewrite
    vtr_op: int = 0
    vtr_push_dot1q: int = 0
    vtr_tag1: int = 0
    vtr_tag2: int = 0
    # L2 mode
    bd: BridgeDomain | None = None
    shg: int = 0
    port_type: int = PORT_NORMAL
    # device side
    vhost: VhostUser | None = None
    host_if_name: str | None = None  # af_packet
    host_ifindex: int = 0  # af_packet: the kernel device its socket is bound to
    afp_flags: int = 0  # af_packet_create_v3's flags (QDISC_BYPASS, CKSUM_GSO, ...)
    # receive queue id -> its mode (vnet_hw_if_rx_queue_t); None: the device's
    # queues as it registers them at creation (handlers/interfaces.py, rx_queues)
    rx_queues: dict[int, int] | None = None

    @property
    def is_main(self) -> bool:
        """A hardware (port) interface rather than a sub-interface."""
        return self.type == IF_TYPE_HARDWARE


class IndexPool:
    """vppinfra pool indices: a freed index is the next one handed out (LIFO)."""

    def __init__(self) -> None:
        self.size = 0
        self.free: list[int] = []

    def get(self) -> int:
        """Take an index."""
        if self.free:
            return self.free.pop()
        self.size += 1
        return self.size - 1

    def put(self, index: int) -> None:
        """Give an index back."""
        self.free.append(index)


class LowestFree:
    """The lowest unused integer >= ``start`` (a bitmap's first clear bit)."""

    def __init__(self, start: int) -> None:
        self.next = start
        self.heap: list[int] = []

    def get(self, used: dict[int, object] | None = None) -> int:
        """The lowest free value not in ``used`` (which may hold values set by hand)."""
        while self.heap:
            value = heapq.heappop(self.heap)
            if used is None or value not in used:
                return value
        while used is not None and self.next in used:
            self.next += 1
        self.next += 1
        return self.next - 1

    def put(self, value: int) -> None:
        """Free a value (one the counter has not reached needs no note)."""
        if value < self.next:
            heapq.heappush(self.heap, value)


class State:
    """One life of the VPP process: everything a restart wipes."""

    #: seconds, for the MAC ager (l2learn.py); a test may replace it to move time on
    clock: Callable[[], float] = staticmethod(time.monotonic)
    aged_at = -1  # the minute the MAC ager last ran

    def __init__(
        self, rng: random.Random, *, random_bd_ids: bool = False, kernel: KernelLinks | None = None
    ) -> None:
        self.rng = rng
        #: the kernel devices af_packet interfaces are bound to (None: no kernel)
        self.kernel = kernel
        self.random_bd_ids = random_bd_ids
        self.by_index: dict[int, Interface] = {}  # live interfaces by sw_if_index
        #: the live interface at a sw_if_index, or None (dict.get: no Python call)
        self.get: Callable[[int], Interface | None] = self.by_index.get
        self.pool = IndexPool()
        self.by_name: dict[str, Interface] = {}
        self.vhost_pool = IndexPool()
        self.vhosts: dict[int, Interface] = {}  # instance -> interface
        self.vhost_by_socket: dict[str, Interface] = {}
        self.afp_pool = IndexPool()
        self.afps: dict[int, Interface] = {}  # af_packet pool index -> interface
        self.afp_by_host: dict[str, tuple[int, Interface]] = {}
        self.bds: dict[int, BridgeDomain] = {}  # by bd_id
        # VPP's placeholder bridge domain 0 (bd_index 0): never dumped, drops everything
        self.bd0 = BridgeDomain(0, 0, False, False, False, False, arp_ufwd=False)
        self.bd_index = LowestFree(1)  # index 0 is VPP's placeholder bridge domain 0
        self.bd_ids = LowestFree(1)
        self.events: dict[int, int] = {}
        self.subscribers: dict[int, int] = {}  # client_index -> pid (want_interface_events)
        self.vm_sockets: set[str] = set()  # sockets whose VM is connected
        self.acl = AclState(IndexPool(), IndexPool())  # the ACL plugin
        local0 = self.new_interface("local0", "local", ethernet=False)
        local0.link_mtu, local0.mtu = 0, [0, 0, 0, 0]
        self.events.clear()  # VPP is up before any client can listen

    # --- lookup ------------------------------------------------------------------
    def interfaces(self) -> Iterator[Interface]:
        """Every interface in pool order, as VPP's dumps walk them."""
        by_index = self.by_index
        return (by_index[i] for i in sorted(by_index))

    def link_up(self, itf: Interface) -> bool:
        """The hardware link state shown for ``itf`` (a sub-interface shows its port's)."""
        if itf.is_main:
            return itf.link_up
        sup = self.get(itf.sup_sw_if_index)
        return sup is not None and sup.link_up

    def post(self, sw_if_index: int, bits: int) -> None:
        """Signal an interface event (sent when the emulator flushes)."""
        self.events[sw_if_index] = self.events.get(sw_if_index, 0) | bits

    def take_events(self) -> list[tuple[int, int]]:
        """The batched events, in sw_if_index order, and forget them."""
        if not self.events:
            return []
        out = sorted(self.events.items())
        self.events.clear()
        return out

    # --- creation and deletion ----------------------------------------------------
    def new_interface(self, name: str, dev_type: str, **attrs: object) -> Interface:
        """Register a software interface under the lowest reusable index."""
        idx = self.pool.get()
        attrs.setdefault("sup_sw_if_index", idx)
        itf = Interface(idx, name, dev_type, **attrs)  # type: ignore[arg-type]
        self.by_index[idx] = itf
        self.by_name[name] = itf
        self.post(idx, EV_ADD)
        return itf

    def random_mac(self) -> MACAddress:
        """VPP's generated address for vhost-user / af_packet: 02:fe plus 32 random bits."""
        return MACAddress(b"\x02\xfe" + self.rng.getrandbits(32).to_bytes(4, "big"))

    def create_vlan_subif(self, parent: Interface, vlan: int) -> Interface | None:
        """A dot1q exact-match sub-interface ``<parent>.<vlan>`` of ``parent``."""
        return self.create_subif(parent, vlan, SUB_IF_DOT1Q_EXACT, vlan, 0)

    def create_subif(
        self, parent: Interface, sub_id: int, flags: int, outer: int, inner: int
    ) -> Interface | None:
        """vnet_create_sub_interface ``<parent>.<sub_id>``; None if ethernet
        refuses its match (taken, or not implemented): the caller's error."""
        found = vlan.subif_match(flags, outer, inner)
        if found is None or found[0] in parent.match:
            return None
        key, match_flags = found
        sub = self.new_interface(
            f"{parent.name}.{sub_id}",
            parent.dev_type,
            type=IF_TYPE_SUB,
            sup_sw_if_index=parent.sw_if_index,
            sub_id=sub_id,
            outer_vlan=outer,
            inner_vlan=inner,
            # send_sw_interface_details: one_tag + 2 * two_tags
            n_tags=(1 if flags & vlan.SUB_ONE_TAG else 0) + (2 if flags & vlan.SUB_TWO_TAGS else 0),
            sub_if_flags=flags & SUB_IF_FLAG_MASK_VNET,
            match_key=key,
            match_flags=match_flags,
            ethernet=parent.ethernet,
            link_mtu=parent.link_mtu,
            mtu=[0, 0, 0, 0],
        )
        parent.subifs[sub_id] = sub.sw_if_index
        parent.match[key] = sub.sw_if_index
        return sub

    def delete_interface(self, itf: Interface) -> None:
        """vnet_delete_sw_interface: ACLs off, leave L2, go down, say deleted, free the index."""
        for sub_index in list(itf.subifs.values()):
            sub = self.get(sub_index)
            if sub is not None:
                self.delete_interface(sub)
        # The ACL plugin's interface-delete callback drops its bindings and sessions.
        self.acl.interface_deleted(itf.sw_if_index)
        if itf.bd is not None or itf.port_type != PORT_NORMAL:
            self.set_l3(itf)
        itf.tag = ""
        if itf.admin_up:
            self.set_admin(itf, False)
        if not itf.is_main:
            parent = self.get(itf.sup_sw_if_index)
            if parent is not None:
                parent.subifs.pop(itf.sub_id, None)
                parent.match.pop(itf.match_key, None)
        self.post(itf.sw_if_index, EV_DEL)
        del self.by_index[itf.sw_if_index]
        del self.by_name[itf.name]
        self.pool.put(itf.sw_if_index)

    # --- state changes -------------------------------------------------------------
    def set_link(self, itf: Interface, up: bool) -> None:
        """The hardware link went up or down."""
        if itf.link_up != up:
            itf.link_up = up
            self.post(itf.sw_if_index, EV_LINK_UP if up else EV_LINK_DOWN)

    def set_admin(self, itf: Interface, up: bool) -> int:
        """vnet_sw_interface_set_flags: returns 0 or the API error."""
        main = itf.is_main
        if not main:
            sup = self.get(itf.sup_sw_if_index)
            # "super-interface must be up": a sub-interface may only go up with its port.
            if up and sup is not None and not sup.admin_up:
                return e.UNSPECIFIED
        if itf.admin_up == up:
            return 0
        itf.admin_up = up
        self.post(itf.sw_if_index, EV_ADMIN_UP if up else EV_ADMIN_DOWN)
        if main and itf.host_if_name is not None and self.kernel is not None:
            # af_packet's admin_up_down sets the device it is bound to (not a
            # device made since under the same name) up or down.
            self.kernel.set_admin(itf.host_ifindex, up)
        if main:
            if not up:
                self.set_link(itf, False)  # admin down implies link down
            elif itf.vhost is not None:
                self.set_link(itf, itf.vhost.num_regions > 0)
            elif itf.host_if_name is not None or itf.dev_type == "dpdk":
                self.set_link(itf, itf.carrier)
        return 0

    def afp_dead(self, key: int | str) -> bool:
        """Whether ``key`` (index or name) is an af_packet interface whose kernel
        device is gone, or was made again (another ifindex): its socket is dead."""
        itf = self.by_name.get(key) if isinstance(key, str) else self.get(key)
        if itf is None or itf.host_if_name is None or self.kernel is None:
            return False
        return self.kernel.ifindex(itf.host_if_name) != itf.host_ifindex

    def vm_attach(self, itf: Interface, regions: int) -> None:
        """QEMU connected to (or left, ``regions == 0``) a vhost-user socket."""
        assert itf.vhost is not None
        itf.vhost.num_regions = regions
        if regions and not itf.rx_queues:
            # The guest's first kick registers the receive queue, in the vring's
            # mode: polling (vhost_user_rx_thread_placement). It stays, mode and
            # all, when the VM goes (vhost_user_vring_close keeps both).
            itf.rx_queues = {0: RX_MODE_POLLING}
        self.set_link(itf, itf.admin_up and regions > 0)

    # --- L2 -----------------------------------------------------------------------
    def bd_create(self, bd_id: int) -> BridgeDomain:
        """A bridge domain with VPP's defaults (everything on but ARP termination)."""
        bd = BridgeDomain(bd_id, self.bd_index.get())
        self.bds[bd_id] = bd
        return bd

    def bd_delete(self, bd: BridgeDomain) -> None:
        """Forget an (empty) bridge domain and free its index and id."""
        del self.bds[bd.bd_id]
        self.bd_index.put(bd.bd_index)
        self.bd_ids.put(bd.bd_id)

    def unused_bd_id(self) -> int:
        """An id for bridge_domain_add_del_v2 with bd_id ~0 (NO_INDEX if none is left)."""
        if len(self.bds) >= L2_BD_ID_MAX:
            return NO_INDEX
        if self.random_bd_ids:
            while True:
                bd_id = self.rng.randint(1, L2_BD_ID_MAX)
                if bd_id not in self.bds:
                    return bd_id
        return self.bd_ids.get(self.bds)  # type: ignore[arg-type]

    def set_bridge(self, itf: Interface, bd: BridgeDomain, shg: int, port_type: int) -> int:
        """set_int_l2_mode(MODE_L2_BRIDGE): returns 0 or the API error."""
        if not itf.ethernet:
            return e.NON_ETHERNET
        if port_type == PORT_BVI and bd.bvi_sw_if_index not in (NO_INDEX, itf.sw_if_index):
            return e.BD_ALREADY_HAS_BVI
        self.set_l3(itf)
        itf.shg, itf.port_type = shg, port_type
        if port_type == PORT_UU_FWD:
            bd.uu_fwd_sw_if_index = itf.sw_if_index
            itf.bd = bd
            return 0
        if port_type == PORT_BVI:
            bd.bvi_sw_if_index = itf.sw_if_index
        bd.members[itf.sw_if_index] = None
        itf.bd = bd
        return 0

    def set_l3(self, itf: Interface) -> None:
        """set_int_l2_mode(MODE_L3): leave the bridge domain, if in one."""
        bd = itf.bd
        if bd is not None:
            bd.members.pop(itf.sw_if_index, None)
            if bd.bvi_sw_if_index == itf.sw_if_index:
                bd.bvi_sw_if_index = NO_INDEX
            if bd.uu_fwd_sw_if_index == itf.sw_if_index:
                bd.uu_fwd_sw_if_index = NO_INDEX
        itf.bd, itf.shg, itf.port_type = None, 0, PORT_NORMAL

    def vtr_tags(self, itf: Interface) -> int:
        """How many VLAN tags the interface's classification fixes (l2vtr_configure)."""
        return 0 if itf.is_main else itf.n_tags
