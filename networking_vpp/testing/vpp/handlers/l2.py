"""l2.api: bridge domains, bridge membership and VLAN tag rewrite.

Behaviour follows ``src/vnet/l2/l2_api.c`` and ``l2_bd.c``: adding an
existing bridge domain (or 0) is BD_ALREADY_EXISTS, an id above 2^24-1 is
BD_ID_EXCEED_MAX; deleting a missing one is NO_SUCH_ENTRY, bridge domain 0
BD_NOT_MODIFIABLE, one with members BD_IN_USE; ``bridge_domain_add_del_v2``
with bd_id ~0 picks an unused id (EAGAIN if none) and returns it;
``sw_interface_set_l2_bridge`` creates a missing bridge domain with VPP's
defaults; ``l2_interface_efp_filter`` sets the output feature on any valid
interface (the walk applies it in L2 mode, ``vlan.py``);
``bridge_domain_dump`` walks bridge domains in bd_index order and returns
nothing for bd_id 0 or a sw_if_index filter (unimplemented in VPP);
``bridge_domain_set_learn_limit`` (no dump shows it; ``l2learn.py`` applies it);
``bridge_domain_set_mac_age`` (the dump shows it; ``l2learn.py`` ages by it).
"""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.handlers.base import Env, handler
from networking_vpp.testing.vpp.state import (
    L2_BD_ID_MAX,
    NO_INDEX,
    PORT_UU_FWD,
    BridgeDomain,
    State,
)

# l2_vtr_op_t: how many tags each operation needs the interface to match
L2_VTR_TAGS_NEEDED = {0: 0, 1: 0, 2: 0, 3: 1, 4: 2, 5: 1, 6: 1, 7: 2, 8: 2}
_VTR_PUSHES = frozenset({1, 2, 5, 6, 7, 8})


def _bd_add_del(st: State, a: dict[str, Any], bd_id: int) -> int:
    if a["is_add"]:
        if bd_id == 0 or bd_id in st.bds:
            return e.BD_ALREADY_EXISTS
        if bd_id > L2_BD_ID_MAX:
            return e.BD_ID_EXCEED_MAX
        bd = st.bd_create(bd_id)
        bd.flood, bd.uu_flood, bd.forward = a["flood"], a["uu_flood"], a["forward"]
        bd.learn, bd.arp_term, bd.arp_ufwd = a["learn"], a["arp_term"], a["arp_ufwd"]
        bd.mac_age, bd.tag = a["mac_age"], a["bd_tag"]
        return 0
    if bd_id == 0:
        return e.BD_NOT_MODIFIABLE
    found = st.bds.get(bd_id)
    if found is None:
        return e.NO_SUCH_ENTRY
    if found.members:
        return e.BD_IN_USE
    st.bd_delete(found)
    return 0


