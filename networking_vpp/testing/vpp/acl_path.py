"""The ACL plugin's dataplane: the L2 features the packet walk calls.

**ACLs** (``dataplane_node.c``, ``public_inlines.h``, ``session_inlines.h``).
The plugin's nodes sit on the l2-input-ip4/ip6 and l2-output-ip4/ip6 feature
arcs of an interface with a non-empty input (output) ACL list, so they see
IPv4 and IPv6 frames only (up to three tags looked through, ``packet_of``):
ARP and other non-IP frames pass, unless the interface has an ethertype
whitelist (``acl_interface_set_etype_whitelist``) for that direction, which
hooks the non-IP arc (``dataplane_node_nonip.c``): then only whitelisted types
pass. For an IP frame:

1. A session lookup first. The key is the packet's 5-tuple plus the
   direction and the interface: (src, dst, port[0], port[1], proto,
   is_input, sw_if_index), where the ports are the TCP/UDP ports, or the
   ICMP type and code, or 0 and 0 for other protocols. A hit permits -
   unless session reclassification is on and the session is stale
   (``AclState.stale``): then it is deleted and the ACLs decide.
2. Else the interface's ACLs, in list order, each rule in order, first match
   wins: the rule's family (its source prefix's) must be the packet's,
   destination and source must be in the prefixes (length 0 matches all),
   and a rule with a protocol (0 is "any") needs the packet's protocol, the
   ports (or ICMP type/code) within the rule's ranges, and for TCP ``flags &
   tcp_flags_mask == tcp_flags_value``. No match: deny.
3. Action 0 drops; 2 (permit+reflect) permits and adds a session: its key,
   and the *reverse* key - addresses and ports swapped, the direction
   flipped, same interface - so the replies are permitted when they cross
   the same interface the other way (a session made on input of X lets the
   replies out by X's output, and vice versa). An ICMP session's reverse key
   has the reply type (echo request 8 -> reply 0, timestamp, information
   and address-mask requests; ICMPv6 echo 128 -> 129, node information 139
   -> 140), the same code; other ICMP messages get no reverse key. Any other
   action permits without a session.

**MACIP** (``acl.c``: ``macip_create_classify_tables``), input only unless a
rule's action is 3. VPP compiles a MACIP ACL into a chain of classifier tables
applied to *every* frame of the interface (l2-input-acl): one table per
"match type" (MAC mask, prefix length, family) holding each rule's
(masked source MAC, masked source IP) -> permit/deny, plus, for IPv4 match
types, an ARP table keyed on (source MAC, ARP sender MAC, ARP sender IP).
Match types are ordered by a metric (prefix length + MAC mask bits + is_ipv6
+ 10 x rules), the most specific first, IP tables before ARP tables; the
first table with a hit decides (within a table a later rule with the same
masked key replaces an earlier one); a frame that hits nothing - including
any non-IP, non-ARP frame, and IPv6 when only IPv4 rules exist - is
dropped. A MACIP ACL with no rules makes no tables and filters nothing.
Rules with action 3 also build egress tables (destination MAC and IP), which
then apply to every frame leaving the interface: IP frames to an action-3
rule's MAC and IP pass, ARP passes if an IPv4 rule has action 3, the rest is
dropped.

Order as in VPP's L2 feature bitmaps: on input the ACL plugin (l2-input
feature arc) runs before MACIP (l2-input-acl); on output MACIP
(l2-output-acl) runs before the ACL plugin.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import ipaddress
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from networking_vpp.testing.vpp.acl_state import NO_INDEX, AclState, FlowKey, Session
from networking_vpp.testing.vpp.packet import Frame, L2Features

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.state import Interface, State

ETH_IP4, ETH_IP6, ETH_ARP = 0x0800, 0x86DD, 0x0806
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMP6 = 1, 6, 17, 58
MACIP_PERMIT_ALSO_EGRESS = 3
# session_inlines.h icmp4_invmap / icmp6_invmap: the requests that open a session
_ICMP_REPLY = {4: {8: 0, 13: 14, 15: 16, 17: 18}, 6: {128: 129, 139: 140}}


@functools.lru_cache(maxsize=8192)
def _addr(text: str) -> tuple[int, int]:
    """(IP version, address as an integer) of an address in text."""
    a = ipaddress.ip_address(text)
    return a.version, int(a)


def _mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


class Packet(NamedTuple):
    """What the ACL plugin reads of an IP frame (acl_fill_5tuple)."""

    version: int
    src: int
    dst: int
    proto: int
    port0: int  # source port, or ICMP type
    port1: int  # destination port, or ICMP code
    tcp_flags: int | None  # None: not TCP (the flags are not valid)


def packet_of(frame: Frame) -> Packet | None:
    """The frame's 5-tuple, or None for a non-IP frame (the ACLs do not see it).

    The type is what follows the tags ethernet-input counted (l2-input-feat-arc
    and l2-output-feat-arc read it at ``l2_len - 2``, acl_fill_5tuple the IP
    header at ``l2_len``): up to three tags are looked through; a fourth tag,
    an inner 0x88a8 or 0x9100 tag, MPLS... make it non-IP.
    """
    etype = frame.l3_type
    if etype == ETH_IP4:
        version = 4
    elif etype == ETH_IP6:
        version = 6
    else:
        return None
    if frame.src_ip is None or frame.dst_ip is None:
        raise ValueError(f"an IPv{version} frame crossing ACLs needs src_ip and dst_ip: {frame}")
    sv, src = _addr(frame.src_ip)
    dv, dst = _addr(frame.dst_ip)
    if sv != version or dv != version:
        raise ValueError(f"ethertype {frame.ethertype:#06x} with addresses {frame}")
    proto = frame.proto or 0
    if proto == (PROTO_ICMP if version == 4 else PROTO_ICMP6):
        return Packet(version, src, dst, proto, frame.icmp_type or 0, frame.icmp_code or 0, None)
    if proto in (PROTO_TCP, PROTO_UDP):
        flags = frame.tcp_flags if proto == PROTO_TCP else None
        return Packet(version, src, dst, proto, frame.src_port or 0, frame.dst_port or 0, flags)
    return Packet(version, src, dst, proto, 0, 0, None)


# --- ACL rules ---------------------------------------------------------------------
#: (action, version, src net, src mask, dst net, dst mask, proto,
#:  sport lo, sport hi, dport lo, dport hi, tcp flags mask, tcp flags value)
Rule = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int]


def _net(prefix: Any, version: int) -> tuple[int, int]:
    """(network, mask) of a rule prefix in the rule's family.

    The rule's family is its source prefix's; a destination of the other
    family is read as VPP's ip46 union reads it (an IPv4 address is the low
    32 bits of the IPv6 one), and a length 0 matches everything either way.
    """
    bits = 32 if version == 4 else 128
    value = int(prefix.network_address) & ((1 << bits) - 1)
    plen = min(prefix.prefixlen, bits)
    mask = ((1 << plen) - 1) << (bits - plen)
    return value & mask, mask


def compile_rules(rules: list[dict[str, Any]]) -> tuple[Rule, ...]:
    """The ACL's rules as flat tuples for matching."""
    out = []
    for r in rules:
        version = r["src_prefix"].version
        out.append(
            (
                int(r["is_permit"]),
                version,
                *_net(r["src_prefix"], version),
                *_net(r["dst_prefix"], version),
                int(r["proto"]),
                r["srcport_or_icmptype_first"],
                r["srcport_or_icmptype_last"],
                r["dstport_or_icmpcode_first"],
                r["dstport_or_icmpcode_last"],
                r["tcp_flags_mask"],
                r["tcp_flags_value"],
            )
        )
    return tuple(out)


