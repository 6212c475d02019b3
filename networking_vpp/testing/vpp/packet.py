"""The packet walk: where does a frame arriving on a port leave VPP?

A model of VPP's L2 path, one hop at a time, each O(1) but for floods:

1. *ethernet-input*: a frame arrives on a port (a main interface: NIC,
   vhost-user, af_packet) that must be admin up with its link up; af_packet
   rewrites an 802.1ad outer tag as 802.1Q. Its tags pick the interface it
   belongs to (``vlan.py``: exact and non-exact, dot1q and dot1ad, two-tag and
   default sub-interfaces, then the port itself, which in L2 mode takes any
   tags); no match, or a match that is admin down, drops it. How many tags
   ethernet-input counted (at most three) travels with the frame: what
   follows them is its type for the ACL plugin.
2. *l2-input*: an interface in L3 mode forwards nothing here (no routing
   yet). VLAN tag rewrite on input (pop-1 on a VLAN sub-interface...).
   **Input ACLs are applied here** (``L2Features.input``; by default the
   ACL plugin's ``AclFeatures``: the interface's input ACLs, then MACIP).
3. *l2-learn*: the source MAC is learnt on the input interface, per bridge
   domain, if the bridge domain learns, up to its learn limit; entries age
   out after the bridge domain's mac_age minutes (``l2learn.py``).
4. *l2-fwd* / *l2-flood*: a broadcast/multicast destination floods (if the
   bridge domain floods); a known unicast destination goes to its interface
   (if the bridge domain forwards; never back where it came from); an
   unknown one goes to the uu-fwd interface, else floods if uu_flood is on.
   Floods skip the input interface and members of its split-horizon group.
5. *l2-output*: the output interface's tag rewrite is undone (a pop-1
   sub-interface pushes its VLAN back, 0x88a8 on a dot1ad one), egress VLAN
   filtering drops what would not come back in on that interface (``vlan.py``;
   VPP runs it after the ACL plugin's output nodes, which only matters for the
   sessions of a frame it drops, on an interface with both), **output ACLs are
   applied here**
   (``L2Features.output``: MACIP egress, then the output ACLs), and the
   frame leaves by the output interface's port, which must be admin up with
   its link up (a vhost-user port whose VM is not connected drops it).

Checksums (``src/plugins/af_packet/node.c``): a kernel interface whose TX
checksum offload is on (a veth's default) hands af_packet TCP and UDP frames
with a *partial* checksum. With CKSUM_GSO the socket carries a virtio-net
header whose NEEDS_CSUM makes af_packet-input mark the buffer for checksum
offload, and the checksum is completed on the way out; without it VPP reads
bare frames and forwards the partial checksum as it is, so the receiver drops
the frame. ``Egress.checksum_ok`` says which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from networking_vpp.testing.vpp import l2learn, vlan
from networking_vpp.testing.vpp.state import NO_INDEX, Interface, State
from networking_vpp.testing.vpp.vlan import ETH_DOT1AD, ETH_VLAN, Tag

# l2_vtr_op_t -> (tags popped on input, pushes tag1? tag2?)
_VTR_INPUT = {
    1: (0, 1),  # PUSH_1
    2: (0, 2),  # PUSH_2
    3: (1, 0),  # POP_1
    4: (2, 0),  # POP_2
    5: (1, 1),  # TRANSLATE_1_1
    6: (1, 2),  # TRANSLATE_1_2
    7: (2, 1),  # TRANSLATE_2_1
    8: (2, 2),  # TRANSLATE_2_2
}
AF_PACKET_FLAG_CKSUM_GSO = 2  # vl_api_af_packet_flags_t
# The L4 protocols whose checksum the kernel leaves partial (ICMP's it always computes)
_OFFLOADED_L4 = frozenset({6, 17})
_IP_TYPES = frozenset({0x0800, 0x86DD})


@dataclasses.dataclass(frozen=True)
class Frame:
    """An Ethernet frame; ``vlans`` lists the VLAN ids of its tags, outer first,
    ``tpids`` their TPIDs (those not given are 0x8100: 802.1Q).

    ``counted`` is VPP's buffer metadata, not the wire's: how many of the tags
    ethernet-input counted (``vnet_buffer(b)->l2.l2_len``); the walk sets it,
    None means "count them as ethernet-input would".

    The L3/L4 fields are for the ACL features (L2 forwarding ignores them).
    ``ethertype`` 0x0800 is IPv4, 0x86DD IPv6, 0x0806 ARP. For IP: ``src_ip``,
    ``dst_ip``, ``proto`` (None: 0), ``src_port``/``dst_port`` for TCP and UDP,
    ``icmp_type``/``icmp_code`` for ICMP (proto 1) and ICMPv6 (58) - VPP's
    ACLs match those in the rule's port ranges - and ``tcp_flags``. For ARP:
    ``src_ip``/``dst_ip`` are the sender and target protocol addresses and
    ``arp_sender_mac`` the sender hardware address (None: ``src_mac``).
    """

    src_mac: str
    dst_mac: str
    vlans: tuple[int, ...] = ()
    tpids: tuple[int, ...] = ()
    ethertype: int = 0x0800
    src_ip: str | None = None
    dst_ip: str | None = None
    proto: int | None = None
    src_port: int | None = None
    dst_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    tcp_flags: int = 0
    arp_sender_mac: str | None = None
    counted: int | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "src_mac", self.src_mac.lower())
        object.__setattr__(self, "dst_mac", self.dst_mac.lower())
        object.__setattr__(self, "vlans", tuple(self.vlans))
        if len(self.tpids) > len(self.vlans):
            raise ValueError(f"more TPIDs than tags: {self.tpids} for {self.vlans}")
        pad = (ETH_VLAN,) * (len(self.vlans) - len(self.tpids))
        object.__setattr__(self, "tpids", tuple(self.tpids) + pad)
        if self.arp_sender_mac is not None:
            object.__setattr__(self, "arp_sender_mac", self.arp_sender_mac.lower())

    def reply(self, **changes: object) -> Frame:
        """The frame coming back: MACs, IPs and ports swapped (then ``changes``)."""
        swapped = dataclasses.replace(
            self,
            src_mac=self.dst_mac,
            dst_mac=self.src_mac,
            src_ip=self.dst_ip,
            dst_ip=self.src_ip,
            src_port=self.dst_port,
            dst_port=self.src_port,
            arp_sender_mac=None,
        )
        return dataclasses.replace(swapped, **changes) if changes else swapped  # type: ignore[arg-type]

    @property
    def tags(self) -> tuple[Tag, ...]:
        """(TPID, VLAN id) of each tag, outer first."""
        return tuple(zip(self.tpids, self.vlans, strict=True))

    @property
    def l3_type(self) -> int:
        """The type after the tags ethernet-input counted: what the feature arcs
        and the ACL plugin take for the ethertype (a TPID, past three tags)."""
        n = vlan.counted(self.tags) if self.counted is None else self.counted
        return self.tpids[n] if n < len(self.tpids) else self.ethertype

    def with_tags(self, tags: tuple[Tag, ...], counted: int | None = None) -> Frame:
        """The same frame with other tags (and count)."""
        return dataclasses.replace(
            self,
            vlans=tuple(v for _, v in tags),
            tpids=tuple(t for t, _ in tags),
            counted=counted,
        )


@dataclasses.dataclass(frozen=True)
class Egress:
    """A copy of the frame leaving VPP: by port ``sw_if_index``/``name``, with
    ``vlans`` (and their ``tpids``).

    ``via`` is the L2 output interface it was sent through (the VLAN
    sub-interface, for a frame leaving by an uplink on a VLAN network).
    ``checksum_ok`` is False for a TCP/UDP frame that leaves with the partial
    checksum a kernel handed over: its receiver drops it.
    """

    sw_if_index: int
    name: str
    vlans: tuple[int, ...]
    via: int
    checksum_ok: bool = True
    tpids: tuple[int, ...] = ()
    frame: Frame | None = dataclasses.field(default=None, compare=False, repr=False)


class L2Features:
    """The feature hooks of the L2 path; the default permits everything.

    The ACL emulation overrides ``input`` and ``output`` to return the verdict
    of the interface's ACLs for the frame (``itf`` is the L2 input or output
    interface, ``frame`` the frame as it is at that point).
    """

    def input(self, itf: Interface, frame: Frame) -> bool:
        """Permit (True) or drop a frame entering L2 on ``itf``."""
        return True

    def output(self, itf: Interface, frame: Frame) -> bool:
        """Permit (True) or drop a frame leaving L2 by ``itf``."""
        return True


def is_multicast(mac: str) -> bool:
    """Group bit set: broadcast and multicast."""
    return int(mac[:2], 16) & 1 == 1


def _pushed(itf: Interface, n: int) -> tuple[Tag, ...]:
    """The tags an input rewrite pushes: the outer one 802.1Q if push_dot1q, else
    802.1ad; an inner one 802.1Q (l2vtr_configure)."""
    outer = ETH_VLAN if itf.vtr_push_dot1q else ETH_DOT1AD
    return ((outer, itf.vtr_tag1), (ETH_VLAN, itf.vtr_tag2))[:n]


def rewrite_input(itf: Interface, tags: tuple[Tag, ...]) -> tuple[Tag, ...] | None:
    """The tags after the interface's input tag rewrite (None: too few to pop)."""
    op = _VTR_INPUT.get(itf.vtr_op)
    if op is None:
        return tags
    pop, push = op
    if len(tags) < pop:
        return None
    return _pushed(itf, push) + tags[pop:]


