"""One strict, versioned schema per etcd value; writer and reader share it.

Every value that crosses etcd is a JSON object with a ``version`` field and is
built from (and checked against) one of the dataclasses below. ``decode`` raises
:class:`BadValue` naming the key and what is wrong; it never returns a
half-valid object. Unknown fields are errors: a writer newer than the reader
must bump ``version`` instead of adding fields silently.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import operator
import re
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from networking_vpp.common.addresses import canonical_prefix, is_ip_address

SCHEMA_VERSION = 1
MAX_VALUE_BYTES = 1024 * 1024  # etcd's default request size limit is 1.5 MiB

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class BadValue(ValueError):
    """An etcd value that does not match its schema."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"bad value at {key}: {reason}")
        self.key = key
        self.reason = reason


# --- schemas -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class VhostUser:
    """A vhost-user attachment: VPP connects to (or serves) ``socket``.

    ``mode`` is VPP's role; by default QEMU serves the socket and VPP is its
    client, so that VPP reconnects to running guests after a restart.
    """

    socket: str
    mode: Literal["server", "client"] = "client"


@dataclasses.dataclass(frozen=True, slots=True)
class Tap:
    """A kernel interface (made by Nova, DHCP or L3 agents) that VPP attaches to."""

    ifname: str


@dataclasses.dataclass(frozen=True, slots=True)
class FixedIp:
    """One of the port's addresses."""

    ip_address: str
    subnet_id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class AddressPair:
    """An allowed address pair: an IP or CIDR, optionally with its own MAC."""

    ip_address: str
    mac_address: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PortBinding:
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


@dataclasses.dataclass(frozen=True, slots=True)
class HostAlive:
    """``/state/<host>/alive`` (leased): the host's agent is running."""

    host: str
    agent_version: str
    started_at: float
    version: int = SCHEMA_VERSION


@dataclasses.dataclass(frozen=True, slots=True)
class HostPhysnet:
    """``/state/<host>/physnets/<name>``: the host can reach physnet ``name``."""

    name: str
    interface: str
    version: int = SCHEMA_VERSION


@dataclasses.dataclass(frozen=True, slots=True)
class Programmed:
    """What the agent programmed in VPP for a port (for operators and drift checks)."""

    interface: str
    sw_if_index: int
    bridge_domain: int
    uplink: str
    vlan: int | None
    mtu: int
    mac_address: str


@dataclasses.dataclass(frozen=True, slots=True)
class PortState:
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


@dataclasses.dataclass(frozen=True, slots=True)
class HostSummary:
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


@dataclasses.dataclass(frozen=True, slots=True)
class SecGroupRule:
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


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityGroup:
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


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteGroupMember:
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


_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)  # made once, not per value


def encode(value: Any) -> str:
    """Serialise a schema object to the compact JSON stored in etcd."""
    return _JSON.encode(_to_plain(value))


