"""af_packet.api: attach to an existing kernel interface as ``host-<ifname>``.

Behaviour follows ``src/plugins/af_packet/af_packet.c`` and
``af_packet_api.c``: a mode other than Ethernet (1) or IP (2) is
INVALID_VALUE (sw_if_index ~0); a host interface already attached is
IF_ALREADY_EXISTS with the existing index; a host interface the kernel does
not have is INVALID_INTERFACE (sw_if_index 0: the handler's zeroed argument
block), one it has is bound by its ifindex (see kernel.py); deleting one
that is not attached is SYSCALL_ERROR_1. A new af_packet
interface is admin down with its link up, and keeps its ``flags``: the packet
walk reads CKSUM_GSO (the kernel accepts PACKET_VNET_HDR, so VPP keeps the
flag as asked). On real devices the interface's socket carries real frames
from creation to deletion (``env.frames``, frameio.py).
"""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.convert import ZERO_MAC
from networking_vpp.testing.vpp.handlers.base import Env, handler
from networking_vpp.testing.vpp.state import NO_INDEX

MODE_ETHERNET, MODE_IP = 1, 2


@handler("af_packet_create_v3")
def af_packet_create_v3(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Attach to kernel interface ``host_if_name``."""
    st = env.state
    mode = a["mode"]
    if mode not in (MODE_ETHERNET, MODE_IP):
        return {"retval": e.INVALID_VALUE, "sw_if_index": NO_INDEX}
    host = a["host_if_name"]
    if host in st.afp_by_host:
        return {"retval": e.IF_ALREADY_EXISTS, "sw_if_index": st.afp_by_host[host][1].sw_if_index}
    host_ifindex = env.kernel_interfaces.ifindex(host)
    if host_ifindex is None:
        return {"retval": e.INVALID_INTERFACE, "sw_if_index": 0}
    ethernet = mode == MODE_ETHERNET
    if not ethernet:
        mac = ZERO_MAC
    elif a["use_random_hw_addr"]:
        mac = st.random_mac()
    else:
        mac = a["hw_addr"]
    pool_index = st.afp_pool.get()
    itf = st.new_interface(
        f"host-{host}",
        "af-packet",
        l2_address=mac,
        host_if_name=host,
        host_ifindex=host_ifindex,
        ethernet=ethernet,
        afp_flags=int(a["flags"]),
    )
    if not ethernet:  # an IP-mode device is not an Ethernet interface: no MTU defaults
        itf.link_mtu, itf.mtu = 0, [0, 0, 0, 0]
    st.afps[pool_index] = itf
    st.afp_by_host[host] = (pool_index, itf)
    st.set_link(itf, True)
    if env.frames is not None:
        env.frames.attach(itf)
    return {"sw_if_index": itf.sw_if_index}


@handler("af_packet_delete")
def af_packet_delete(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Detach from a kernel interface: link down, then delete."""
    st = env.state
    entry = st.afp_by_host.pop(a["host_if_name"], None)
    if entry is None:
        return {"retval": e.SYSCALL_ERROR_1}
    pool_index, itf = entry
    if env.frames is not None:
        env.frames.detach(itf)
    st.set_link(itf, False)
    st.delete_interface(itf)
    del st.afps[pool_index]
    st.afp_pool.put(pool_index)
    return {}


@handler("af_packet_dump")
def af_packet_dump(env: Env, client: int, a: dict[str, Any]) -> list[dict[str, Any]]:
    """Every af_packet interface in pool order."""
    st = env.state
    return [
        {"sw_if_index": st.afps[i].sw_if_index, "host_if_name": st.afps[i].host_if_name}
        for i in sorted(st.afps)
    ]
