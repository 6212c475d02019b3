"""Real frames as the emulator's frame I/O reads and writes them (rawframe.py):
parsing into the walk's Frame, tags rebuilt, checksums completed, GSO cut."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from networking_vpp.testing.netns import checksum
from networking_vpp.testing.vpp import rawframe

DST, SRC = bytes.fromhex("fa163e00000b"), bytes.fromhex("fa163e00000a")
IP4_A, IP4_B = "10.0.0.1", "10.0.0.2"
IP6_A, IP6_B = "2001:db8::1", "2001:db8::2"


def ip4(proto: int, l4: bytes, ident: int = 7, frag: int = 0) -> bytes:
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(l4),
            ident,
            frag,
            64,
            proto,
            0,
            ipaddress.IPv4Address(IP4_A).packed,
            ipaddress.IPv4Address(IP4_B).packed,
        )
    )
    struct.pack_into("!H", header, 10, checksum(bytes(header)))
    return bytes(header) + l4


def ip6(next_header: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64)
        + ipaddress.IPv6Address(IP6_A).packed
        + ipaddress.IPv6Address(IP6_B).packed
        + payload
    )


def tcp(payload: bytes = b"", flags: int = 0x18, seq: int = 1000, csum: int = 0) -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, 22, seq, 0, 5 << 4, flags, 512, csum, 0) + payload


def udp(payload: bytes, csum: int = 0) -> bytes:
    return struct.pack("!HHHH", 5000, 53, 8 + len(payload), csum) + payload


def eth(etype: int, l3: bytes, tags: bytes = b"") -> bytes:
    return DST + SRC + tags + struct.pack("!H", etype) + l3


def l4_ok(l3: bytes) -> bool:
    """The receiver's check: pseudo-header plus segment sums to zero."""
    if l3[0] >> 4 == 4:
        at = (l3[0] & 0x0F) * 4
        pseudo = l3[12:20] + struct.pack("!BBH", 0, l3[9], len(l3) - at)
    else:
        at = 40
        pseudo = l3[8:40] + struct.pack("!IxxxB", len(l3) - at, l3[6])
    return checksum(pseudo + l3[at:]) == 0


def partial(l3: bytes, field: int) -> bytes:
    """What an offloading kernel hands over: the pseudo-header sum, not complemented."""
    at = (l3[0] & 0x0F) * 4 if l3[0] >> 4 == 4 else 40
    if l3[0] >> 4 == 4:
        pseudo = l3[12:20] + struct.pack("!BBH", 0, l3[9], len(l3) - at)
    else:
        pseudo = l3[8:40] + struct.pack("!IxxxB", len(l3) - at, l3[6])
    out = bytearray(l3)
    struct.pack_into("!H", out, at + field, ~checksum(pseudo) & 0xFFFF)
    return bytes(out)


# --- parsing ---------------------------------------------------------------------------
def test_an_ipv4_tcp_frame_parses_to_the_walk_s_fields():
    frame, raw = rawframe.parse(eth(0x0800, ip4(6, tcp(flags=0x02))))
    assert (frame.src_mac, frame.dst_mac) == ("fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b")
    assert (frame.ethertype, frame.src_ip, frame.dst_ip, frame.proto) == (0x0800, IP4_A, IP4_B, 6)
    assert (frame.src_port, frame.dst_port, frame.tcp_flags) == (40000, 22, 0x02)
    assert frame.vlans == () and raw.etype == 0x0800


def test_tags_keep_their_tpids_and_a_fourth_type_is_payload():
    tags = struct.pack("!HHHH", 0x88A8, 0x2000 | 10, 0x8100, 20)
    frame, raw = rawframe.parse(eth(0x0800, ip4(1, b"\x08\x00\0\0"), tags))
    assert frame.tags == ((0x88A8, 10), (0x8100, 20))
    assert (frame.icmp_type, frame.icmp_code) == (8, 0)
    assert raw.tcis == (0x2000 | 10, 20)


def test_arp_gives_sender_and_target():
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + SRC + bytes([10, 0, 0, 1])
    arp += bytes(6) + bytes([10, 0, 0, 2])
    frame, _ = rawframe.parse(eth(0x0806, arp))
    assert (frame.src_ip, frame.dst_ip, frame.arp_sender_mac) == (IP4_A, IP4_B, frame.src_mac)


