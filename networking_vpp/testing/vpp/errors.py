"""VPP's API error codes and the client-side exceptions vpp_papi raises.

The codes are VPP's ``VNET_API_ERROR_*`` values (``src/vnet/error.h``, which
``src/vnet/api_errno.h`` includes); only the ones the emulator returns are
named here. The exception classes mirror vpp_papi's so that code written
against the emulator catches exactly what it would catch against a real VPP:
an ``IOError`` when the connection is gone, a ``ValueError`` for a bad
argument, a plain ``Exception`` for "not connected yet".
"""

from __future__ import annotations

# --- VNET_API_ERROR_* (src/vnet/error.h) ------------------------------------
UNSPECIFIED = -1
INVALID_SW_IF_INDEX = -2
NO_SUCH_ENTRY = -6
INVALID_VALUE = -7
INVALID_VALUE_2 = -8
UNIMPLEMENTED = -9
SYSCALL_ERROR_1 = -11
INVALID_REGISTRATION = -31
INVALID_VLAN = -55
VLAN_ALREADY_EXISTS = -56
INVALID_SRC_ADDRESS = -57
INVALID_DST_ADDRESS = -58
INVALID_INTERFACE = -71
INVALID_VLAN_TAG_COUNT = -72
INVALID_ARGUMENT = -73
IF_ALREADY_EXISTS = -79
INVALID_SUB_SW_IF_INDEX = -98
ENTRY_ALREADY_EXISTS = -116
BD_ALREADY_EXISTS = -119
BD_IN_USE = -120
BD_NOT_MODIFIABLE = -121
BD_ID_EXCEED_MAX = -122
ACL_IN_USE_INBOUND = -142
ACL_IN_USE_OUTBOUND = -143
NON_ETHERNET = -151
BD_ALREADY_HAS_BVI = -152
EAGAIN = -165

#: name of every code above, for readable test failures
NAMES = {v: k for k, v in globals().items() if k.isupper() and isinstance(v, int)}


# --- vpp_papi's exception surface -------------------------------------------
class VPPApiError(Exception):
    """Raised by ``client.api`` before the first ``connect()`` (as vpp_papi)."""


class VPPIOError(IOError):
    """The API connection is gone: VPP stopped, restarted or the socket broke."""


class VPPValueError(ValueError):
    """An argument that the message does not have (vpp_papi's ``validate_args``)."""


class VPPSerializerValueError(ValueError):
    """A value the serializer cannot pack: wrong type, out of range, too long."""
