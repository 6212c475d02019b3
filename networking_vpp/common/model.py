"""One strict, versioned schema per etcd value; writer and reader share it.

Every value that crosses etcd is a JSON object with a ``version`` field and is
built from (and checked against) one of the msgspec Structs below. ``decode``
raises :class:`BadValue` naming the key and what is wrong; it never returns a
half-valid object. Types are strict: no coercion (``"1500"`` or ``true`` is not
an MTU), enums are closed, required fields must be there.

Compatibility rule
------------------
``version`` is the schema's *major* version (:data:`SCHEMA_VERSION`), an
integer, as values have carried since the first release. Within a major
version the schema evolves by additions only, so servers and agents can be
upgraded one by one:

* A writer may add a field only if it is optional and its default means what
  the value meant without it ("as before"). Readers ignore fields they do not
  know, at any depth: a newer server's value reaches an older agent, which
  does what it did before (new server, old agent).
* A reader fills in the default of every optional field the value lacks: an
  older server's value reaches a newer agent (old server, new agent).
* Anything else bumps the major version: a field removed, renamed, made
  required or given another type or meaning, a default changed, or a new
  enum value that older readers must not simply reject. A reader refuses any
  major version but its own (a newer one is reported as such, before its
  fields are looked at), and the agent then keeps the last good value for the
  key and reports the port in error (see ``agent/cache.py``); the server's
  state watcher likewise keeps the last report it could read. Readers of a new
  major version ship before its writers.

No minor version is written: a reader needs none, as everything a minor
release may add is ignorable by the rule above, and leaving it out keeps
every value byte for byte as it was (values are compared as bytes).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal, TypeVar

import msgspec

from networking_vpp.common.addresses import canonical_prefix, is_ip_address

#: the major schema version this code reads and writes (see the rule above)
SCHEMA_VERSION = 1
MAX_VALUE_BYTES = 1024 * 1024  # etcd's default request size limit is 1.5 MiB

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class BadValue(ValueError):
    """An etcd value that does not match its schema."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"bad value at {key}: {reason}")
        self.key = key
        self.reason = reason


class _Schema(msgspec.Struct, frozen=True, gc=False):
    """Base of every schema: immutable and hashable. Unknown fields are
    ignored (the compatibility rule). ``gc=False``: a value holds only
    scalars and tuples of values, so it can be in no reference cycle, and the
    agent's many long-lived bindings cost the garbage collector nothing."""


# --- schemas -------------------------------------------------------------------


class VhostUser(_Schema, frozen=True):
    """A vhost-user attachment: VPP connects to (or serves) ``socket``.

    ``mode`` is VPP's role; by default QEMU serves the socket and VPP is its
    client, so that VPP reconnects to running guests after a restart.
    """

    socket: str
    mode: Literal["server", "client"] = "client"


class Tap(_Schema, frozen=True):
    """A kernel interface (made by Nova, DHCP or L3 agents) that VPP attaches to."""

    ifname: str


class FixedIp(_Schema, frozen=True):
    """One of the port's addresses."""

    ip_address: str
    subnet_id: str = ""


class AddressPair(_Schema, frozen=True):
    """An allowed address pair: an IP or CIDR, optionally with its own MAC."""

    ip_address: str
    mac_address: str | None = None


class PortBinding(_Schema, frozen=True):
    """``/nodes/<host>/ports/<port_id>``: what the host must program for a port."""

    port_id: str
    binding_id: str  # changes on every (re)bind; the agent echoes it in PortState
    network_id: str
    mac_address: str
    mtu: int
    network_type: Literal["flat", "vlan"]
    physnet: str
    segmentation_id: int | None
    binding_type: Literal["vhostuser", "tap"]
    vhostuser: VhostUser | None = None
    tap: Tap | None = None
    fixed_ips: tuple[FixedIp, ...] = ()
    security_groups: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    port_security_enabled: bool = True
    device_owner: str = ""
    device_id: str = ""
    admin_state_up: bool = True
    version: int = SCHEMA_VERSION

    def check(self) -> str | None:
        """Cross-field rules; returns what is wrong, or None."""
        if not 68 <= self.mtu <= 65535:
            return f"mtu {self.mtu} out of range 68..65535"
        if self.network_type == "vlan":
            if self.segmentation_id is None or not 1 <= self.segmentation_id <= 4094:
                return f"vlan network needs segmentation_id 1..4094, got {self.segmentation_id}"
        elif self.segmentation_id is not None:
            return f"{self.network_type} network must not have a segmentation_id"
        if not self.physnet:
            return f"{self.network_type} network needs a physnet"
        if self.binding_type == "vhostuser" and (self.vhostuser is None or self.tap is not None):
            return "binding_type vhostuser needs 'vhostuser' and no 'tap'"
        if self.binding_type == "tap" and (self.tap is None or self.vhostuser is not None):
            return "binding_type tap needs 'tap' and no 'vhostuser'"
        return _check_mac(self.mac_address) or _check_ips(self)