def test_a_later_fragment_has_no_ports():
    frame, _ = rawframe.parse(eth(0x0800, ip4(17, b"\x13\x88\x00\x35", frag=100)))
    assert frame.proto == 17 and frame.src_port is None and frame.dst_port is None


def test_ipv6_extension_headers_are_walked_to_icmpv6():
    hop_by_hop = bytes([58, 0]) + bytes(6)
    frame, _ = rawframe.parse(eth(0x86DD, ip6(0, hop_by_hop + b"\x87\x00\0\0")))
    assert (frame.src_ip, frame.proto, frame.icmp_type) == (IP6_A, 58, 135)


@pytest.mark.parametrize(
    "data",
    [b"\0" * 13, eth(0x0800, b"\x45" + bytes(10)), eth(0x86DD, bytes(39)), eth(0x0806, bytes(20))],
)
def test_malformed_frames_are_refused(data):
    with pytest.raises(rawframe.Malformed):
        rawframe.parse(data)


def test_the_kernel_s_stripped_tag_is_put_back():
    data = rawframe.insert_tag(eth(0x0800, ip4(1, b"\x08\x00\0\0")), 0x88A8, 0x6000 | 5)
    frame, _ = rawframe.parse(data)
    assert frame.tags == ((0x88A8, 5),)


# --- rebuilding with the walk's tags --------------------------------------------------------
def test_rebuilt_tags_keep_the_priority_of_those_left_and_push_plain_ones():
    tags = struct.pack("!HHHH", 0x8100, 0xA000 | 100, 0x8100, 0x4000 | 7)
    _, raw = rawframe.parse(eth(0x88B5, b"payload", tags))
    popped = rawframe.parse(raw.build(((0x8100, 7),)))[1]
    assert popped.tcis == (0x4000 | 7,)  # the inner tag, untouched
    pushed = rawframe.parse(raw.build(((0x88A8, 200), (0x8100, 100), (0x8100, 7))))[1]
    assert pushed.tags == ((0x88A8, 200), (0x8100, 100), (0x8100, 7))
    assert pushed.tcis == (200, 0xA000 | 100, 0x4000 | 7)
    assert raw.build(()) == eth(0x88B5, b"payload")


# --- checksums ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "l3",
    [
        partial(ip4(6, tcp(b"hello")), 16),
        partial(ip4(17, udp(b"hello world")), 6),
        partial(ip6(6, tcp(b"odd")), 16),
        partial(ip6(17, udp(b"x" * 101)), 6),
    ],
)
def test_a_partial_checksum_is_completed(l3):
    assert not l4_ok(l3)  # what the receiver drops without CKSUM_GSO
    assert l4_ok(rawframe.complete_checksum(l3))


def test_other_packets_are_left_alone():
    icmp = ip4(1, b"\x08\x00\xf7\xff")
    assert rawframe.complete_checksum(icmp) == icmp


def test_a_gso_super_frame_is_cut_into_segments():
    payload = bytes(range(256)) * 11  # 2816 bytes
    l3 = partial(ip4(6, tcp(payload, flags=0x18 | 0x01 | 0x80, seq=0xFFFFFF00)), 16)
    segments = rawframe.segment(l3, 1000)
    assert [len(s) - 40 for s in segments] == [1000, 1000, 816]
    assert b"".join(s[40:] for s in segments) == payload
    for n, s in enumerate(segments):
        assert checksum(s[:20]) == 0 and l4_ok(s)
        total, ident = struct.unpack_from("!HH", s, 2)
        assert (total, ident) == (len(s), 7 + n)
        assert struct.unpack_from("!I", s, 24)[0] == (0xFFFFFF00 + 1000 * n) & 0xFFFFFFFF
    assert [s[33] for s in segments] == [0x10 | 0x80, 0x10, 0x10 | 0x08 | 0x01]


def test_an_ipv6_super_frame_gets_its_payload_lengths():
    payload = b"y" * 2500
    segments = rawframe.segment(partial(ip6(6, tcp(payload)), 16), 1200)
    assert [struct.unpack_from("!H", s, 4)[0] for s in segments] == [1220, 1220, 120]
    assert all(l4_ok(s) for s in segments)