def rewrite_output(itf: Interface, tags: tuple[Tag, ...]) -> tuple[Tag, ...] | None:
    """Output undoes input: pop what input pushed, push back what it popped:
    the sub-interface's own tags (0x88a8 outer on a dot1ad one)."""
    op = _VTR_INPUT.get(itf.vtr_op)
    if op is None:
        return tags
    popped, pushed = op
    if len(tags) < pushed:
        return None
    own: tuple[Tag, ...] = ()
    if not itf.is_main:
        outer = ETH_DOT1AD if itf.sub_if_flags & vlan.SUB_DOT1AD else ETH_VLAN
        own = ((outer, itf.outer_vlan), (ETH_VLAN, itf.inner_vlan))
    return own[:popped] + tags[pushed:]


def _vtr_delta(itf: Interface) -> int:
    """Tags an input rewrite adds (negative: removes); output does the opposite."""
    op = _VTR_INPUT.get(itf.vtr_op)
    return 0 if op is None else op[1] - op[0]


def l4_checksum_ok(port: Interface, frame: Frame, kernel_offloads: Mapping[str, bool]) -> bool:
    """Whether ``frame``, arriving on ``port``, leaves VPP with a right L4 checksum.

    Only a frame from a kernel interface with TX checksum offload on can be
    wrong, and only if its af_packet interface lacks CKSUM_GSO.
    """
    host = port.host_if_name
    if host is None or not kernel_offloads.get(host, False):
        return True  # not from a kernel, or the kernel computed the checksum
    if frame.ethertype not in _IP_TYPES or frame.proto not in _OFFLOADED_L4:
        return True
    return bool(port.afp_flags & AF_PACKET_FLAG_CKSUM_GSO)