class HostAlive(_Schema, frozen=True):
    """``/state/<host>/alive`` (leased): the host's agent is running."""

    host: str
    agent_version: str
    started_at: float
    version: int = SCHEMA_VERSION


class HostPhysnet(_Schema, frozen=True):
    """``/state/<host>/physnets/<name>``: the host can reach physnet ``name``."""

    name: str
    interface: str
    version: int = SCHEMA_VERSION


class Programmed(_Schema, frozen=True):
    """What the agent programmed in VPP for a port (for operators and drift checks)."""

    interface: str
    sw_if_index: int
    bridge_domain: int
    uplink: str
    vlan: int | None
    mtu: int
    mac_address: str


class PortState(_Schema, frozen=True):
    """``/state/<host>/ports/<port_id>``: the agent's report on a port binding.

    ``active``: programmed and passing traffic (for vhost-user, the VM is
    connected); ``down``: bound here but passing no traffic, ``reason`` says
    why (``admin down``, ``VM not connected``); ``error``: it cannot be
    programmed here, ``reason`` says why. ``programmed``: what VPP has for it.

    ``down`` came after ``active`` and ``error`` without a version bump: a
    reader older than it rejects such a report as a bad value, which leaves the
    port as that reader left it when the agent withdrew its report, as agents
    of its time did. Upgrade the servers (the readers) first, as OpenStack does.
    """

    port_id: str
    binding_id: str
    status: Literal["active", "down", "error"]
    reason: str = ""
    programmed: Programmed | None = None
    reported_at: float = 0.0
    version: int = SCHEMA_VERSION


class HostSummary(_Schema, frozen=True):
    """``/state/<host>/summary``: the agent's own account, for drift detection."""

    host: str
    desired: int  # port bindings in etcd for this host (valid ones)
    programmed: int  # ports with an interface in VPP
    active: int  # ports reported active
    errors: tuple[str, ...] = ()  # ports reported in error
    pending: tuple[str, ...] = ()  # desired, not (yet) active nor in error; at most 100
    rejected_values: int = 0  # bad etcd values skipped since start
    resyncs: int = 0
    version: int = SCHEMA_VERSION
    # Work-queue keys ("port:<id>", "sg:<id>", "resync"...) whose last try
    # failed and are being retried; at most 100. Optional, with a default: a
    # summary from an agent that predates it reads as "nothing failing".
    failing: tuple[str, ...] = ()


class SecGroupRule(_Schema, frozen=True):
    """One Neutron security group rule, normalised by the server.

    ``protocol`` is an IP protocol number (None: any). For TCP, UDP, SCTP and
    UDP-Lite, ``port_range_min``/``max`` bound the destination port; for ICMP
    and ICMPv6 they are the ICMP type and code (None: any). At most one of
    ``remote_ip_prefix`` and ``remote_group_id`` is set; neither means any.
    """

    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"]
    protocol: int | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None

    def check(self) -> str | None:
        """Cross-field rules; returns what is wrong, or None."""
        if self.protocol is not None and not 0 <= self.protocol <= 255:
            return f"protocol {self.protocol} out of range 0..255"
        if self.remote_ip_prefix is not None and self.remote_group_id is not None:
            return "remote_ip_prefix and remote_group_id are exclusive"
        if self.remote_ip_prefix is not None:
            try:
                net = ipaddress.ip_network(self.remote_ip_prefix, strict=False)
            except ValueError as exc:
                return str(exc)
            if (net.version == 4) != (self.ethertype == "IPv4"):
                return f"remote_ip_prefix {self.remote_ip_prefix} is not {self.ethertype}"
        icmp = self.protocol in (1, 58)
        limit = 255 if icmp else 65535
        for value in (self.port_range_min, self.port_range_max):
            if value is not None and not 0 <= value <= limit:
                return f"port/type/code {value} out of range 0..{limit}"
        if (
            not icmp
            and self.port_range_min is not None
            and self.port_range_max is not None
            and self.port_range_min > self.port_range_max
        ):
            return f"port range {self.port_range_min}..{self.port_range_max} is empty"
        return None


