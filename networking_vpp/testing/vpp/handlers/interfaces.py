"""interface.api: dumps, admin state, MTU, tags and VLAN sub-interfaces.

Behaviour follows ``src/vnet/interface_api.c``: an invalid index is
``INVALID_SW_IF_INDEX`` (VALIDATE_SW_IF_INDEX); ``sw_interface_dump`` with an
index other than 0 or ~0 (and no name filter) returns that one interface, or
nothing; 0 means all; the name filter is a case-insensitive substring match;
``create_vlan_subif`` creates ``<parent>.<vlan>`` on the parent's hardware
interface (one tag, exact match), refusing VLAN 0 or > 4095 (INVALID_VLAN)
and a VLAN that exists (VLAN_ALREADY_EXISTS), answering sw_if_index ~0 on
error; ``create_subif`` creates ``<parent>.<sub_id>`` with any match
(``vlan.py``), refusing a used sub_id (VLAN_ALREADY_EXISTS) and a match
another sub-interface has, or one VPP does not implement (UNSPECIFIED: its
ethernet add/del callback failed); ``delete_subif`` refuses a
non-sub-interface (INVALID_SUB_SW_IF_INDEX).

Receive queues (``vnet/interface/rx_queue.c``): NICs have one in polling mode,
af_packet one in interrupt mode (real-vpp-facts #7), local0 none, and a
vhost-user interface none until its VM's first kick (``state.vm_attach``).
``sw_interface_set_rx_mode`` on a sub-interface is INVALID_VALUE; for all
queues of an interface that has none it succeeds and keeps nothing; an unknown
queue, a mode the driver refuses (UNKNOWN; interrupt or adaptive on a
vhost-user queue whose VM is gone: no kick file) is UNIMPLEMENTED. DEFAULT is
the interface's default, polling. The placement dump skips sub-interfaces,
sorted as ``vnet_hw_if_rxq_cmp_cli_api`` sorts (one thread: by interface, queue).
"""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.convert import ZERO_MAC
from networking_vpp.testing.vpp.handlers.base import Env, handler
from networking_vpp.testing.vpp.state import (
    NO_INDEX,
    RX_MODE_ADAPTIVE,
    RX_MODE_DEFAULT,
    RX_MODE_INTERRUPT,
    RX_MODE_POLLING,
    Interface,
    State,
)

ADMIN_UP, LINK_UP = 1, 2  # vl_api_if_status_flags_t
# L2 VTR operations that push tags: only these report push_dot1q/tag1/tag2 (l2vtr_get)
_VTR_PUSHES = frozenset({1, 2, 5, 6, 7, 8})


def details(st: State, itf: Interface) -> dict[str, Any]:
    """The sw_interface_details of one interface, as send_sw_interface_details fills it."""
    main = itf.is_main
    hw = itf if main else (st.get(itf.sup_sw_if_index) or itf)
    d = {
        "sw_if_index": itf.sw_if_index,
        "sup_sw_if_index": itf.sup_sw_if_index,
        # The L2 address is sent for Ethernet main interfaces only.
        "l2_address": itf.l2_address if main and itf.ethernet else ZERO_MAC,
        "flags": (ADMIN_UP if itf.admin_up else 0) | (LINK_UP if hw.link_up else 0),
        "type": itf.type,
        "link_duplex": hw.link_duplex,
        "link_speed": hw.link_speed,
        "link_mtu": hw.link_mtu,
        "mtu": list(itf.mtu),
        "vtr_op": itf.vtr_op,
        "interface_name": itf.name[:63],
        "interface_dev_type": itf.dev_type,
        "tag": itf.tag,
    }
    if itf.vtr_op in _VTR_PUSHES:
        d["vtr_push_dot1q"] = itf.vtr_push_dot1q
        d["vtr_tag1"] = itf.vtr_tag1
        d["vtr_tag2"] = itf.vtr_tag2
    if not main:
        d["sub_id"] = itf.sub_id
        d["sub_number_of_tags"] = itf.n_tags
        d["sub_outer_vlan_id"] = itf.outer_vlan
        d["sub_inner_vlan_id"] = itf.inner_vlan
        d["sub_if_flags"] = itf.sub_if_flags
    return d


@handler("sw_interface_dump")
def sw_interface_dump(env: Env, client: int, a: dict[str, Any]) -> list[dict[str, Any]]:
    """One interface in O(1) by index, or all (optionally name-filtered) in index order."""
    st = env.state
    index = a["sw_if_index"]
    if not a["name_filter_valid"] and index not in (NO_INDEX, 0):
        itf = st.get(index)
        return [details(st, itf)] if itf is not None else []
    if a["name_filter_valid"]:
        flt = a["name_filter"].lower()
        return [details(st, i) for i in st.interfaces() if flt in i.name.lower()]
    return [details(st, i) for i in st.interfaces()]


