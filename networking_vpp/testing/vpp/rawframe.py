"""Real Ethernet frames: bytes to the walk's ``Frame`` and back, checksums, GSO.

The frame I/O (``frameio.py``) reads bytes from kernel devices. This module
turns them into the :class:`~networking_vpp.testing.vpp.packet.Frame` the
packet walk decides on (:func:`parse`), rebuilds the bytes of each copy with
the tags the walk gave it (:meth:`Raw.build`), and does the two things VPP does
to a frame whose af_packet socket carries a virtio-net header (CKSUM_GSO):

* a frame the kernel marked NEEDS_CSUM (its TCP/UDP checksum is partial) gets
  its checksum completed on the way out (:func:`complete_checksum`): VPP's
  interface-output computes it (``vnet_calc_checksums_inline``) or lets the
  kernel do it through the egress socket's own virtio-net header;
* a TCP GSO super-frame (``gso_type`` TCPV4/TCPV6) is cut into ``gso_size``
  segments (:func:`segment`), as the kernel (or VPP's gso node) does before
  a receiver sees them.

Without CKSUM_GSO none of this happens: the bytes go out as they came in.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
import sys
from array import array

from networking_vpp.testing.vpp.packet import Frame
from networking_vpp.testing.vpp.vlan import TAGGED, Tag

ETH_IP4, ETH_IP6, ETH_ARP = 0x0800, 0x86DD, 0x0806
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMP6 = 1, 6, 17, 58
# IPv6 extension headers the parser walks through to the L4 header
_IP6_EXT = frozenset({0, 43, 60})
_IP6_FRAGMENT = 44
_MAX_TAGS = 8  # more than any VPP counts; the rest is payload
_TCP_FIN, _TCP_PSH, _TCP_CWR = 0x01, 0x08, 0x80


class Malformed(ValueError):
    """Bytes no Ethernet/IP parser would take (too short, bad lengths)."""


def _mac(b: bytes) -> str:
    return b.hex(":")


@dataclasses.dataclass(frozen=True)
class Raw:
    """A frame's bytes, split where the walk may change them.

    ``tcis`` are the tags' 16-bit TCI fields (priority bits included), outer
    first, as parsed; ``etype`` the type after them and ``l3`` what follows.
    """

    dst: bytes
    src: bytes
    tags: tuple[Tag, ...]
    tcis: tuple[int, ...]
    etype: int
    l3: bytes

    def build(self, tags: tuple[Tag, ...], l3: bytes | None = None) -> bytes:
        """The frame with ``tags`` (and another ``l3``, e.g. a segment).

        The tags the walk left in place (the inner ones, matched from the
        inside by VLAN id) keep their priority bits; tags it pushed have none,
        as VPP's tag rewrite writes them.
        """
        kept = 0
        while (
            kept < len(tags)
            and kept < len(self.tags)
            and tags[-1 - kept][1] == self.tags[-1 - kept][1]
        ):
            kept += 1
        out = bytearray(self.dst + self.src)
        for i, (tpid, vid) in enumerate(tags):
            j = i - (len(tags) - kept)
            pcp = self.tcis[len(self.tcis) - kept + j] & 0xF000 if j >= 0 else 0
            out += struct.pack("!HH", tpid, pcp | vid)
        out += struct.pack("!H", self.etype)
        out += self.l3 if l3 is None else l3
        return bytes(out)


def insert_tag(data: bytes, tpid: int, tci: int) -> bytes:
    """Put back the outer tag the kernel stripped into the packet's metadata."""
    return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]