class SecurityGroup(_Schema, frozen=True):
    """``/global/secgroups/<sg_id>``: every rule of one group, both directions."""

    sg_id: str
    rules: tuple[SecGroupRule, ...] = ()
    version: int = SCHEMA_VERSION

    def check(self) -> str | None:
        """Every rule's cross-field rules."""
        for i, rule in enumerate(self.rules):
            problem = rule.check()
            if problem:
                return f"rules[{i}]: {problem}"
        return None


class RemoteGroupMember(_Schema, frozen=True):
    """``/global/remote_groups/<sg_id>/<port_id>``: a member port's addresses.

    ``ips`` holds the port's fixed IPs and its allowed-address-pair prefixes,
    which rules naming the group as remote group match.
    """

    port_id: str
    ips: tuple[str, ...] = ()
    version: int = SCHEMA_VERSION

    def check(self) -> str | None:
        """Every address must parse as an IP or prefix."""
        try:
            for ip in self.ips:
                ipaddress.ip_network(ip, strict=False)
        except ValueError as exc:
            return str(exc)
        return None


# --- encode / decode -------------------------------------------------------------

T = TypeVar("T")

# Sorted keys, compact: the bytes the first (json-module) implementation wrote.
_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


class _Head(msgspec.Struct):
    """Only the version: read before the rest, as a newer major may change anything."""

    version: Any = None


_HEAD = msgspec.json.Decoder(_Head)


def replace(value: T, **changes: Any) -> T:
    """A copy of a schema object with ``changes`` (values are immutable)."""
    return msgspec.structs.replace(value, **changes)  # type: ignore[type-var]


def as_plain(value: Any) -> Any:
    """A schema object as JSON-ready data (dicts and lists), for tools' output."""
    return msgspec.to_builtins(value)


def encode(value: Any) -> str:
    """Serialise a schema object to the compact JSON stored in etcd."""
    return _ENCODER.encode(value).decode()


def decode(cls: type[T], key: str, raw: bytes | str | None) -> T:
    """Parse and validate ``raw`` read from ``key``; raises :class:`BadValue`."""
    if raw is None:
        raise BadValue(key, "value is missing")
    if len(raw) > MAX_VALUE_BYTES:
        raise BadValue(key, f"value is {len(raw)} bytes, over {MAX_VALUE_BYTES}")
    try:
        version = _HEAD.decode(raw).version
    except msgspec.ValidationError:
        raise BadValue(key, "not a JSON object") from None
    except msgspec.DecodeError as exc:
        raise BadValue(key, f"not JSON: {exc}") from None
    # type(): JSON's true equals 1 in Python, and is no version.
    if type(version) is not int or version != SCHEMA_VERSION:
        newer = " (newer)" if type(version) is int and version > SCHEMA_VERSION else ""
        raise BadValue(key, f"schema version {version!r}{newer}, this code reads {SCHEMA_VERSION}")
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.json.Decoder(cls)
    try:
        obj: T = decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError included: "... - at `$.mtu`"
        raise BadValue(key, str(exc)) from None
    check = getattr(obj, "check", None)
    problem = check() if check else None
    if problem:
        raise BadValue(key, problem)
    return obj


def _check_mac(mac: str) -> str | None:
    return None if _MAC.match(mac) else f"mac_address {mac!r} is not a lower-case MAC"


def _check_ips(port: PortBinding) -> str | None:
    try:
        for ip in port.fixed_ips:
            if not is_ip_address(ip.ip_address):
                return f"{ip.ip_address!r} does not appear to be an IPv4 or IPv6 address"
        for pair in port.allowed_address_pairs:
            canonical_prefix(pair.ip_address)
            if pair.mac_address is not None and _check_mac(pair.mac_address):
                return _check_mac(pair.mac_address)
    except ValueError as exc:
        return str(exc)
    return None
