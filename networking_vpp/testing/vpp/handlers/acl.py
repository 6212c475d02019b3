"""acl.api: the ACL plugin's ACLs, MACIP ACLs and their interface bindings.

Behaviour follows ``src/plugins/acl/acl.c`` (VPP 26.10):

* ``acl_add_replace``: every rule is checked first - a source prefix with
  host bits set is INVALID_SRC_ADDRESS, a destination one
  INVALID_DST_ADDRESS (``ip_prefix_decode2``), a port/type range whose first
  is above its last INVALID_VALUE_2 - then ``acl_index`` ~0 makes a new ACL
  (at the last freed index, else a new one, as a vppinfra pool does), another
  index must exist (else NO_SUCH_ENTRY, the reply passing the index through)
  and is replaced in place: same index, new rules and tag, in force at once
  on every interface using it; sessions already made stay (VPP does not
  reclassify them by default; with reclassification on, a replace starts a
  new policy epoch on every interface using the ACL, ``acl_state.py``). No
  rules is allowed.
* A ``count`` above the rules sent (vpp_papi packs ``count=2, r=[]``) is
  INVALID_VALUE (``verify_message_len``).
* ``acl_del``: NO_SUCH_ENTRY; ACL_IN_USE_INBOUND / ACL_IN_USE_OUTBOUND while
  an interface still applies it (input checked first).
* ``acl_interface_set_acl_list``: INVALID_SW_IF_INDEX; NO_SUCH_ENTRY if any
  listed ACL is missing (nothing changes); the first ``n_input`` ACLs are the
  input list, the rest the output list. The output list is set first, and
  the handler combines the two results with C's ``rv || ...``: an ACL listed
  twice in a direction leaves that direction (and, for the output, the
  input too) unchanged and answers retval **1**, not ENTRY_ALREADY_EXISTS.
  Changing the set of ACLs in a direction clears the interface's sessions
  (with reclassification off; on, every setting starts a new policy epoch).
* ``acl_interface_add_del``: adding an ACL already in the list is
  ACL_IN_USE_INBOUND/OUTBOUND, a missing ACL NO_SUCH_ENTRY; deleting one not
  in the list NO_SUCH_ENTRY, and the last ACL of the list takes its place
  (``vec_del1``).
* ``acl_dump`` / ``macip_acl_dump``: ~0 for all, in index order, else the
  one ACL or nothing. ``acl_interface_list_dump``: ~0 for every interface
  (with or without ACLs), else that interface if it exists.
* MACIP: ``macip_acl_add`` always makes a new ACL; ``macip_acl_add_replace``
  as ``acl_add_replace`` (no rule checks: the classifier masks the bits);
  ``macip_acl_del`` of an applied ACL unapplies it everywhere first;
  ``macip_acl_interface_add_del`` adds (replacing any; NO_SUCH_ENTRY for a
  missing ACL) or deletes whatever is applied (NO_SUCH_ENTRY if nothing; the
  acl_index is not looked at); ``macip_acl_interface_get`` returns VPP's
  per-interface vector as it is (up to the highest sw_if_index ever given a
  MACIP ACL, ~0 where none); ``macip_acl_interface_list_dump`` with ~0 lists
  the interfaces that have one, with an index within that vector answers
  even ~0 (its sw_if_index has no default: 0).
"""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.acl_state import NO_INDEX, AclList, AclState, MacipAcl
from networking_vpp.testing.vpp.convert import had_host_bits
from networking_vpp.testing.vpp.handlers.base import Env, handler

ACL_PLUGIN_VERSION = (1, 4)  # ACL_PLUGIN_VERSION_MAJOR/MINOR (acl.h)
CONN_TABLE_MAX_ENTRIES = 500_000  # ACL_FA_CONN_TABLE_DEFAULT_MAX_ENTRIES (fa_node.h)

Reply = dict[str, Any]