def parse(data: bytes) -> tuple[Frame, Raw]:
    """The walk's view of an Ethernet frame, and its bytes split for rebuilding."""
    if len(data) < 14:
        raise Malformed("shorter than an Ethernet header")
    tags: list[Tag] = []
    tcis: list[int] = []
    at = 12
    (etype,) = struct.unpack_from("!H", data, at)
    while etype in TAGGED and len(tags) < _MAX_TAGS and len(data) >= at + 6:
        (tci,) = struct.unpack_from("!H", data, at + 2)
        tags.append((etype, tci & 0x0FFF))
        tcis.append(tci)
        at += 4
        (etype,) = struct.unpack_from("!H", data, at)
    raw = Raw(data[0:6], data[6:12], tuple(tags), tuple(tcis), etype, data[at + 2 :])
    fields = _l3_fields(etype, raw.l3)
    frame = Frame(
        src_mac=_mac(raw.src),
        dst_mac=_mac(raw.dst),
        vlans=tuple(v for _, v in tags),
        tpids=tuple(t for t, _ in tags),
        ethertype=etype,
        **fields,  # type: ignore[arg-type]
    )
    return frame, raw


def _l3_fields(etype: int, l3: bytes) -> dict[str, object]:
    if etype == ETH_IP4:
        return _ip4_fields(l3)
    if etype == ETH_IP6:
        return _ip6_fields(l3)
    if etype == ETH_ARP:
        if len(l3) < 28:
            raise Malformed("short ARP")
        return {
            "arp_sender_mac": _mac(l3[8:14]),
            "src_ip": str(ipaddress.IPv4Address(l3[14:18])),
            "dst_ip": str(ipaddress.IPv4Address(l3[24:28])),
        }
    return {}


def _ip4_fields(l3: bytes) -> dict[str, object]:
    if len(l3) < 20 or l3[0] >> 4 != 4 or (ihl := (l3[0] & 0x0F) * 4) < 20 or len(l3) < ihl:
        raise Malformed("bad IPv4 header")
    proto = l3[9]
    fields: dict[str, object] = {
        "src_ip": str(ipaddress.IPv4Address(l3[12:16])),
        "dst_ip": str(ipaddress.IPv4Address(l3[16:20])),
        "proto": proto,
    }
    (frag,) = struct.unpack_from("!H", l3, 6)
    if frag & 0x1FFF == 0:  # later fragments carry no L4 header
        fields.update(_l4_fields(proto, l3[ihl:], PROTO_ICMP))
    return fields


def l4_offset_ip6(l3: bytes) -> tuple[int, int, bool] | None:
    """(L4 protocol, offset of its header, first fragment) past the extension
    headers; None if they run off the end."""
    proto, at, first = l3[6], 40, True
    while proto in _IP6_EXT or proto == _IP6_FRAGMENT:
        if len(l3) < at + 8:
            return None
        if proto == _IP6_FRAGMENT:
            (off,) = struct.unpack_from("!H", l3, at + 2)
            first = first and off >> 3 == 0
            proto, at = l3[at], at + 8
        else:
            proto, at = l3[at], at + (l3[at + 1] + 1) * 8
    return proto, at, first


def _ip6_fields(l3: bytes) -> dict[str, object]:
    if len(l3) < 40 or l3[0] >> 4 != 6:
        raise Malformed("bad IPv6 header")
    found = l4_offset_ip6(l3)
    if found is None:
        raise Malformed("IPv6 extension headers run off the end")
    proto, at, first = found
    fields: dict[str, object] = {
        "src_ip": str(ipaddress.IPv6Address(l3[8:24])),
        "dst_ip": str(ipaddress.IPv6Address(l3[24:40])),
        "proto": proto,
    }
    if first:
        fields.update(_l4_fields(proto, l3[at:], PROTO_ICMP6))
    return fields


def _l4_fields(proto: int, l4: bytes, icmp: int) -> dict[str, object]:
    if proto == icmp and len(l4) >= 2:
        return {"icmp_type": l4[0], "icmp_code": l4[1]}
    if proto in (PROTO_TCP, PROTO_UDP) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4)
        fields: dict[str, object] = {"src_port": sport, "dst_port": dport}
        if proto == PROTO_TCP and len(l4) >= 14:
            fields["tcp_flags"] = l4[13]
        return fields
    return {}