@handler("bridge_domain_add_del")
def bridge_domain_add_del(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Create or delete a bridge domain with an id of the caller's choosing."""
    return {"retval": _bd_add_del(env.state, a, a["bd_id"])}


@handler("bridge_domain_add_del_v2")
def bridge_domain_add_del_v2(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """As bridge_domain_add_del; bd_id ~0 on add means "pick one", returned in the reply."""
    bd_id = a["bd_id"]
    if bd_id == NO_INDEX and a["is_add"]:
        bd_id = env.state.unused_bd_id()
        if bd_id == NO_INDEX:
            return {"retval": e.EAGAIN, "bd_id": bd_id}
    return {"retval": _bd_add_del(env.state, a, bd_id), "bd_id": bd_id}


def _bd_details(st: State, bd: BridgeDomain) -> dict[str, Any]:
    members = []
    for m in bd.members:
        itf = st.get(m)
        members.append({"sw_if_index": m, "shg": itf.shg if itf is not None else 0})
    return {
        "bd_id": bd.bd_id,
        "flood": bd.flood,
        "uu_flood": bd.uu_flood,
        "forward": bd.forward,
        "learn": bd.learn,
        "arp_term": bd.arp_term,
        "arp_ufwd": bd.arp_ufwd,
        "mac_age": bd.mac_age,
        "bd_tag": bd.tag,
        "bvi_sw_if_index": bd.bvi_sw_if_index,
        "uu_fwd_sw_if_index": bd.uu_fwd_sw_if_index,
        "n_sw_ifs": len(members),
        "sw_if_details": members,
    }


@handler("bridge_domain_dump")
def bridge_domain_dump(env: Env, client: int, a: dict[str, Any]) -> list[dict[str, Any]]:
    """All bridge domains (bd_id ~0) in bd_index order, or one."""
    st = env.state
    bd_id = a["bd_id"]
    if a["sw_if_index"] != NO_INDEX or bd_id == 0:
        return []
    if bd_id != NO_INDEX:
        bd = st.bds.get(bd_id)
        return [_bd_details(st, bd)] if bd is not None else []
    return [_bd_details(st, bd) for bd in sorted(st.bds.values(), key=lambda b: b.bd_index)]


def _set_bd(env: Env, bd_id: int, field: str, value: int) -> dict[str, Any]:
    """A bridge domain setting, as l2_api.c's handlers check them: bridge
    domain 0 is BD_NOT_MODIFIABLE, a missing one NO_SUCH_ENTRY."""
    if bd_id == 0:
        return {"retval": e.BD_NOT_MODIFIABLE}
    bd = env.state.bds.get(bd_id)
    if bd is None:
        return {"retval": e.NO_SUCH_ENTRY}
    setattr(bd, field, value)
    return {}


@handler("bridge_domain_set_mac_age")
def bridge_domain_set_mac_age(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """bd_set_mac_age: the ager goes by the new age from its next scan."""
    return _set_bd(env, a["bd_id"], "mac_age", a["mac_age"])


@handler("bridge_domain_set_learn_limit")
def bridge_domain_set_learn_limit(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """bd_set_learn_limit: what is learnt already stays (learning stops at the limit)."""
    return _set_bd(env, a["bd_id"], "learn_limit", a["learn_limit"])


@handler("sw_interface_set_l2_bridge")
def sw_interface_set_l2_bridge(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Put an interface into a bridge domain (created if missing), or back to L3."""
    st = env.state
    itf = st.get(a["rx_sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    port_type = a["port_type"]
    if port_type not in (0, 1, PORT_UU_FWD):
        return {"retval": e.INVALID_VALUE}
    if not a["enable"]:
        st.set_l3(itf)
        return {}
    bd_id = a["bd_id"]
    if bd_id > L2_BD_ID_MAX:
        return {"retval": e.BD_ID_EXCEED_MAX}
    bd = st.bd0 if bd_id == 0 else (st.bds.get(bd_id) or st.bd_create(bd_id))
    return {"retval": st.set_bridge(itf, bd, a["shg"], port_type)}


@handler("l2_interface_efp_filter")
def l2_interface_efp_filter(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """l2_efp_filter_configure: the L2 output feature bit, on any interface."""
    itf = env.state.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    itf.efp = bool(a["enable_disable"])
    return {}


@handler("l2_interface_vlan_tag_rewrite")
def l2_interface_vlan_tag_rewrite(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """l2vtr_configure: pop/push/translate VLAN tags on L2 input (and undo on output)."""
    st = env.state
    itf = st.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    op = a["vtr_op"]
    if op not in L2_VTR_TAGS_NEEDED:
        return {"retval": e.INVALID_VALUE}
    if not itf.ethernet:
        return {"retval": e.INVALID_INTERFACE}
    if st.vtr_tags(itf) < L2_VTR_TAGS_NEEDED[op]:
        return {"retval": e.INVALID_VLAN_TAG_COUNT}
    itf.vtr_op = op
    pushes = op in _VTR_PUSHES
    itf.vtr_push_dot1q = int(bool(a["push_dot1q"])) if pushes else 0
    itf.vtr_tag1 = a["tag1"] & 0xFFFF if pushes else 0
    itf.vtr_tag2 = a["tag2"] & 0xFFFF if op in (2, 6, 8) else 0
    return {}