def match_rules(rules: tuple[Rule, ...], p: Packet) -> int:
    """The index of the first rule the packet matches, or -1."""
    for i, (_, ver, sn, sm, dn, dm, proto, sl, sh, dl, dh, fm, fv) in enumerate(rules):
        if ver != p.version or p.dst & dm != dn or p.src & sm != sn:
            continue
        if proto:
            if p.proto != proto or not (sl <= p.port0 <= sh and dl <= p.port1 <= dh):
                continue
            if p.tcp_flags is not None and p.tcp_flags & fm != fv:
                continue
        return i
    return -1


def reverse_key(key: FlowKey) -> FlowKey | None:
    """reverse_session_add_del: the key the replies of a session's flow have."""
    version, src, dst, p0, p1, proto, is_input, sw = key
    if proto == (PROTO_ICMP if version == 4 else PROTO_ICMP6):
        reply = _ICMP_REPLY[version].get(p0)
        if reply is None:
            return None
        return (version, dst, src, reply, p1, proto, not is_input, sw)
    return (version, dst, src, p1, p0, proto, not is_input, sw)


# --- MACIP ---------------------------------------------------------------------------
MacTable = tuple[int, int, int, dict[tuple[int, ...], bool]]  # version, MAC mask, IP mask, keys
_Tables = dict[tuple[int, int, int], dict[tuple[int, ...], bool]]  # match type -> keys


