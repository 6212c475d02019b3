"""Names of VPP's API error codes, for reports an operator can read.

VPP answers a failed request with a negative ``retval``, a ``vnet_error_t``
(``VNET_API_ERROR_*``) from the ``foreach_vnet_error`` list in VPP's
``src/vnet/error.h`` (included by ``src/vnet/api_errno.h``; the values are
stable across releases, new ones are only added). The table holds the codes
the agent's calls can meet (interfaces, vhost-user, af_packet, sub-interfaces,
bridge domains, L2, the ACL plugin and its classifier tables), not the whole
list: a code missing here is still reported, by its number.

The emulator has its own table (``networking_vpp.testing.vpp.errors``): the
agent does not import the test rig; a unit test checks the two agree.
"""

from __future__ import annotations

from typing import Final

#: retval -> VPP's name (VNET_API_ERROR_<name>)
NAMES: Final[dict[int, str]] = {
    -1: "UNSPECIFIED",
    -2: "INVALID_SW_IF_INDEX",
    -3: "NO_SUCH_FIB",
    -6: "NO_SUCH_ENTRY",
    -7: "INVALID_VALUE",
    -8: "INVALID_VALUE_2",
    -9: "UNIMPLEMENTED",
    -10: "INVALID_SW_IF_INDEX_2",
    -11: "SYSCALL_ERROR_1",
    -12: "SYSCALL_ERROR_2",
    -13: "SYSCALL_ERROR_3",
    -14: "SYSCALL_ERROR_4",
    -15: "SYSCALL_ERROR_5",
    -30: "FEATURE_DISABLED",
    -31: "INVALID_REGISTRATION",
    -55: "INVALID_VLAN",
    -56: "VLAN_ALREADY_EXISTS",
    -57: "INVALID_SRC_ADDRESS",
    -58: "INVALID_DST_ADDRESS",
    -63: "NO_SUCH_NODE",
    -65: "NO_SUCH_TABLE",
    -68: "SUBIF_ALREADY_EXISTS",
    -69: "SUBIF_CREATE_FAILED",
    -70: "INVALID_MEMORY_SIZE",
    -71: "INVALID_INTERFACE",
    -72: "INVALID_VLAN_TAG_COUNT",
    -73: "INVALID_ARGUMENT",
    -74: "UNEXPECTED_INTF_STATE",
    -77: "RESPONSE_NOT_READY",
    -78: "NOT_CONNECTED",
    -79: "IF_ALREADY_EXISTS",
    -81: "VALUE_EXIST",
    -91: "CLASSIFY_TABLE_NOT_FOUND",
    -98: "INVALID_SUB_SW_IF_INDEX",
    -99: "TABLE_TOO_BIG",
    -100: "CANNOT_ENABLE_DISABLE_FEATURE",
    -107: "QUEUE_FULL",
    -116: "ENTRY_ALREADY_EXISTS",
    -119: "BD_ALREADY_EXISTS",
    -120: "BD_IN_USE",
    -121: "BD_NOT_MODIFIABLE",
    -122: "BD_ID_EXCEED_MAX",
    -123: "SUBIF_DOESNT_EXIST",
    -125: "INVALID_QUEUE",
    -126: "UNSUPPORTED",
    -142: "ACL_IN_USE_INBOUND",
    -143: "ACL_IN_USE_OUTBOUND",
    -144: "INIT_FAILED",
    -145: "NETLINK_ERROR",
    -147: "INSTANCE_IN_USE",
    -149: "ACL_IN_USE_BY_LOOKUP_CONTEXT",
    -150: "INVALID_VALUE_3",
    -151: "NON_ETHERNET",
    -152: "BD_ALREADY_HAS_BVI",
    -155: "RSRC_IN_USE",
    -160: "NO_CHANGE",
    -162: "LIMIT_EXCEEDED",
    -165: "EAGAIN",
    -166: "INVALID_VALUE_4",
    -167: "BUSY",
    -168: "BUG",
    -169: "FEATURE_ALREADY_DISABLED",
    -170: "FEATURE_ALREADY_ENABLED",
    -171: "TIMEOUT",
}


def name(retval: int) -> str:
    """VPP's name for ``retval``; a code the table lacks is named by its number."""
    return NAMES.get(retval) or f"unknown VPP error {retval}"
