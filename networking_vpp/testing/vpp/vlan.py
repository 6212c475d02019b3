"""VLAN tags in VPP: which interface a tagged frame belongs to, and EFP filtering.

**ethernet-input** (``src/vnet/ethernet/node.c``: ``parse_header``,
``eth_identify_subint`` in ``ethernet.h``). A frame's first tag counts if its
TPID is 0x8100, 0x88a8, 0x9100 or 0x9200 (``ethernet_frame_is_tagged``); the
ones after it count only while their TPID is 0x8100, and at most three are
counted ("3 or more"). That count fixes the L2 header length (``l2.l2_len``)
that every later node uses: whatever follows the counted tags is the frame's
"ethertype" for the feature arcs and the ACL plugin, even another tag. The
lookup takes the dot1ad VLAN table if the first TPID is 0x88a8, else the dot1q
one, and tries, most specific first: (outer, inner) two-tag sub-interface,
outer with any inner, one-tag sub-interface of the outer VLAN, the default
sub-interface, then the main interface. Each has match flags (which tag counts
it takes) and a candidate matches if it has every flag the frame has:

* exact-match one tag (``create_vlan_subif``): one tag only; without
  EXACT_MATCH one, two or three tags; two-tag ones two (or two and three);
* the default sub-interface: one, two or three tags, any VLAN;
* the main interface: untagged only in L3 mode, and 0-3 tags in L2 mode
  (``ethernet_sw_interface_set_l2_mode``): a tag no sub-interface takes
  enters the main interface's bridge domain, tag and all.

A single tag with VLAN id 0 (a priority tag) has no flag at all, so the first
valid candidate takes it (the default sub-interface if there is one, else the
main interface even in L3 mode). A sub-interface that is admin down still
matches, and the frame is dropped (``ETHERNET_ERROR_DOWN``); no match drops it
too (``UNKNOWN_VLAN``).

**Egress VLAN filtering** (``src/vnet/l2/l2_efp_filter.c``, ``l2_vtr.h``
``l2_efp_filter_process``, ``l2_output.c``): on an interface with
``l2_interface_efp_filter`` a frame leaving L2 must look as if it had arrived
there. Before the output tag rewrite (only on an interface with one) the tags
the *input* rewrite pushes must be its outer tags; after it, the frame's
counted tags are run through the lookup above on the output port, and unless
that names the output interface itself (admin up: a down one's entry holds ~0)
the frame is dropped. The post-rewrite lookup counts tags from ``l2_len``
without clearing the VLAN 0 case.

**af_packet** (``src/plugins/af_packet/node.c``): the kernel strips a frame's
outer VLAN tag (802.1Q or 802.1ad) into the packet's metadata, and af_packet
input writes it back as 0x8100 whatever its TPID: an 802.1ad outer tag comes
into VPP as 802.1Q.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.state import Interface, State

Tag = tuple[int, int]  # (TPID, VLAN id)

ETH_VLAN, ETH_DOT1AD, ETH_VLAN_9100, ETH_VLAN_9200 = 0x8100, 0x88A8, 0x9100, 0x9200
TAGGED = frozenset({ETH_VLAN, ETH_DOT1AD, ETH_VLAN_9100, ETH_VLAN_9200})
# vl_api_sub_if_flags_t
SUB_NO_TAGS, SUB_ONE_TAG, SUB_TWO_TAGS, SUB_DOT1AD = 1, 2, 4, 8
SUB_EXACT_MATCH, SUB_DEFAULT, SUB_OUTER_ANY, SUB_INNER_ANY = 16, 32, 64, 128
# subint_config_t flags (ethernet.h)
MATCH_0, MATCH_1, MATCH_2, MATCH_3, VALID, L2 = 1, 2, 4, 8, 16, 32
MATCH_ANY_TAGS = MATCH_1 | MATCH_2 | MATCH_3

#: The key of a sub-interface in its port's lookup tables: ("2", table, outer,
#: inner), ("any", table, outer), ("1", table, outer) or ("default",); table is
#: 1 for dot1ad, 0 for dot1q.
MatchKey = tuple[object, ...]


def subif_match(flags: int, outer: int, inner: int) -> tuple[MatchKey, int] | None:
    """(lookup key, match flags) of a new sub-interface, as
    ``ethernet_sw_interface_get_config`` has them; None: VPP refuses it
    (untagged, which is the main interface's; or "any outer", unimplemented)."""
    if flags & SUB_DEFAULT:
        return ("default",), VALID | MATCH_ANY_TAGS
    if flags & SUB_NO_TAGS or flags == 0 or flags & SUB_OUTER_ANY:
        return None
    table = 1 if flags & SUB_DOT1AD else 0
    exact = bool(flags & SUB_EXACT_MATCH)
    if flags & SUB_ONE_TAG:
        return ("1", table, outer), VALID | (MATCH_1 if exact else MATCH_ANY_TAGS)
    match = VALID | (MATCH_2 if exact else MATCH_2 | MATCH_3)
    if flags & SUB_INNER_ANY:
        return ("any", table, outer), match
    return ("2", table, outer, inner), match


def counted(tags: tuple[Tag, ...]) -> int:
    """How many tags ethernet-input counts (parse_header): at most three."""
    if not tags or tags[0][0] not in TAGGED:
        return 0
    n = 1
    while n < len(tags) and n < 3 and tags[n][0] == ETH_VLAN:
        n += 1
    return n


def af_packet_input(tags: tuple[Tag, ...]) -> tuple[Tag, ...]:
    """The tags as af_packet-input rebuilds them: the outer one as 802.1Q."""
    if tags and tags[0][0] == ETH_DOT1AD:
        return ((ETH_VLAN, tags[0][1]), *tags[1:])
    return tags


def main_flags(port: Interface) -> int:
    """The main interface's (untagged) match flags: any tags once in L2 mode."""
    return VALID | MATCH_0 | (MATCH_ANY_TAGS | L2 if port.bd is not None else 0)


def _flags(sub: Interface) -> int:
    """A sub-interface's subint_config_t flags (L2 while it is bridged)."""
    return sub.match_flags | (L2 if sub.bd is not None else 0)


def _lookup(state: State, port: Interface, tags: tuple[Tag, ...], flags: int) -> Interface | None:
    """eth_vlan_table_lookups + eth_identify_subint: the matching interface."""
    outer = tags[0][1] if tags else 0
    inner = tags[1][1] if len(tags) > 1 else 0
    table = 1 if tags and tags[0][0] == ETH_DOT1AD else 0
    if port.match:
        for key in (("2", table, outer, inner), ("any", table, outer), ("1", table, outer)):
            index = port.match.get(key)
            if index is not None:
                sub = state.get(index)
                if sub is not None and _flags(sub) & flags == flags:
                    return sub
        index = port.match.get(("default",))
        if index is not None:
            sub = state.get(index)
            if sub is not None and _flags(sub) & flags == flags:
                return sub
    return port if main_flags(port) & flags == flags else None


def classify(state: State, port: Interface, tags: tuple[Tag, ...]) -> Interface | None:
    """The interface a frame arriving on ``port`` with ``tags`` belongs to (None:
    no match). Whether it is up is the caller's question."""
    n = counted(tags)
    flags = VALID | (1 << n)
    if n == 1 and tags[0][1] == 0:
        flags = VALID  # a priority tag: SUBINT_CONFIG_MATCH_1_TAG cleared
    return _lookup(state, port, tags, flags)


def efp_accepts(
    state: State, itf: Interface, port: Interface, tags: tuple[Tag, ...], n: int
) -> bool:
    """l2-efp-filter after the output rewrite: the frame's ``n`` counted tags
    classify to ``itf`` itself, and ``itf`` is up."""
    flags = VALID | (1 << n)  # eth_create_valid_subint_match_flags: no VLAN 0 case
    found = _lookup(state, port, tags, flags)
    return found is itf and itf.admin_up