@dataclasses.dataclass(frozen=True)
class MacipTables:
    """A MACIP ACL's classifier chains, in lookup order."""

    ip: tuple[MacTable, ...]
    arp: tuple[MacTable, ...]
    out_ip: tuple[MacTable, ...]
    out_arp: bool  # an egress ARP table exists (it permits every ARP frame)

    @property
    def has_input(self) -> bool:
        """Tables exist: a MACIP ACL without rules is applied as nothing."""
        return bool(self.ip)

    @property
    def has_output(self) -> bool:
        """Egress tables exist (some rule has action 3)."""
        return bool(self.out_ip)


def compile_macip(rules: list[dict[str, Any]]) -> MacipTables:
    """macip_create_classify_tables, with VPP's table order and key overwrites."""
    types: dict[tuple[int, int, int], list[int]] = {}  # (mask, plen, ver) -> [count, egress]
    parsed = []
    for r in rules:
        prefix, action = r["src_prefix"], int(r["is_permit"])
        mt = (_mac(r["src_mac_mask"]), prefix.prefixlen, prefix.version)
        entry = types.setdefault(mt, [0, 0])
        entry[0] += 1
        entry[1] |= action == MACIP_PERMIT_ALSO_EGRESS
        parsed.append((mt, _mac(r["src_mac"]), int(prefix.network_address), action))

    def metric(mt: tuple[int, int, int]) -> int:
        mask, plen, ver = mt
        return plen + mask.bit_count() + (ver == 6) + 10 * types[mt][0]

    # Tables are chained in reverse creation order, creation being in ascending
    # metric: the lookup walks the most specific (and most used) type first.
    order = sorted(types, key=metric, reverse=True)
    ip: _Tables = {mt: {} for mt in order}
    arp: _Tables = {mt: {} for mt in order if mt[2] == 4}
    out: _Tables = {mt: {} for mt in order if types[mt][1]}
    for mt, mac, addr, action in parsed:
        mask, plen, ver = mt
        bits = 32 if ver == 4 else 128
        ipmask = ((1 << plen) - 1) << (bits - plen)
        m, a = mac & mask, addr & ipmask
        ip[mt][(m, a)] = action != 0
        if ver == 4:
            arp[mt][(m, m, a)] = action != 0
        if action == MACIP_PERMIT_ALSO_EGRESS:
            out[mt][(m, a)] = True

    def chain(tables: _Tables) -> tuple[MacTable, ...]:
        bits = {4: 32, 6: 128}
        return tuple(
            (ver, mask, ((1 << plen) - 1) << (bits[ver] - plen), tables[(mask, plen, ver)])
            for mask, plen, ver in tables
        )

    return MacipTables(chain(ip), chain(arp), chain(out), any(mt[2] == 4 for mt in out))


#: The tag stacks MACIP's classifier tables have sessions for (acl.c
#: macip_create_classify_tables: untagged, one 0x8100 tag, 0x88a8 then 0x8100);
#: other frames miss every table.
_MACIP_STACKS = frozenset({(), (0x8100,), (0x88A8, 0x8100)})


def macip_input(t: MacipTables, frame: Frame) -> bool:
    """The input chain's verdict (a miss in every table denies)."""
    if frame.tpids not in _MACIP_STACKS:
        return False
    if frame.ethertype in (ETH_IP4, ETH_IP6):
        if frame.src_ip is None:
            raise ValueError(f"an IP frame crossing MACIP needs src_ip: {frame}")
        version, src = _addr(frame.src_ip)
        mac = _mac(frame.src_mac)
        for ver, mmask, imask, keys in t.ip:
            if ver == version:
                hit = keys.get((mac & mmask, src & imask))
                if hit is not None:
                    return hit
        return False
    if frame.ethertype == ETH_ARP and t.arp:
        if frame.src_ip is None:
            raise ValueError(f"an ARP frame crossing MACIP needs src_ip (the sender IP): {frame}")
        _, spa = _addr(frame.src_ip)
        mac, sha = _mac(frame.src_mac), _mac(frame.arp_sender_mac or frame.src_mac)
        for _, mmask, imask, keys in t.arp:
            hit = keys.get((mac & mmask, sha & mmask, spa & imask))
            if hit is not None:
                return hit
    return False


def macip_output(t: MacipTables, frame: Frame) -> bool:
    """The egress chain's verdict: destination MAC and IP of an action-3 rule, or ARP."""
    if frame.tpids not in _MACIP_STACKS:
        return False
    if frame.ethertype in (ETH_IP4, ETH_IP6):
        if frame.dst_ip is None:
            raise ValueError(f"an IP frame crossing MACIP egress needs dst_ip: {frame}")
        version, dst = _addr(frame.dst_ip)
        mac = _mac(frame.dst_mac)
        return any(
            (mac & mmask, dst & imask) in keys
            for ver, mmask, imask, keys in t.out_ip
            if ver == version
        )
    return frame.ethertype == ETH_ARP and t.out_arp


