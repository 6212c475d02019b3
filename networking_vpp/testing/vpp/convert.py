"""Values of VPP's special types, converted the way vpp_papi converts them.

vpp_papi accepts friendly Python values for a few types (a MAC as
``"aa:bb:cc:dd:ee:ff"``, an address as ``"10.0.0.1"`` or an ``ipaddress``
object, a prefix as ``"10.0.0.0/24"``...) and returns such objects in replies.
The emulator normalises request values to the same objects its replies carry,
so handlers work with one representation and dumps return what vpp_papi
would. Which input types convert is decided, as in vpp_papi, by the *name* of
the value's type.
"""

from __future__ import annotations

import binascii
import functools
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from networking_vpp.testing.vpp.errors import VPPSerializerValueError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class MACAddress(str):
    """A MAC address that is also its lower-case ``aa:bb:cc:dd:ee:ff`` string.

    vpp_papi returns its own ``MACAddress`` (``str()`` gives the text,
    ``.packed`` the six bytes); this one has the same surface and, being a
    ``str``, compares and hashes like the text. Its class name is the one
    vpp_papi's serializer recognises, so it can be passed back to a real VPP.
    """

    __slots__ = ()

    def __new__(cls, value: str | bytes | bytearray) -> MACAddress:
        if isinstance(value, (bytes, bytearray)):
            raw = bytes(value)
        else:
            try:
                raw = binascii.unhexlify(str(value).replace(":", ""))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"not a MAC address: {value!r}") from exc
        if len(raw) != 6:
            raise ValueError(f"not a MAC address: {value!r}")
        return super().__new__(cls, raw.hex(":"))

    @property
    def packed(self) -> bytes:
        """The six bytes."""
        return binascii.unhexlify(self.replace(":", ""))

    @property
    def mac_string(self) -> str:
        """The text form (vpp_papi's attribute name)."""
        return str(self)

    def __repr__(self) -> str:
        return f"MACAddress({self})"


ZERO_MAC = MACAddress(b"\0" * 6)


def _fail(what: str, value: Any) -> VPPSerializerValueError:
    return VPPSerializerValueError(f"cannot pack {value!r} as {what}")


def mac_in(value: Any, _: Any = None) -> MACAddress:
    """A ``vl_api_mac_address_t`` argument: text, bytes or a MACAddress object."""
    if not value:
        return ZERO_MAC
    if type(value) is str:
        return _mac_text(value)
    kind = type(value).__name__
    if kind == "MACAddress":
        raw = bytes(value.packed)
    elif kind == "str":
        return _mac_text(str(value))
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        raise _fail("vl_api_mac_address_t", value)
    return _mac_raw(raw, value)


@functools.lru_cache(maxsize=1 << 16)
def _mac_text(value: str) -> MACAddress:
    """A MAC given as text (cached: the same MAC repeats in a port's MACIP rules)."""
    if not value:
        return ZERO_MAC
    try:
        raw = binascii.unhexlify(value.replace(":", ""))
    except (binascii.Error, ValueError) as exc:
        raise _fail("vl_api_mac_address_t", value) from exc
    return _mac_raw(raw, value)


def _mac_raw(raw: bytes, value: Any) -> MACAddress:
    if len(raw) > 6:
        raise _fail("vl_api_mac_address_t", value)
    # Like the serializer's fixed-size pack, short values are zero-padded; six bytes
    # make a MACAddress without its constructor's checks.
    return str.__new__(MACAddress, raw.ljust(6, b"\0").hex(":"))


def _ip(value: Any, version: int | None, what: str) -> IPAddress:
    kind = type(value).__name__
    try:
        if kind in ("IPv4Address", "IPv6Address"):
            addr: IPAddress = value
        elif kind == "str":
            addr = ipaddress.ip_address(value)
        elif isinstance(value, (bytes, bytearray)) and version is not None:
            size = 4 if version == 4 else 16
            if len(value) > size:
                raise ValueError(value)
            raw = bytes(value).ljust(size, b"\0")
            addr = ipaddress.IPv4Address(raw) if version == 4 else ipaddress.IPv6Address(raw)
        else:
            raise ValueError(value)
    except ValueError as exc:
        raise _fail(what, value) from exc
    if version is not None and addr.version != version:
        raise _fail(what, value)
    return addr