@handler("sw_interface_set_flags")
def sw_interface_set_flags(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Admin up/down; a sub-interface cannot go up while its port is down (retval -1)."""
    itf = env.state.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    return {"retval": env.state.set_admin(itf, bool(a["flags"] & ADMIN_UP))}


@handler("sw_interface_set_mtu")
def sw_interface_set_mtu(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """The per-protocol MTUs (L3, IPv4, IPv6, MPLS), stored as given."""
    itf = env.state.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    itf.mtu = a["mtu"]  # a list of the call's own (each unpack makes it anew)
    return {}


@handler("sw_interface_tag_add_del")
def sw_interface_tag_add_del(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Set (non-empty, else INVALID_VALUE) or clear an interface's tag."""
    itf = env.state.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    if a["is_add"]:
        if not a["tag"]:
            return {"retval": e.INVALID_VALUE}
        itf.tag = a["tag"]
    else:
        itf.tag = ""
    return {}


@handler("create_vlan_subif")
def create_vlan_subif(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """A dot1q sub-interface of the given interface's port."""
    st = env.state
    itf = st.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX, "sw_if_index": NO_INDEX}
    parent = itf if itf.is_main else st.get(itf.sup_sw_if_index)
    assert parent is not None
    vlan = a["vlan_id"]
    if vlan == 0 or vlan > 4095:
        return {"retval": e.INVALID_VLAN, "sw_if_index": NO_INDEX}
    if vlan in parent.subifs:
        return {"retval": e.VLAN_ALREADY_EXISTS, "sw_if_index": NO_INDEX}
    sub = st.create_vlan_subif(parent, vlan)
    if sub is None:  # another sub-interface takes VLAN <vlan> already
        return {"retval": e.INVALID_REGISTRATION, "sw_if_index": NO_INDEX}
    return {"sw_if_index": sub.sw_if_index}


@handler("create_subif")
def create_subif(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """vnet_create_sub_interface on the given interface's port."""
    st = env.state
    itf = st.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX, "sw_if_index": NO_INDEX}
    parent = itf if itf.is_main else st.get(itf.sup_sw_if_index)
    assert parent is not None
    if a["sub_id"] in parent.subifs:
        return {"retval": e.VLAN_ALREADY_EXISTS, "sw_if_index": NO_INDEX}
    flags = int(a["sub_if_flags"])
    sub = st.create_subif(parent, a["sub_id"], flags, a["outer_vlan_id"], a["inner_vlan_id"])
    if sub is None:  # "vlan is already in use", or "not implemented yet"
        return {"retval": e.UNSPECIFIED, "sw_if_index": NO_INDEX}
    return {"sw_if_index": sub.sw_if_index}


@handler("delete_subif")
def delete_subif(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """vnet_delete_sub_interface."""
    itf = env.state.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    if itf.is_main:
        return {"retval": e.INVALID_SUB_SW_IF_INDEX}
    env.state.delete_interface(itf)
    return {}


def rx_queues(itf: Interface) -> dict[int, int]:
    """The interface's receive queues (id -> mode), as its device registers them."""
    if itf.rx_queues is None:
        if itf.vhost is not None or not itf.is_main or itf.dev_type == "local":
            itf.rx_queues = {}  # vhost-user: until the VM's kick (state.vm_attach)
        elif itf.dev_type == "af-packet":
            itf.rx_queues = {0: RX_MODE_INTERRUPT}
        else:
            itf.rx_queues = {0: RX_MODE_POLLING}
    return itf.rx_queues


@handler("sw_interface_set_rx_mode")
def sw_interface_set_rx_mode(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """One queue's mode, or every queue's (none at all is no error)."""
    itf = env.state.get(a["sw_if_index"])
    if itf is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    if not itf.is_main:
        return {"retval": e.INVALID_VALUE}
    queues = rx_queues(itf)
    mode = int(a["mode"])
    if mode == RX_MODE_DEFAULT:
        mode = RX_MODE_POLLING  # hi->default_rx_mode: VPP's default, polling
    if a["queue_id_valid"]:
        if a["queue_id"] not in queues:
            return {"retval": e.UNIMPLEMENTED}  # "unknown queue"
        ids = [a["queue_id"]]
    else:
        ids = sorted(queues)
    for queue_id in ids:
        if queues[queue_id] == mode:
            continue  # unchanged: the driver is not asked
        if mode not in (RX_MODE_POLLING, RX_MODE_INTERRUPT, RX_MODE_ADAPTIVE):
            return {"retval": e.UNIMPLEMENTED}
        vhost = itf.vhost
        if vhost is not None and mode != RX_MODE_POLLING and not vhost.num_regions:
            return {"retval": e.UNIMPLEMENTED}  # "Driver does not support interrupt"
        queues[queue_id] = mode
    return {}


@handler("sw_interface_rx_placement_dump")
def sw_interface_rx_placement_dump(
    env: Env, client: int, a: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every receive queue (one thread: worker 0), or one interface's."""
    st = env.state
    wanted = a["sw_if_index"]
    if wanted == NO_INDEX:
        itfs = [i for i in st.interfaces() if i.is_main]
    else:
        itf = st.get(wanted)
        itfs = [itf] if itf is not None and itf.is_main else []
    return [
        {"sw_if_index": itf.sw_if_index, "queue_id": queue_id, "worker_id": 0, "mode": mode}
        for itf in itfs
        for queue_id, mode in sorted(rx_queues(itf).items())
    ]