# --- the features --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Verdict:
    """One decision of the ACL features, for a test to see why a frame was dropped.

    ``by`` is "session", "rule" (``acl_index``/``rule_index`` tell which),
    "default" (no rule matched: deny), "macip" or "whitelist" (non-IP).
    """

    sw_if_index: int
    is_input: bool
    permit: bool
    by: str
    acl_index: int = NO_INDEX
    rule_index: int = -1


class AclFeatures(L2Features):
    """The ACL plugin on the emulator's L2 path (``VppEmulator.features``).

    ``state`` returns the live state (it changes at each VPP restart).
    ``verdicts`` keeps the latest decisions, newest last.
    """

    def __init__(self, state: Callable[[], State], keep: int = 256) -> None:
        self._state = state
        self.verdicts: collections.deque[Verdict] = collections.deque(maxlen=keep)

    def input(self, itf: Interface, frame: Frame) -> bool:
        """Input ACLs, then the MACIP ACL."""
        acl = self._state().acl
        sw = itf.sw_if_index
        acls = acl.lists[1].get(sw)
        if acls and not self._check(acl, sw, True, acls, frame):
            return False
        if acl.macip_applied:
            index = acl.macip_of(sw)
            if index != NO_INDEX:
                tables = self._macip(acl, index)
                if tables.has_input:
                    ok = macip_input(tables, frame)
                    self.verdicts.append(Verdict(sw, True, ok, "macip", index))
                    return ok
        return True

    def output(self, itf: Interface, frame: Frame) -> bool:
        """MACIP egress (action-3 rules only), then output ACLs."""
        acl = self._state().acl
        sw = itf.sw_if_index
        if acl.macip_applied:
            index = acl.macip_of(sw)
            if index != NO_INDEX:
                tables = self._macip(acl, index)
                if tables.has_output:
                    ok = macip_output(tables, frame)
                    self.verdicts.append(Verdict(sw, False, ok, "macip", index))
                    if not ok:
                        return False
        acls = acl.lists[0].get(sw)
        return not acls or self._check(acl, sw, False, acls, frame)

    @staticmethod
    def _macip(acl: AclState, index: int) -> MacipTables:
        m = acl.macips[index]
        if m.compiled is None:
            m.compiled = compile_macip(m.rules)
        return m.compiled  # type: ignore[no-any-return]

    def _check(self, acl: AclState, sw: int, is_input: bool, acls: list[int], frame: Frame) -> bool:
        p = packet_of(frame)
        if p is None:
            # The non-IP arc: acl-plugin-*-nonip-l2, hooked only with a whitelist
            whitelist = acl.whitelist(sw, is_input)
            if whitelist is None:
                return True
            ok = frame.l3_type in whitelist
            self.verdicts.append(Verdict(sw, is_input, ok, "whitelist"))
            return ok
        key: FlowKey = (p.version, p.src, p.dst, p.port0, p.port1, p.proto, is_input, sw)
        sess = acl.sessions.by_key.get(key)
        if sess is not None:
            if not acl.stale(sess, sw, is_input):
                self.verdicts.append(Verdict(sw, is_input, True, "session"))
                return True
            acl.sessions.delete(sess)  # reclassified: the ACLs decide again
        for acl_index in acls:
            a = acl.acls[acl_index]
            if a.compiled is None:
                a.compiled = compile_rules(a.rules)
            i = match_rules(a.compiled, p)
            if i >= 0:
                action = a.compiled[i][0]
                if action == 2:
                    epoch = acl.epoch(sw, is_input)
                    acl.sessions.add(sw, is_input, key, reverse_key(key), epoch)
                self.verdicts.append(Verdict(sw, is_input, action != 0, "rule", acl_index, i))
                return action != 0
        self.verdicts.append(Verdict(sw, is_input, False, "default"))
        return False


class SessionView:
    """``VppEmulator.sessions``: the live session table, for tests.

    ``len()`` counts sessions, iterating gives a snapshot of them, ``clear()``
    forgets them all (or one interface's): what VPP's idle timeouts would do
    with time, which the emulator does not model.
    """

    def __init__(self, lock: threading.Lock, state: Callable[[], State]) -> None:
        self._lock = lock
        self._state = state

    def __len__(self) -> int:
        with self._lock:
            return len(self._state().acl.sessions)

    def __iter__(self) -> Iterator[Session]:
        with self._lock:
            return iter(list(self._state().acl.sessions))

    def clear(self, sw_if_index: int | None = None) -> int:
        """Forget the sessions (of one interface); returns how many went."""
        with self._lock:
            sessions = self._state().acl.sessions
            if sw_if_index is None:
                return sessions.clear()
            return sessions.clear_interface(sw_if_index)