def _port(state: State, itf: Interface) -> Interface | None:
    return itf if itf.is_main else state.get(itf.sup_sw_if_index)


def _output(
    state: State, features: L2Features, itf: Interface, frame: Frame, checksum_ok: bool
) -> Egress | None:
    port = _port(state, itf)
    if port is None or not (itf.admin_up and port.admin_up and port.link_up):
        return None
    if itf.efp and itf.vtr_op:
        # l2_efp_filter_process, before the rewrite: the tags input pushes are there
        pushed = _pushed(itf, _VTR_INPUT.get(itf.vtr_op, (0, 0))[1])
        if frame.tags[: len(pushed)] != pushed:
            return None
    tags = rewrite_output(itf, frame.tags)
    if tags is None:
        return None
    n = (frame.counted or 0) - _vtr_delta(itf)
    out = frame.with_tags(tags, n)
    # l2_output.h runs the output features from the highest bit down: the ACL
    # plugin's nodes (OUTPUT_FEAT_ARC) before EFP_FILTER, so a flow the ACLs
    # reflect has its session even when the filter drops the frame.
    if not features.output(itf, out):
        return None
    if itf.efp and not vlan.efp_accepts(state, itf, port, tags, n):
        return None
    vlans = tuple(v for _, v in tags)
    tpids = tuple(t for t, _ in tags)
    return Egress(port.sw_if_index, port.name, vlans, itf.sw_if_index, checksum_ok, tpids, out)


def walk(
    state: State,
    features: L2Features,
    frame: Frame,
    ingress: int | str,
    kernel_offloads: Mapping[str, bool] | None = None,
) -> list[Egress]:
    """Every copy of ``frame`` that leaves VPP, in bridge-domain member order.

    ``kernel_offloads``: kernel interface name -> TX checksum offload on.
    """
    port = state.by_name.get(ingress) if isinstance(ingress, str) else state.get(ingress)
    if port is None:
        raise ValueError(f"VPP has no interface {ingress!r}")
    if not port.is_main:
        raise ValueError(f"{port.name} is a sub-interface: frames arrive on ports")
    if not (port.admin_up and port.link_up):
        return []
    checksum_ok = kernel_offloads is None or l4_checksum_ok(port, frame, kernel_offloads)
    tags = frame.tags
    if port.host_if_name is not None:
        tags = vlan.af_packet_input(tags)
    itf = vlan.classify(state, port, tags)
    if itf is None or not itf.admin_up:
        return []  # UNKNOWN_VLAN, or a sub-interface that is down
    bd = itf.bd
    if bd is None or bd.bd_id == 0 or bd.uu_fwd_sw_if_index == itf.sw_if_index:
        return []  # L3 mode (routing is not emulated yet), or the drop-only bridge domain 0
    counted = vlan.counted(tags)
    tags_in = rewrite_input(itf, tags)
    if tags_in is None:
        return []
    frame = frame.with_tags(tags_in, counted + _vtr_delta(itf))
    if not features.input(itf, frame):
        return []
    if bd.learn and not is_multicast(frame.src_mac):
        l2learn.learn(state, bd, frame.src_mac, itf.sw_if_index)
    if is_multicast(frame.dst_mac):
        targets = list(bd.members) if bd.flood else []
    else:
        known = bd.fib.get(frame.dst_mac) if bd.forward else None
        if known is not None and known not in bd.members:
            l2learn.forget(bd, frame.dst_mac)  # learnt on an interface that has left since
            known = None
        if known is not None:
            targets = [known]
        elif bd.uu_fwd_sw_if_index != NO_INDEX:
            targets = [bd.uu_fwd_sw_if_index]
        else:
            targets = list(bd.members) if bd.uu_flood else []
    out = []
    for index in targets:
        member = state.get(index)
        if index == itf.sw_if_index or member is None:
            continue
        if itf.shg and member.shg == itf.shg:
            continue  # split horizon
        egress = _output(state, features, member, frame, checksum_ok)
        if egress is not None:
            out.append(egress)
    return out