def decode(cls: type[T], key: str, raw: bytes | str | None) -> T:
    """Parse and validate ``raw`` read from ``key``; raises :class:`BadValue`."""
    if raw is None:
        raise BadValue(key, "value is missing")
    if len(raw) > MAX_VALUE_BYTES:
        raise BadValue(key, f"value is {len(raw)} bytes, over {MAX_VALUE_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadValue(key, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadValue(key, "not a JSON object")
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise BadValue(key, f"schema version {version!r}, this code reads {SCHEMA_VERSION}")
    try:
        obj = _build(cls, data, "")
    except _Invalid as exc:
        raise BadValue(key, str(exc)) from None
    check = getattr(obj, "check", None)
    problem = check() if check else None
    if problem:
        raise BadValue(key, problem)
    return obj


class _Invalid(Exception):
    """A schema violation; the path to the bad field is prepended as it propagates."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path

    def within(self, name: str) -> _Invalid:
        self.path = f"{name}.{self.path}" if self.path and self.path[0] != "[" else name + self.path
        return self

    def __str__(self) -> str:
        return f"{self.path or 'value'}: {self.problem}"


# Builders take JSON data and return the checked value; paths are only worked
# out on the error path, so decoding a valid value costs no string formatting.
Builder = typing.Callable[[Any], Any]
_PLAIN = {bool: "true/false", int: "an integer", str: "a string"}  # JSON scalars as they are
_BUILDERS: dict[Any, Builder] = {}


def _build(tp: Any, data: Any, path: str) -> Any:
    try:
        return _builder(tp)(data)
    except _Invalid as exc:
        raise (exc.within(path) if path else exc) from None


def _builder(tp: Any) -> Builder:
    """Compile (once per type) a function that checks and builds ``tp`` from JSON data."""
    fn = _BUILDERS.get(tp)
    if fn is None:
        fn = _BUILDERS[tp] = _compile(tp)
    return fn


def _compile(tp: Any) -> Builder:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _compile_dataclass(tp)
    if origin is Literal:
        allowed = get_args(tp)

        def literal(data: Any) -> Any:
            if data not in allowed:
                raise _Invalid(f"{data!r} is not one of {allowed}")
            return data

        return literal
    if origin in (typing.Union, types.UnionType):
        (inner_tp,) = [a for a in get_args(tp) if a is not type(None)]
        inner = _builder(inner_tp)
        return lambda data: None if data is None else inner(data)
    if origin is tuple:
        item = _builder(get_args(tp)[0])

        def sequence(data: Any) -> Any:
            if type(data) is not list:
                raise _Invalid(f"expected a list, got {type(data).__name__}")
            out = []
            for i, value in enumerate(data):
                try:
                    out.append(item(value))
                except _Invalid as exc:
                    raise exc.within(f"[{i}]") from None
            return tuple(out)

        return sequence
    if tp is float:

        def number(data: Any) -> Any:
            if type(data) not in (int, float):
                raise _Invalid(f"expected a number, got {data!r}")
            return float(data)

        return number
    if tp not in _PLAIN:
        raise TypeError(f"schema type {tp!r} not supported")
    what = _PLAIN[tp]

    def scalar(data: Any) -> Any:
        # type() rather than isinstance(): JSON's true is not an integer here.
        if type(data) is not tp:
            raise _Invalid(f"expected {what}, got {data!r}")
        return data

    return scalar


def _compile_dataclass(cls: type) -> Builder:
    hints = get_type_hints(cls)
    # (name, required, builder, plain type): a plain scalar is checked inline,
    # saving a call for most fields of a binding (decoding is per port, per load).
    fields = [
        (
            f.name,
            f.default is dataclasses.MISSING,
            _builder(hints[f.name]),
            hints[f.name] if hints[f.name] in _PLAIN else None,
        )
        for f in dataclasses.fields(cls)
    ]
    names = frozenset(name for name, _, _, _ in fields)

    def build(data: Any) -> Any:
        if type(data) is not dict:
            raise _Invalid("expected an object")
        if not names.issuperset(data):
            raise _Invalid(f"unknown field(s) {sorted(set(data) - names)}")
        kwargs = {}
        for name, required, sub, plain in fields:
            if name not in data:
                if required:
                    raise _Invalid("required field missing", name)
                continue
            value = data[name]
            if plain is not None and type(value) is plain:
                kwargs[name] = value
                continue
            try:
                kwargs[name] = sub(value)  # the plain type's builder explains a mismatch
            except _Invalid as exc:
                raise exc.within(name) from None
        return cls(**kwargs)

    return build


_ENCODERS: dict[type, typing.Callable[[Any], Any]] = {}


def _to_plain(value: Any) -> Any:
    """A schema object as JSON-ready data (an encoder compiled once per class)."""
    cls = type(value)
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _compile_encoder(cls)
    return encoder(value)


def _compile_encoder(cls: type) -> typing.Callable[[Any], Any]:
    if cls is tuple or cls is list:
        return lambda value: [_to_plain(v) for v in value]
    if not dataclasses.is_dataclass(cls):
        return lambda value: value
    names = tuple(f.name for f in dataclasses.fields(cls))
    hints = get_type_hints(cls)
    # Fields that may hold another schema object or a tuple: the rest are JSON as they are.
    nested = tuple(n for n in names if not _is_plain(hints[n]))
    values = operator.attrgetter(*names) if len(names) > 1 else None

    def encode_object(value: Any) -> dict[str, Any]:
        if values is None:
            out = {names[0]: getattr(value, names[0])}
        else:
            out = dict(zip(names, values(value), strict=True))
        for name in nested:
            v = out[name]
            if v is not None:
                out[name] = _to_plain(v)
        return out

    return encode_object


def _is_plain(tp: Any) -> bool:
    """Whether values of ``tp`` are JSON scalars (str, int, bool, float, None, literals)."""
    if tp in (str, int, bool, float, type(None)):
        return True
    origin = get_origin(tp)
    if origin is Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_is_plain(a) for a in get_args(tp))
    return False


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
