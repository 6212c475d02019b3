"""vhost_user.api: VirtualEthernet interfaces that QEMU connects to.

Behaviour follows ``src/plugins/vhost/vhost_user.c`` and
``vhost_user_api.c``: an empty socket path is INVALID_ARGUMENT; a socket path
already in use is IF_ALREADY_EXISTS with the existing interface's index in
the reply; the interface is named ``VirtualEthernet0/0/<instance>`` (the
vhost pool index, or ``custom_dev_instance`` with ``renumber``), starts admin
down with link down and L3 MTU 9000, and its link is up only while it is
admin up *and* a VM is connected. Deleting anything but a vhost-user
interface (or one of its sub-interfaces, which deletes the port) is
INVALID_SW_IF_INDEX; deleting one that served its socket to a VM cuts that VM
off (QEMU, its client, does not reconnect).
"""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.handlers.base import Env, handler
from networking_vpp.testing.vpp.state import NO_INDEX, VhostUser

# What a connected virtio-net guest typically negotiates (MRG_RXBUF, CTRL_VQ,
# GUEST_ANNOUNCE, MQ, INDIRECT_DESC, PROTOCOL_FEATURES; VERSION_1).
_FEATURES_FIRST_32 = 0x8000 | 0x20000 | 0x200000 | 0x400000 | 0x10000000 | 0x40000000
_FEATURES_LAST_32 = 1


@handler("create_vhost_user_if_v2")
def create_vhost_user_if_v2(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """A vhost-user interface on ``sock_filename``; a waiting VM connects at once."""
    st = env.state
    sock = a["sock_filename"]
    if not sock:
        return {"retval": e.INVALID_ARGUMENT, "sw_if_index": NO_INDEX}
    existing = st.vhost_by_socket.get(sock)
    if existing is not None:
        return {"retval": e.IF_ALREADY_EXISTS, "sw_if_index": existing.sw_if_index}
    instance = st.vhost_pool.get()
    shown = a["custom_dev_instance"] if a["renumber"] else instance
    itf = st.new_interface(
        f"VirtualEthernet0/0/{shown}",
        "vhost-user",
        l2_address=a["mac_address"] if a["use_custom_mac"] else st.random_mac(),
        vhost=VhostUser(instance, sock, a["is_server"]),
        tag=a["tag"],
    )
    st.vhosts[instance] = itf
    st.vhost_by_socket[sock] = itf
    regions = env.vm_waiting(sock)
    if regions:
        st.vm_attach(itf, regions)
    return {"sw_if_index": itf.sw_if_index}


@handler("delete_vhost_user_if")
def delete_vhost_user_if(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """Disconnect the VM, delete the interface (and its sub-interfaces)."""
    st = env.state
    itf = st.get(a["sw_if_index"])
    if itf is not None and not itf.is_main:
        itf = st.get(itf.sup_sw_if_index)
    if itf is None or itf.vhost is None:
        return {"retval": e.INVALID_SW_IF_INDEX}
    vhost = itf.vhost
    if vhost.is_server and vhost.num_regions:
        env.served_socket_closed(vhost.sock_filename)
    st.set_link(itf, False)
    st.delete_interface(itf)
    del st.vhosts[vhost.instance]
    del st.vhost_by_socket[vhost.sock_filename]
    st.vhost_pool.put(vhost.instance)
    return {}


@handler("sw_interface_vhost_user_dump")
def sw_interface_vhost_user_dump(env: Env, client: int, a: dict[str, Any]) -> list[dict[str, Any]]:
    """Every vhost-user interface in instance order, or the one asked for."""
    st = env.state
    wanted = a["sw_if_index"]
    if wanted != NO_INDEX:
        itf = st.get(wanted)
        rows = [itf] if itf is not None and itf.vhost is not None else []
    else:
        rows = [st.vhosts[i] for i in sorted(st.vhosts)]
    out = []
    for itf in rows:
        vhost = itf.vhost
        assert vhost is not None
        connected = vhost.num_regions > 0
        out.append(
            {
                "sw_if_index": itf.sw_if_index,
                "interface_name": itf.name,
                "virtio_net_hdr_sz": 12 if connected else 0,
                "features_first_32": _FEATURES_FIRST_32 if connected else 0,
                "features_last_32": _FEATURES_LAST_32 if connected else 0,
                "is_server": vhost.is_server,
                "sock_filename": vhost.sock_filename,
                "num_regions": vhost.num_regions,
            }
        )
    return out
