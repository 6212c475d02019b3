"""Values of VPP's special types as the handlers keep them.

Requests reach the handlers as vpp_papi's serializer unpacked them (an
address or a prefix as an ``ipaddress`` object, a MAC as vpp_papi's
``MACAddress``); the socket server turns a MAC into this module's
:class:`MACAddress`, a ``str`` that hashes and compares like its text, and
marks a prefix that was sent with host bits (vpp_papi unpacks the network,
dropping them; VPP sees them). Replies carry these values back to vpp_papi's
serializer, which packs them by the name of their type.
"""

from __future__ import annotations

import binascii
import ipaddress
from typing import Any


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


_HOST_BITS = "host_bits"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def mark_host_bits(prefix: Network) -> Network:
    """Note that ``prefix`` was sent with host bits set (``"10.0.0.1/24"``).

    ``prefix`` is a fresh object (each unpack makes its own), so the mark
    reaches no other value.
    """
    vars(prefix)[_HOST_BITS] = True
    return prefix


def had_host_bits(prefix: Any) -> bool:
    """Whether a prefix argument was given with host bits set (``"10.0.0.1/24"``).

    The value itself holds the network (host bits dropped, as vpp_papi unpacks
    it); VPP receives the bits as sent, and handlers that validate a prefix
    (the ACL plugin's ``ip_prefix_decode2``) refuse it, so the fact is kept.
    """
    return bool(getattr(prefix, "__dict__", {}).get(_HOST_BITS, False))
