"""IP address text, fast: canonical prefixes and EUI-64 link-local addresses.

Every port's anti-spoofing rules carry its own addresses, so a cold start
turns thousands of address texts into canonical prefixes. ``ipaddress`` takes
15-50 µs for each; the C library's ``inet_pton`` parses in about 1 µs. The
results are exactly ``str(ipaddress.ip_network(text, strict=False))`` (the
form VPP's dumps come back in, so a restart compares equal): the formatter
below follows ``ipaddress``'s own rules, and whatever the fast path does not
cover (IPv4-mapped IPv6, scoped addresses, netmask-style prefixes, invalid
text) goes to ``ipaddress`` itself.
"""

from __future__ import annotations

import functools
import ipaddress
import socket

__all__ = ["canonical_prefix", "is_ip_address", "link_local"]

_MAPPED = 0xFFFF  # ::ffff:0:0/96, whose text differs between Python versions


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (as ``ipaddress.ip_address`` accepts)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
        return True
    except (OSError, ValueError, TypeError):
        pass
    try:  # what the C library refuses but ipaddress takes (a scoped IPv6, say)
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def canonical_prefix(text: str) -> str:
    """``"a"`` or ``"a/len"`` as ``str(ipaddress.ip_network(text, strict=False))``.

    Raises ``ValueError`` for what ``ipaddress`` refuses.
    """
    addr_text, slash, plen_text = text.partition("/")
    v6 = ":" in addr_text
    bits = 128 if v6 else 32
    if slash:
        if not (plen_text.isascii() and plen_text.isdigit() and len(plen_text) <= 3):
            return _slow(text)
        plen = int(plen_text)
        if plen > bits:
            return _slow(text)
    else:
        plen = bits
    try:
        packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, addr_text)
    except (OSError, ValueError):
        return _slow(text)
    value = int.from_bytes(packed, "big")
    value &= ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)  # drop host bits
    if not v6:
        return f"{socket.inet_ntop(socket.AF_INET, value.to_bytes(4, 'big'))}/{plen}"
    if value >> 32 == _MAPPED:
        return _slow(text)
    return f"{_v6_text(value)}/{plen}"


@functools.lru_cache(maxsize=4096)
def _slow(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))


def _v6_text(value: int) -> str:
    """RFC 5952 text as ``ipaddress`` writes it (the first longest 2+ zero-group run is ``::``)."""
    groups = [(value >> shift) & 0xFFFF for shift in range(112, -16, -16)]
    best_at, best_len, run_at, run_len = -1, 0, -1, 0
    for i, group in enumerate(groups):
        if group:
            run_len = 0
            continue
        if run_len == 0:
            run_at = i
        run_len += 1
        if run_len > best_len:
            best_at, best_len = run_at, run_len
    texts = [f"{g:x}" for g in groups]
    if best_len < 2:
        return ":".join(texts)
    head = ":".join(texts[:best_at])
    tail = ":".join(texts[best_at + best_len :])
    return f"{head}::{tail}"


def link_local(mac: str) -> str:
    """The IPv6 link-local address a host derives from ``mac`` (modified EUI-64), as text.

    ``fe80::`` then the interface id; its middle groups hold ``ff``/``fe`` and
    are never zero, so only a zero first group joins the ``::`` run.
    """
    b = bytes.fromhex(mac.replace(":", ""))
    if len(b) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    first = (b[0] ^ 0x02) << 8 | b[1]
    rest = f"{b[2] << 8 | 0xFF:x}:{0xFE00 | b[3]:x}:{b[4] << 8 | b[5]:x}"
    return f"fe80::{first:x}:{rest}" if first else f"fe80::{rest}"
