"""Names derived from a port id: its vhost-user socket and its tap device.

One rule for both sides: the server puts these names in the binding (and in
Nova's vif_details), and the agent takes a binding only if it carries exactly
them. The agent's check matters because what a binding names, VPP acts on as
root: it unlinks whatever sits at a vhost-user socket path before binding it,
and attaches to any kernel device named as a tap (``eth0`` would bridge a host
NIC into a tenant network). A value that names anything else is refused.
"""

from __future__ import annotations

import os

from networking_vpp.common import model

# Linux interface names are at most 15 characters; Nova and Neutron's agents
# name a port's device <3-letter prefix><first 11 characters of the port id>.
ID_CHARS = 11


def vhostuser_socket(socket_dir: str, port_id: str) -> str:
    """``<dir>/vhu<port_id[:11]>``: the name OVS-DPDK deployments use too."""
    return os.path.join(socket_dir, "vhu" + port_id[:ID_CHARS])


def tap_ifname(port_id: str) -> str:
    """``tap<port_id[:11]>``: the name Nova and Neutron's agents give the kernel device."""
    return "tap" + port_id[:ID_CHARS]


def endpoint_problem(binding: model.PortBinding, socket_dir: str | None) -> str | None:
    """Why the binding's socket or device is not the one this host gives the port, or None.

    ``socket_dir`` is the agent's own vhost-user socket directory (None: none
    is configured, so no socket path can be right). Paths are compared after
    normalisation, so ``..`` cannot lead out of the directory and a trailing
    slash in either configuration does not matter.
    """
    if binding.vhostuser is not None:
        socket = binding.vhostuser.socket
        if socket_dir is None:
            return (
                f"vhost-user socket {socket!r} refused: this agent has no "
                "[vpp_agent] vhostuser_socket_dir"
            )
        expected = os.path.normpath(vhostuser_socket(socket_dir, binding.port_id))
        if not os.path.isabs(socket) or os.path.normpath(socket) != expected:
            return (
                f"vhost-user socket {socket!r} refused: this host's socket for the port "
                f"is {expected!r}"
            )
    if binding.tap is not None:
        expected = tap_ifname(binding.port_id)
        if binding.tap.ifname != expected:
            return f"tap device {binding.tap.ifname!r} refused: the port's device is {expected!r}"
    return None
