"""VPP's API error codes, and the emulator's word for a broken connection.

The codes are VPP's ``VNET_API_ERROR_*`` values (``src/vnet/error.h``, which
``src/vnet/api_errno.h`` includes); only the ones the emulator returns are
named here. Clients see what vpp_papi raises (they talk to the emulator's
socket with it).
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


class ConnectionBroken(Exception):
    """A call that gets no answer: the socket server closes its connection.

    The connection is gone (VPP restarted or stopped), or a fault test breaks
    it (``VppEmulator.fail_next``); the client's call raises an ``IOError``.
    """