def _address_from_dict(value: dict[str, Any]) -> IPAddress:
    af = value.get("af", 0) or 0
    un = value.get("un") or {}
    if af not in (0, 1) or not isinstance(un, dict):
        raise _fail("vl_api_address_t", value)
    raw = un.get("ip6" if af else "ip4") or b""
    return _ip(raw or (b"\0" * (16 if af else 4)), 6 if af else 4, "vl_api_address_t")


_HOST_BITS = "host_bits"


def had_host_bits(prefix: Any) -> bool:
    """Whether a prefix argument was given with host bits set (``"10.0.0.1/24"``).

    The value itself holds the network (host bits dropped, as vpp_papi unpacks
    it); VPP receives the bits as sent, and handlers that validate a prefix
    (the ACL plugin's ``ip_prefix_decode2``) refuse it, so the fact is kept.
    """
    return bool(getattr(prefix, "__dict__", {}).get(_HOST_BITS, False))


_NETWORKS = (ipaddress.IPv4Network, ipaddress.IPv6Network)


_FAMILIES: dict[int, tuple[int, Any, int]] = {
    4: (socket.AF_INET, ipaddress.IPv4Network, 32),
    6: (socket.AF_INET6, ipaddress.IPv6Network, 128),
}


@functools.lru_cache(maxsize=1 << 16)
def _network_text(value: str) -> Any:
    """``"a/len"`` as a network (cached: ACL rules repeat prefixes).

    The values are immutable and a string's host-bits mark is always the same,
    so one object per text can be shared. The address is parsed by the C
    library (``inet_pton`` takes exactly the forms ``ipaddress`` takes, and is
    ten times faster: anti-spoofing rules carry a new address per port); what
    it refuses goes to ``ipaddress``, which accepts or explains.
    """
    addr_text, plen_text = value.split("/")
    plen = int(plen_text)
    family, cls, bits = _FAMILIES[6 if ":" in addr_text else 4]
    try:
        addr = int.from_bytes(socket.inet_pton(family, addr_text), "big")
    except OSError:
        addr = int(ipaddress.ip_address(addr_text))  # ValueError, or a scoped IPv6 text
    if plen == bits:  # a host (anti-spoofing rules): the integer constructor, the same object
        return cls(addr)
    out = cls((addr, plen), strict=False)
    if addr != int(out.network_address):
        vars(out)[_HOST_BITS] = True
    return out


def _network(value: Any, what: str, version: int | None) -> Any:
    """A prefix: ``IPv4Network``/``IPv6Network``, ``"a/len"`` or ``{"address", "len"}``.

    Host bits are allowed on the way in and dropped on the way out, as vpp_papi
    unpacks a prefix (``strict=False``); see :func:`had_host_bits`.
    """
    kind = type(value).__name__
    addr: Any = None
    try:
        if kind in ("IPv4Network", "IPv6Network"):
            if type(value) in _NETWORKS and not had_host_bits(value):
                out = value  # immutable: no copy needed
            else:  # vpp_papi sends the network address: no host bits (nor their mark)
                out = ipaddress.ip_network((value.network_address, value.prefixlen))
        elif kind == "str":
            out = _network_text(value)
        elif isinstance(value, dict):
            raw = value.get("address")
            addr = _address_from_dict(raw) if isinstance(raw, dict) else _ip(raw, version, what)
            out = ipaddress.ip_network((addr, int(value.get("len", 0) or 0)), strict=False)
        else:
            raise ValueError(value)
    except (ValueError, TypeError) as exc:
        raise _fail(what, value) from exc
    if version is not None and out.version != version:
        raise _fail(what, value)
    if addr is not None and addr != out.network_address:
        # A fresh object (from a dict), so marking it affects no other value.
        vars(out)[_HOST_BITS] = True
    return out