@handler("acl_plugin_get_version")
def acl_plugin_get_version(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """The plugin's own version (not the API's)."""
    major, minor = ACL_PLUGIN_VERSION
    return {"major": major, "minor": minor}


@handler("acl_plugin_control_ping")
def acl_plugin_control_ping(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """A ping answered with VPP's pid (client_index stays 0, as VPP leaves it)."""
    return {"vpe_pid": env.vpe_pid}


@handler("acl_plugin_get_conn_table_max_entries")
def acl_plugin_get_conn_table_max_entries(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """The session table's size (the default; the emulator does not enforce it)."""
    return {"conn_table_max_entries": CONN_TABLE_MAX_ENTRIES}


# --- ACLs -------------------------------------------------------------------------
def _rules_error(rules: list[dict[str, Any]]) -> int:
    """The first rule error acl_add_list finds, or 0."""
    for r in rules:
        if had_host_bits(r["src_prefix"]):
            return e.INVALID_SRC_ADDRESS
        if had_host_bits(r["dst_prefix"]):
            return e.INVALID_DST_ADDRESS
        if r["srcport_or_icmptype_first"] > r["srcport_or_icmptype_last"]:
            return e.INVALID_VALUE_2
        if r["dstport_or_icmpcode_first"] > r["dstport_or_icmpcode_last"]:
            return e.INVALID_VALUE_2
    return 0


@handler("acl_add_replace")
def acl_add_replace(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """Create (acl_index ~0) or replace in place an ACL."""
    st = env.state.acl
    index, rules = a["acl_index"], a["r"]
    if a["count"] != len(rules):  # verify_message_len: fewer rules sent than counted
        return {"retval": e.INVALID_VALUE, "acl_index": index}
    rv = _rules_error(rules)
    if rv:
        return {"retval": rv, "acl_index": index}
    if index == NO_INDEX:
        index = st.acl_pool.get()
        st.acls[index] = AclList(rules, a["tag"])
        return {"acl_index": index}
    acl = st.acls.get(index)
    if acl is None:
        return {"retval": e.NO_SUCH_ENTRY, "acl_index": index}
    acl.rules, acl.tag, acl.compiled = rules, a["tag"], None
    st.acl_replaced(index)
    return {"acl_index": index}


@handler("acl_del")
def acl_del(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """Delete an ACL no interface applies."""
    st = env.state.acl
    index = a["acl_index"]
    if index not in st.acls:
        return {"retval": e.NO_SUCH_ENTRY}
    rv = st.in_use(index)
    if rv:
        return {"retval": rv}
    del st.acls[index]
    st.acl_pool.put(index)
    return {}


@handler("acl_interface_set_acl_list")
def acl_interface_set_acl_list(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """Both lists of an interface at once: input ACLs first in ``acls``."""
    if env.state.get(a["sw_if_index"]) is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    st, sw, acls = env.state.acl, a["sw_if_index"], a["acls"]
    if a["count"] != len(acls):
        # VPP would read ACL indices past the end of the message; refuse instead.
        return {"retval": e.INVALID_VALUE}
    if acls and any(index not in st.acls for index in acls):
        return {"retval": e.NO_SUCH_ENTRY}
    n_input = a["n_input"]
    # rv = set(output); rv = rv || set(input): a failure reads as 1.
    if st.set_list(sw, False, acls[n_input:]):
        return {"retval": 1}
    return {"retval": 1 if st.set_list(sw, True, acls[:n_input]) else 0}


@handler("acl_interface_add_del")
def acl_interface_add_del(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """Append an ACL to, or take one out of, one direction's list."""
    if env.state.get(a["sw_if_index"]) is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    st, sw, index, is_input = env.state.acl, a["sw_if_index"], a["acl_index"], a["is_input"]
    acls = list(st.lists[is_input].get(sw, ()))
    if a["is_add"]:
        if index in acls:
            return {"retval": e.ACL_IN_USE_INBOUND if is_input else e.ACL_IN_USE_OUTBOUND}
        acls.append(index)
    else:
        if index not in acls:
            return {"retval": e.NO_SUCH_ENTRY}
        i = acls.index(index)
        acls[i] = acls[-1]  # vec_del1: the last element fills the hole
        acls.pop()
    return {"retval": st.set_list(sw, is_input, acls)}


def _acl_details(index: int, acl: AclList | MacipAcl) -> Reply:
    return {"acl_index": index, "tag": acl.tag, "count": len(acl.rules), "r": acl.rules}


@handler("acl_dump")
def acl_dump(env: Env, client: int, a: dict[str, Any]) -> list[Reply]:
    """One ACL, or all (~0) in index order."""
    acls = env.state.acl.acls
    index = a["acl_index"]
    if index == NO_INDEX:
        return [_acl_details(i, acls[i]) for i in sorted(acls)]
    acl = acls.get(index)
    return [_acl_details(index, acl)] if acl is not None else []


def _interface_lists(st: AclState, sw: int) -> Reply:
    inputs, outputs = st.lists[1].get(sw, []), st.lists[0].get(sw, [])
    return {
        "sw_if_index": sw,
        "count": len(inputs) + len(outputs),
        "n_input": len(inputs),
        "acls": inputs + outputs,
    }


@handler("acl_interface_list_dump")
def acl_interface_list_dump(env: Env, client: int, a: dict[str, Any]) -> list[Reply]:
    """Every interface's lists (~0, the default), or one interface's."""
    st, sw = env.state, a["sw_if_index"]
    if sw == NO_INDEX:
        return [_interface_lists(st.acl, itf.sw_if_index) for itf in st.interfaces()]
    return [_interface_lists(st.acl, sw)] if st.get(sw) is not None else []


# --- MACIP ACLs ----------------------------------------------------------------------
def _macip_add(st: AclState, index: int, a: dict[str, Any]) -> Reply:
    if a["count"] != len(a["r"]):  # verify_message_len: fewer rules sent than counted
        return {"retval": e.INVALID_VALUE, "acl_index": index}
    if index == NO_INDEX:
        index = st.macip_pool.get()
        st.macips[index] = MacipAcl(a["r"], a["tag"])
        return {"acl_index": index}
    macip = st.macips.get(index)
    if macip is None:
        return {"retval": e.NO_SUCH_ENTRY, "acl_index": index}
    macip.rules, macip.tag, macip.compiled = a["r"], a["tag"], None
    return {"acl_index": index}


@handler("macip_acl_add")
def macip_acl_add(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """A new MACIP ACL."""
    return _macip_add(env.state.acl, NO_INDEX, a)


@handler("macip_acl_add_replace")
def macip_acl_add_replace(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """A new MACIP ACL (acl_index ~0, the default), or one replaced in place."""
    return _macip_add(env.state.acl, a["acl_index"], a)


@handler("macip_acl_del")
def macip_acl_del(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """Unapply the MACIP ACL wherever it is applied, then delete it."""
    st, index = env.state.acl, a["acl_index"]
    if index not in st.macips:
        return {"retval": e.NO_SUCH_ENTRY}
    for sw, applied in enumerate(st.macip_by_sw_if_index):
        if applied == index:
            st.macip_unapply(sw)
    del st.macips[index]
    st.macip_pool.put(index)
    return {}


@handler("macip_acl_interface_add_del")
def macip_acl_interface_add_del(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """Apply a MACIP ACL to an interface (replacing any), or remove the one applied."""
    if env.state.get(a["sw_if_index"]) is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    st, sw = env.state.acl, a["sw_if_index"]
    if not a["is_add"]:
        return {"retval": st.macip_unapply(sw)}
    if a["acl_index"] not in st.macips:
        return {"retval": e.NO_SUCH_ENTRY}
    st.macip_apply(sw, a["acl_index"])
    return {}


@handler("macip_acl_dump")
def macip_acl_dump(env: Env, client: int, a: dict[str, Any]) -> list[Reply]:
    """One MACIP ACL, or all (~0, the default) in index order."""
    macips = env.state.acl.macips
    index = a["acl_index"]
    if index == NO_INDEX:
        return [_acl_details(i, macips[i]) for i in sorted(macips)]
    macip = macips.get(index)
    return [_acl_details(index, macip)] if macip is not None else []


@handler("macip_acl_interface_get")
def macip_acl_interface_get(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """VPP's MACIP-ACL-by-sw_if_index vector, holes (~0) included."""
    vec = env.state.acl.macip_by_sw_if_index
    return {"count": len(vec), "acls": list(vec)}


@handler("macip_acl_interface_list_dump")
def macip_acl_interface_list_dump(env: Env, client: int, a: dict[str, Any]) -> list[Reply]:
    """Interfaces with a MACIP ACL (~0), or one slot of the vector."""
    vec, sw = env.state.acl.macip_by_sw_if_index, a["sw_if_index"]
    if sw == NO_INDEX:
        return [
            {"sw_if_index": i, "count": 1, "acls": [index]}
            for i, index in enumerate(vec)
            if index != NO_INDEX
        ]
    return [{"sw_if_index": sw, "count": 1, "acls": [vec[sw]]}] if sw < len(vec) else []


@handler("acl_interface_set_etype_whitelist")
def acl_interface_set_etype_whitelist(env: Env, client: int, a: dict[str, Any]) -> Reply:
    """acl_set_etype_whitelists: the first n_input ethertypes for input, the rest output."""
    st = env.state
    if st.get(a["sw_if_index"]) is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    types, n = list(a["whitelist"]), a["n_input"]
    st.acl.whitelists[a["sw_if_index"]] = (types[:n], types[n:])
    return {}


def _whitelist_details(st: AclState, sw: int) -> list[Reply]:
    ins, outs = st.whitelists.get(sw, ([], []))
    if not ins and not outs:
        return []  # send_acl_interface_etype_whitelist_details: "nothing to do"
    return [
        {
            "sw_if_index": sw,
            "count": len(ins) + len(outs),
            "n_input": len(ins),
            "whitelist": ins + outs,
        }
    ]


@handler("acl_interface_etype_whitelist_dump")
def acl_interface_etype_whitelist_dump(env: Env, client: int, a: dict[str, Any]) -> list[Reply]:
    """Interfaces with a whitelist (~0: every live interface), in pool order."""
    st, sw = env.state, a["sw_if_index"]
    if sw == NO_INDEX:
        return [d for itf in st.interfaces() for d in _whitelist_details(st.acl, itf.sw_if_index)]
    return _whitelist_details(st.acl, sw) if st.get(sw) is not None else []