# --- checksums -----------------------------------------------------------------------
def _sum16(data: bytes) -> int:
    """The one's complement sum of ``data`` as big-endian 16-bit words (unfolded
    halves are fine: the caller folds)."""
    if len(data) % 2:
        data += b"\0"
    words = array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words)


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _l4_location(l3: bytes) -> tuple[int, int, bytes] | None:
    """(protocol, L4 offset, pseudo-header bytes but the length) of an IP packet."""
    version = l3[0] >> 4 if l3 else 0
    if version == 4 and len(l3) >= 20:
        return l3[9], (l3[0] & 0x0F) * 4, l3[12:20]
    if version == 6 and len(l3) >= 40:
        found = l4_offset_ip6(l3)
        if found is None:
            return None
        return found[0], found[1], l3[8:40]
    return None


def complete_checksum(l3: bytes) -> bytes:
    """The IP packet with its TCP or UDP checksum computed in full (pseudo-header
    and all), whatever the field held: what VPP's interface-output does for a
    buffer that arrived with checksum offload pending. Other packets unchanged."""
    where = _l4_location(l3)
    if where is None:
        return l3
    proto, at, pseudo = where
    field = {PROTO_TCP: 16, PROTO_UDP: 6}.get(proto)
    if field is None or len(l3) < at + field + 2:
        return l3
    out = bytearray(l3)
    out[at + field : at + field + 2] = b"\0\0"
    length = len(l3) - at
    total = _sum16(pseudo) + proto + length + _sum16(bytes(out[at:]))
    checksum = ~_fold(total) & 0xFFFF
    if proto == PROTO_UDP and checksum == 0:
        checksum = 0xFFFF  # 0 means "no checksum" for UDP
    struct.pack_into("!H", out, at + field, checksum)
    return bytes(out)


def _ip4_header_checksum(header: bytearray) -> None:
    header[10:12] = b"\0\0"
    struct.pack_into("!H", header, 10, ~_fold(_sum16(bytes(header))) & 0xFFFF)


def segment(l3: bytes, mss: int) -> list[bytes]:
    """A TCP GSO super-packet cut into segments of ``mss`` payload bytes, each
    with its own lengths, IPv4 id, sequence number and checksums (FIN and PSH
    on the last only, CWR on the first only), as the kernel's tcp_gso_segment
    makes them. Anything else is returned whole."""
    where = _l4_location(l3)
    if where is None or where[0] != PROTO_TCP or mss <= 0:
        return [l3]
    _, at, _ = where
    if len(l3) < at + 20:
        return [l3]
    thlen = (l3[at + 12] >> 4) * 4
    payload = l3[at + thlen :]
    if len(payload) <= mss:
        return [complete_checksum(l3)]
    header, tcp = bytearray(l3[:at]), bytearray(l3[at : at + thlen])
    (seq,) = struct.unpack_from("!I", tcp, 4)
    flags = tcp[13]
    v4 = l3[0] >> 4 == 4
    ip_id = struct.unpack_from("!H", header, 4)[0] if v4 else 0
    out = []
    for n, start in enumerate(range(0, len(payload), mss)):
        chunk = payload[start : start + mss]
        last = start + mss >= len(payload)
        struct.pack_into("!I", tcp, 4, (seq + start) & 0xFFFFFFFF)
        tcp[13] = flags & ~((0 if last else _TCP_FIN | _TCP_PSH) | (_TCP_CWR if n else 0))
        if v4:
            struct.pack_into("!HH", header, 2, at + thlen + len(chunk), (ip_id + n) & 0xFFFF)
            _ip4_header_checksum(header)
        else:
            struct.pack_into("!H", header, 4, at - 40 + thlen + len(chunk))
        out.append(complete_checksum(bytes(header) + bytes(tcp) + chunk))
    return out