def _interface(value: Any) -> Any:
    """An address with its prefix length: ``IPv4Interface``/``IPv6Interface`` or text."""
    kind = type(value).__name__
    try:
        if kind in ("IPv4Interface", "IPv6Interface", "str"):
            return ipaddress.ip_interface(str(value))
        if isinstance(value, dict):
            raw = value.get("address")
            addr = _address_from_dict(raw) if isinstance(raw, dict) else _ip(raw, None, "address")
            return ipaddress.ip_interface((addr, int(value.get("len", 0) or 0)))
        raise ValueError(value)
    except (ValueError, TypeError) as exc:
        raise _fail("vl_api_address_with_prefix_t", value) from exc


def address_in(value: Any, _: Any = None) -> IPAddress:
    """A ``vl_api_address_t``: text, ``ipaddress`` object or ``{"af", "un"}``."""
    if not value:
        return ipaddress.IPv4Address(0)
    if isinstance(value, dict):
        return _address_from_dict(value)
    return _ip(value, None, "vl_api_address_t")


_ZERO_IP4 = ipaddress.IPv4Address(0)
_ZERO_IP6 = ipaddress.IPv6Address(0)
# A zeroed prefix is address 0, length 0 (as vpp_papi unpacks it), not the /32 that
# IPv4Network(0) would make.
_ZERO_NET4 = ipaddress.IPv4Network((0, 0))
_ZERO_NET6 = ipaddress.IPv6Network((0, 0))
_ZERO_IF4 = ipaddress.IPv4Interface((0, 0))

#: (value, enclosing args) -> normalised: the codec's check signature, so that a
#: converter is its field's check itself (the enclosing args are not looked at)
Converter = Callable[[Any, Any], Any]


def _address_in(what: str, version: int, zero: IPAddress) -> Converter:
    def conv(value: Any, _: Any = None) -> IPAddress:
        return _ip(value, version, what) if value else zero

    return conv


def _prefix_in(what: str, version: int | None, zero: Any) -> Converter:
    def conv(value: Any, _: Any = None) -> Any:
        return _network(value, what, version) if value else zero

    return conv


def _interface_in(value: Any, _: Any = None) -> Any:
    return _interface(value) if value else _ZERO_IF4


#: type name -> (argument normaliser, value of a zeroed field)
SPECIAL: dict[str, tuple[Converter, Any]] = {
    "vl_api_mac_address_t": (mac_in, ZERO_MAC),
    "vl_api_ip4_address_t": (_address_in("vl_api_ip4_address_t", 4, _ZERO_IP4), _ZERO_IP4),
    "vl_api_ip6_address_t": (_address_in("vl_api_ip6_address_t", 6, _ZERO_IP6), _ZERO_IP6),
    "vl_api_address_t": (address_in, _ZERO_IP4),
    "vl_api_prefix_t": (_prefix_in("vl_api_prefix_t", None, _ZERO_NET4), _ZERO_NET4),
    "vl_api_ip4_prefix_t": (_prefix_in("vl_api_ip4_prefix_t", 4, _ZERO_NET4), _ZERO_NET4),
    "vl_api_ip6_prefix_t": (_prefix_in("vl_api_ip6_prefix_t", 6, _ZERO_NET6), _ZERO_NET6),
    "vl_api_address_with_prefix_t": (_interface_in, _ZERO_IF4),
}

#: type name -> the cached parser of a value given as text (a str exactly) that gives
#: what the normaliser gives, without a Python call for a text seen before; on an
#: error (ValueError, TypeError) the normaliser has the say, and words it
TEXT: dict[str, Callable[[str], Any]] = {
    "vl_api_mac_address_t": _mac_text,
    "vl_api_prefix_t": _network_text,  # any version: no test to add
}
