"""What a port binding looks like: vif_type, vif_details, and the etcd value.

Pure functions over Neutron's dicts (port, segment, network), so they are tested
without a database and shared by bind_port and the journal writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from neutron_lib.utils import net as net_utils

from networking_vpp.common import model
from networking_vpp.common.portnames import tap_ifname, vhostuser_socket

SUPPORTED_NETWORK_TYPES = (n_const.TYPE_FLAT, n_const.TYPE_VLAN)
VIF_TYPES = (portbindings.VIF_TYPE_VHOST_USER, portbindings.VIF_TYPE_TAP)


class UnservablePort(ValueError):
    """The port, as Neutron holds it, cannot be expressed as a valid binding value."""


@dataclass(frozen=True)
class VifPolicy:
    """How ports become vif types, from the [ml2_vpp] options."""

    socket_dir: str
    vpp_vhostuser_role: str = "client"  # VPP's side of the socket (QEMU serves it)
    tap_device_owner_prefixes: tuple[str, ...] = (n_const.DEVICE_OWNER_NETWORK_PREFIX,)
    tap_hosts: frozenset[str] = frozenset()
    default_vif_type: str = portbindings.VIF_TYPE_VHOST_USER

    @classmethod
    def from_conf(cls, group: Any) -> VifPolicy:
        """Build from ``cfg.CONF.ml2_vpp``."""
        return cls(
            socket_dir=group.vhostuser_socket_dir,
            vpp_vhostuser_role=group.vpp_vhostuser_role,
            tap_device_owner_prefixes=tuple(p for p in group.tap_device_owner_prefixes if p),
            tap_hosts=frozenset(group.tap_hosts),
            default_vif_type=group.default_vif_type,
        )

    def vif_type(self, port: Mapping[str, Any], host: str) -> str:
        """'tap' for DHCP/router-like owners and tap hosts, else the default."""
        owner = port.get("device_owner") or ""
        if any(owner.startswith(prefix) for prefix in self.tap_device_owner_prefixes):
            return portbindings.VIF_TYPE_TAP
        if host in self.tap_hosts:
            return portbindings.VIF_TYPE_TAP
        return self.default_vif_type

    def vif_details(self, vif_type: str, port_id: str) -> dict[str, Any]:
        """The vif_details Nova (os-vif) reads for this binding."""
        details: dict[str, Any] = {
            # The vpp-agent enforces security groups and anti-spoofing itself
            # (VPP ACLs): the hypervisor must not filter. A capability of the
            # binding, as with OVS: a port-security change does not rebind, so
            # a per-port value would go stale.
            portbindings.CAP_PORT_FILTER: True,
            portbindings.VIF_DETAILS_CONNECTIVITY: portbindings.CONNECTIVITY_L2,
        }
        if vif_type == portbindings.VIF_TYPE_VHOST_USER:
            # vhostuser_mode is QEMU's role on the socket, the opposite of VPP's.
            qemu_role = (
                portbindings.VHOST_USER_MODE_CLIENT
                if self.vpp_vhostuser_role == "server"
                else portbindings.VHOST_USER_MODE_SERVER
            )
            details.update(
                {
                    portbindings.VHOST_USER_MODE: qemu_role,
                    portbindings.VHOST_USER_SOCKET: vhostuser_socket(self.socket_dir, port_id),
                    portbindings.VHOST_USER_OVS_PLUG: False,
                }
            )
        return details


def segment_problem(segment: Mapping[str, Any]) -> str | None:
    """Why we cannot serve ``segment``, or None."""
    network_type = segment.get("network_type")
    if network_type not in SUPPORTED_NETWORK_TYPES:
        return f"network type {network_type!r} is not supported (only flat and vlan)"
    if not segment.get("physical_network"):
        return f"{network_type} segment {segment.get('id')} has no physical network"
    return None


def port_filtered(port: Mapping[str, Any]) -> bool:
    """Should the agent filter the port (security groups, anti-spoofing)?

    Neutron never filters a trusted port (``is_port_trusted``: a ``network:*``
    owner such as DHCP or a router), with or without the port_security
    extension: ML2/OVS's agents get no security-group info for such ports
    (securitygroups_rpc skips them), and OVN leaves them out of its drop port
    group and gives them no port security addresses (ovn_client's
    ``is_lsp_trusted``). The extension only sets ``port_security_enabled`` False
    for a port created trusted, not for one whose owner changes later, so trust
    is checked here and not left to the flag. Without the extension the flag is
    absent, and Neutron applies security groups: "enabled".
    """
    if port.get("device_owner") and net_utils.is_port_trusted(port):
        return False
    return bool(port.get("port_security_enabled", True))


def _vpp_role(vif_details: Mapping[str, Any], default: str) -> Literal["server", "client"]:
    """VPP's side of the socket: the opposite of the QEMU role the port was bound with.

    Nova configured QEMU from these vif_details, so a port bound before the
    configured role changed keeps its role until it is bound again; only a
    binding whose details name no role takes ``default``.
    """
    qemu = vif_details.get(portbindings.VHOST_USER_MODE)
    if qemu == portbindings.VHOST_USER_MODE_CLIENT:
        return "server"
    if qemu == portbindings.VHOST_USER_MODE_SERVER:
        return "client"
    return "server" if default == "server" else "client"


def port_value(
    port: Mapping[str, Any],
    segment: Mapping[str, Any],
    network_mtu: int,
    vif_type: str,
    vif_details: Mapping[str, Any],
    binding_id: str,
    vpp_vhostuser_role: str,
) -> model.PortBinding:
    """The ``/nodes/<host>/ports/<id>`` value for a bound port.

    Raises :class:`UnservablePort` (with the reason) when Neutron's data cannot
    make a valid value, so that the Neutron request fails instead of the agent
    receiving something it must reject.
    """
    port_id = port["id"]
    network_type = segment.get("network_type")
    vhostuser = tap = None
    if vif_type == portbindings.VIF_TYPE_VHOST_USER:
        socket = vif_details.get(portbindings.VHOST_USER_SOCKET)
        if not socket:
            raise UnservablePort(f"port {port_id}: vhost-user binding without a socket path")
        vhostuser = model.VhostUser(socket=socket, mode=_vpp_role(vif_details, vpp_vhostuser_role))
    elif vif_type == portbindings.VIF_TYPE_TAP:
        tap = model.Tap(ifname=tap_ifname(port_id))
    else:
        raise UnservablePort(f"port {port_id}: vif_type {vif_type!r} is not ours")
    if network_type not in SUPPORTED_NETWORK_TYPES:
        raise UnservablePort(f"port {port_id}: network type {network_type!r} not supported")

    value = model.PortBinding(
        port_id=port_id,
        binding_id=binding_id,
        network_id=port["network_id"],
        mac_address=(port.get("mac_address") or "").lower(),
        mtu=int(network_mtu or 0),
        network_type=network_type,  # type: ignore[arg-type]
        physnet=segment.get("physical_network") or "",
        segmentation_id=(
            segment.get("segmentation_id") if network_type == n_const.TYPE_VLAN else None
        ),
        binding_type=vif_type,  # type: ignore[arg-type]
        vhostuser=vhostuser,
        tap=tap,
        fixed_ips=tuple(
            model.FixedIp(ip_address=ip["ip_address"], subnet_id=ip.get("subnet_id") or "")
            for ip in port.get("fixed_ips") or ()
        ),
        security_groups=tuple(sorted(port.get("security_groups") or ())),
        allowed_address_pairs=tuple(
            model.AddressPair(
                ip_address=pair["ip_address"],
                mac_address=(pair.get("mac_address") or "").lower() or None,
            )
            for pair in port.get("allowed_address_pairs") or ()
        ),
        port_security_enabled=port_filtered(port),
        device_owner=port.get("device_owner") or "",
        device_id=port.get("device_id") or "",
        admin_state_up=bool(port.get("admin_state_up", True)),
    )
    problem = value.check()
    if problem:
        raise UnservablePort(f"port {port_id}: {problem}")
    return value
