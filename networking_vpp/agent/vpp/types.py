"""Plain records of VPP's actual state, as the adapter's dumps return them.

These types carry no vpp_papi objects: MACs are lower-case strings, enums are
ints, so the rest of the agent never depends on vpp_papi's classes.
"""

from __future__ import annotations

import dataclasses
import hashlib

# Tag conventions: every VPP object the agent creates carries one of these
# tags, which is how a restarted agent recognises (and adopts or removes) its
# own objects. VPP tags are at most 63 characters (64 bytes with the NUL, in
# every message that carries one: interfaces, vhost-user, bridge domains, ACLs
# and MACIP ACLs).
#
# A tag is "<kind tag><id>@<host id>": the body says what the object is
# (PORT_TAG + port id, ...), the host id whose it is - the first 8 hex digits
# of the SHA-256 of the agent's host name (``host_id``), so that two agents
# pointed at one VPP by mistake never take each other's objects. The longest,
# a group's ACL, is 60 characters with a UUID: "net-vpp.sg:<36>:out@<8>".
# Tags of older agents have no "@<host id>": an agent adopts such objects and
# re-tags them with its host id, once (``parse_tag``).
TAG_PREFIX = "net-vpp."
HOST_MARK = "@"
PORT_TAG = TAG_PREFIX + "port:"  # + port id (vhost-user / af_packet interface)
UPLINK_TAG = TAG_PREFIX + "uplink:"  # + "<physnet>.<vlan>" (VLAN sub-interface)
NETWORK_TAG = TAG_PREFIX + "net:"  # + network id (bridge domain)
#: An uplink VLAN sub-interface's tag ends so once its egress VLAN filter is on
#: (VPP has no dump of that filter; sub-interfaces of older agents lack it)
EFP_MARK = ":efp"
#: The default sub-interface that drops the tags nothing else takes on an
#: uplink, with its egress filter on (agent/reconcile/isolation.py)
GUARD_TAG = TAG_PREFIX + "guard"
GUARD_SUB_ID = 4095  # VLAN 4095 is reserved (802.1Q): never a VLAN sub-interface's id
SUB_IF_DEFAULT = 32  # vl_api_sub_if_flags_t SUB_IF_API_FLAG_DEFAULT

NO_INDEX = 0xFFFFFFFF  # ~0: VPP's "no interface" / "allocate for me"
MAX_TAG = 63  # characters of a VPP tag (64 bytes with the NUL)


def host_id(host: str) -> str:
    """The short id of a host in its objects' tags: 8 hex digits of SHA-256."""
    return hashlib.sha256(host.encode()).hexdigest()[:8]


def parse_tag(tag: str) -> tuple[str, str | None] | None:
    """A networking-vpp tag as (body, host id); the host id is None for the
    older format, which has none. None for any other tag (not ours to read)."""
    if not tag.startswith(TAG_PREFIX):
        return None
    body, mark, owner = tag.rpartition(HOST_MARK)
    if not mark:
        return tag, None
    return body, owner


@dataclasses.dataclass(frozen=True, slots=True)
class Tags:
    """The tags of one host's objects."""

    host_id: str

    @classmethod
    def of(cls, host: str) -> Tags:
        """The tags of ``host``'s agent."""
        return cls(host_id(host))

    def mark(self, body: str) -> str:
        """The VPP tag of the object ``body`` describes (PORT_TAG + id, ...)."""
        tag = f"{body}{HOST_MARK}{self.host_id}"
        if len(tag) > MAX_TAG:
            raise ValueError(f"tag {tag!r} is longer than VPP's {MAX_TAG} characters")
        return tag

    def ours(self, tag: str) -> str | None:
        """The body of a tag of this host's (new format), else None."""
        parsed = parse_tag(tag)
        return parsed[0] if parsed is not None and parsed[1] == self.host_id else None


@dataclasses.dataclass(frozen=True, slots=True)
class Interface:
    """One row of ``sw_interface_dump``."""

    sw_if_index: int
    name: str
    tag: str
    admin_up: bool
    link_up: bool
    mtu: int  # L3 MTU (sw_interface_details.mtu[0])
    link_mtu: int
    mac_address: str  # l2_address, lower-case "aa:bb:cc:dd:ee:ff"
    sup_sw_if_index: int  # parent, == sw_if_index for a main interface
    sub_id: int
    vlan: int  # outer VLAN id of a sub-interface (sub_outer_vlan_id), 0 otherwise
    vtr_op: int  # VLAN tag rewrite operation (0 disabled, 3 pop-1, ...)
    dev_type: str  # "virtio-user"? "af_packet", "VirtualEthernet" ... as VPP reports it
    sub_if_flags: int = 0  # vl_api_sub_if_flags_t of a sub-interface

    @property
    def is_guard(self) -> bool:
        """A default sub-interface with the guard's id (whoever made it)."""
        return (
            self.sup_sw_if_index != self.sw_if_index
            and self.sub_id == GUARD_SUB_ID
            and bool(self.sub_if_flags & SUB_IF_DEFAULT)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class BridgeDomain:
    """One row of ``bridge_domain_dump``."""

    bd_id: int
    tag: str
    learn: bool
    forward: bool
    flood: bool
    uu_flood: bool
    arp_term: bool
    members: frozenset[int]  # sw_if_index of every member
    mac_age: int = 0  # minutes a learnt MAC lives (0: for ever)


@dataclasses.dataclass(frozen=True, slots=True)
class VhostUser:
    """One row of ``sw_interface_vhost_user_dump``."""

    sw_if_index: int
    interface_name: str
    sock_filename: str
    is_server: bool
    num_regions: int  # > 0 once a VM (QEMU) has connected and shared its memory
    sock_errno: int


@dataclasses.dataclass(frozen=True, slots=True)
class AfPacket:
    """One row of ``af_packet_dump``."""

    sw_if_index: int
    host_if_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class InterfaceEvent:
    """A ``sw_interface_event`` (admin or link state change, or deletion)."""

    sw_if_index: int
    admin_up: bool
    link_up: bool
    deleted: bool


# ACL plugin tags: shared per (group, direction) ACLs, the fixed ACLs every VM
# port gets, and one MACIP (anti-spoofing) ACL per port.
SECGROUP_TAG = TAG_PREFIX + "sg:"  # + "<sg_id>:<in|out>"
ESSENTIALS_TAG = TAG_PREFIX + "essentials:"  # + "in" / "out"
MACIP_TAG = TAG_PREFIX + "macip:"  # + port id

# vl_api_acl_action_t
ACL_DENY = 0
ACL_PERMIT = 1
ACL_PERMIT_REFLECT = 2


@dataclasses.dataclass(frozen=True, slots=True)
class AclRule:
    """A vl_api_acl_rule_t, normalised (prefixes as canonical strings)."""

    action: int
    src: str
    dst: str
    proto: int = 0
    sport: tuple[int, int] = (0, 65535)  # or ICMP type range
    dport: tuple[int, int] = (0, 65535)  # or ICMP code range


@dataclasses.dataclass(frozen=True, slots=True)
class Acl:
    """One row of ``acl_dump``."""

    acl_index: int
    tag: str
    rules: tuple[AclRule, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class MacipRule:
    """A vl_api_macip_acl_rule_t: permit frames from ``mac`` sourced in ``prefix``."""

    action: int
    mac: str
    mac_mask: str
    prefix: str


@dataclasses.dataclass(frozen=True, slots=True)
class MacipAcl:
    """One row of ``macip_acl_dump``."""

    acl_index: int
    tag: str
    rules: tuple[MacipRule, ...]
