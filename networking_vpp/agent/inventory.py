"""What the agent knows it has programmed in VPP: the "actual" side of reconcile.

Built from VPP's dumps when the agent (re)connects, using the tags on VPP
objects as the agent's memory across restarts; afterwards kept current by the
reconcilers as they make changes, so steady-state work needs no dumps.
"""

from __future__ import annotations

import dataclasses
import logging

from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import RX_MODE_POLLING, VppAdapter

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class PortObj:
    """A port's interface in VPP."""

    port_id: str
    sw_if_index: int
    name: str
    kind: str  # "vhostuser" or "tap"
    endpoint: str  # vhost-user socket path, or the kernel interface name
    is_server: bool
    mac_address: str = ""
    mtu: int = 0  # 0: not known (set on the next converge)
    admin_up: bool = False
    link_up: bool = False
    #: the mode of its receive queues (vhost-user): those a VM starts later
    #: come in polling mode, VPP's vring default, unless set since
    rx_mode: int = RX_MODE_POLLING
    #: VPP's link events applied to it: a dump older than one of them must not
    #: undo what it said (PortReconciler._read_back)
    link_seq: int = dataclasses.field(default=0, compare=False)


@dataclasses.dataclass
class NetObj:
    """A network's bridge domain in VPP and the uplink member that leads out."""

    network_id: str
    bd_id: int
    uplink: int | None = None  # sw_if_index of the uplink or its VLAN sub-interface
    mac_age: int = 0  # its bridge domain's, in minutes (0: learnt MACs never age)


class Inventory:
    """Our objects in one VPP, indexed the ways reconcile needs them.

    "Ours": tagged with our host id (``t.Tags``). Objects of another host's
    agent (two agents pointed at one VPP by mistake) are never adopted, so
    never changed nor removed; their host ids are in ``foreign``. Objects of
    an older agent (tags without a host id) are adopted, and re-tagged once
    (``retag``, ``legacy_bds``). Objects a crash left untagged between their
    create and their tag (af_packet interfaces and VLAN sub-interfaces, whose
    creates take no tag) are kept aside and adopted when a port or network
    needs exactly them (``untagged_taps``, ``untagged_subifs``).
    """

    def __init__(self, tags: t.Tags) -> None:
        self.tags = tags
        self.ports: dict[str, PortObj] = {}
        self.networks: dict[str, NetObj] = {}
        self.port_by_index: dict[int, str] = {}
        self.bd_of: dict[int, int] = {}  # sw_if_index -> bd_id it is a member of
        self.bd_members: dict[int, set[int]] = {}  # bd_id -> member sw_if_indexes
        self.subifs: dict[tuple[int, int], int] = {}  # (parent, vlan) -> our sub-interface
        self.interfaces_by_name: dict[str, t.Interface] = {}
        #: parent (an uplink or one of our ports) -> (its guard, finished):
        #: default sub-interfaces that drop stray tags (reconcile/isolation.py)
        self.guards: dict[int, tuple[int, bool]] = {}
        #: our uplink sub-interfaces whose egress VLAN filter is not known to be on
        self.unfiltered: set[int] = set()
        #: our objects VPP has that nothing accounts for (to be deleted)
        self.stray_subifs: set[int] = set()
        self.stray_ports: list[PortObj] = []
        #: host ids of other agents whose objects this VPP holds (left alone)
        self.foreign: set[str] = set()
        #: interfaces of an older agent's: (sw_if_index, tag body) to tag with our id
        self.retag: list[tuple[int, str]] = []
        #: bridge domains of an older agent's: network id -> bd_id (VPP cannot
        #: re-tag a bridge domain: NetworkReconciler.adopt_legacy moves it)
        self.legacy_bds: dict[str, int] = {}
        #: untagged af_packet interfaces: host interface name -> interface
        self.untagged_taps: dict[str, t.Interface] = {}
        #: untagged VLAN sub-interfaces: (parent, vlan) -> sub-interface
        self.untagged_subifs: dict[tuple[int, int], t.Interface] = {}

    # --- bookkeeping used by the reconcilers -------------------------------------
    def add_port(self, port: PortObj) -> None:
        """Record a port interface."""
        self.ports[port.port_id] = port
        self.port_by_index[port.sw_if_index] = port.port_id

    def remove_port(self, port_id: str) -> PortObj | None:
        """Forget a port interface."""
        port = self.ports.pop(port_id, None)
        if port is not None:
            self.port_by_index.pop(port.sw_if_index, None)
            self.leave(port.sw_if_index)
            self.guards.pop(port.sw_if_index, None)  # VPP deletes it with the port
        return port

    def join(self, sw_if_index: int, bd_id: int) -> None:
        """Record that an interface is now a member of a bridge domain."""
        self.leave(sw_if_index)
        self.bd_of[sw_if_index] = bd_id
        self.bd_members.setdefault(bd_id, set()).add(sw_if_index)

    def leave(self, sw_if_index: int) -> None:
        """Record that an interface left its bridge domain."""
        bd_id = self.bd_of.pop(sw_if_index, None)
        if bd_id is not None:
            self.bd_members.get(bd_id, set()).discard(sw_if_index)

    def network_users(self, network_id: str) -> int:
        """How many of our ports sit in the network's bridge domain."""
        net = self.networks.get(network_id)
        if net is None:
            return 0
        members = self.bd_members.get(net.bd_id, set())
        return len(members) - (1 if net.uplink in members else 0)

    def adopt_untagged_tap(self, vpp: VppAdapter, port_id: str, ifname: str) -> bool:
        """Take an untagged af_packet interface on the port's tap device as the
        port's (a crash between its create and its tag): tagged now, so it is
        neither made twice nor left behind. Whether there was one."""
        itf = self.untagged_taps.pop(ifname, None)
        if itf is None or port_id in self.ports:
            return False
        vpp.set_tag(itf.sw_if_index, self.tags.mark(t.PORT_TAG + port_id))
        port = _port_of(itf, port_id, "tap", ifname, is_server=False)
        self.add_port(port)
        LOG.info("Port %s: adopted untagged af_packet interface %s", port_id, itf.name)
        return True

    # --- building from VPP ----------------------------------------------------------
    @classmethod
    def from_vpp(cls, vpp: VppAdapter, tags: t.Tags) -> Inventory:
        """Read VPP's state and adopt every object that carries one of our tags."""
        inv = cls(tags)
        interfaces = vpp.dump_interfaces()
        vhost = {v.sw_if_index: v for v in vpp.dump_vhost_user()}
        afp = {a.sw_if_index: a for a in vpp.dump_af_packet()}
        bds = vpp.dump_bridge_domains()
        rx_modes = vpp.dump_rx_modes() if vhost else {}
        guards = []
        for itf in interfaces:
            inv.interfaces_by_name[itf.name] = itf
            body = inv._body(itf.tag, itf.sw_if_index)
            if body is None:
                if not itf.tag:
                    inv._untagged(itf, afp.get(itf.sw_if_index))
                continue
            if body.startswith(t.PORT_TAG):
                inv._adopt_port(itf, body, vhost.get(itf.sw_if_index), afp.get(itf.sw_if_index))
                port_id = inv.port_by_index.get(itf.sw_if_index)
                modes = rx_modes.get(itf.sw_if_index)
                if port_id is not None and modes:
                    # Queues in different modes (set one by one): none of them
                    # is known to be right, so the mode is set again.
                    inv.ports[port_id].rx_mode = next(iter(modes)) if len(modes) == 1 else 0
            elif body.startswith(t.UPLINK_TAG) and itf.sup_sw_if_index != itf.sw_if_index:
                inv.subifs[(itf.sup_sw_if_index, itf.vlan)] = itf.sw_if_index
                if not body.endswith(t.EFP_MARK):
                    inv.unfiltered.add(itf.sw_if_index)  # tagged anew with its filter
                    inv.retag = [r for r in inv.retag if r[0] != itf.sw_if_index]
            elif body == t.GUARD_TAG and itf.is_guard:
                guards.append(itf)
        for itf in guards + [i for i in interfaces if i.is_guard and not i.tag]:
            # (after the ports: a port's guard may come first.) Port guards are
            # untagged: a default sub-interface 4095 of one of our ports is one.
            parent = itf.sup_sw_if_index
            done = bool(itf.tag) or parent in inv.port_by_index
            inv.guards[parent] = (itf.sw_if_index, done)
        ours: dict[int, str] = {}  # bd_id -> network id
        for bd in bds:
            body = inv._body(bd.tag)
            if body is None or not body.startswith(t.NETWORK_TAG):
                continue
            network_id = body[len(t.NETWORK_TAG) :]
            ours[bd.bd_id] = network_id
            if t.parse_tag(bd.tag) == (body, None):
                inv.legacy_bds[network_id] = bd.bd_id
        for bd in bds:
            net_id = ours.get(bd.bd_id)
            if net_id is None:
                continue
            if net_id in inv.networks and inv.legacy_bds.get(net_id) == bd.bd_id:
                continue  # a tagged one too (a crash while moving): that one is it
            net = NetObj(net_id, bd.bd_id, mac_age=bd.mac_age)
            uplinks = [m for m in bd.members if m not in inv.port_by_index]
            net.uplink = uplinks[0] if uplinks else None
            inv.networks[net_id] = net
        used = {n.uplink for n in inv.networks.values()}
        inv.stray_subifs = {idx for idx in inv.subifs.values() if idx not in used}
        # Only membership of our bridge domains is tracked: our ports found in a
        # foreign one get moved by reconcile; foreign interfaces are not ours.
        for bd in bds:
            if bd.bd_id in ours:
                for member in bd.members:
                    inv.join(member, bd.bd_id)
        LOG.info(
            "VPP holds %d of our ports, %d networks, %d uplink sub-interfaces",
            len(inv.ports),
            len(inv.networks),
            len(inv.subifs),
        )
        return inv

    def _body(self, tag: str, sw_if_index: int | None = None) -> str | None:
        """The body of a tag of ours (an older agent's too: its interfaces are
        queued for re-tagging); None for another host's, or not a tag of ours."""
        parsed = t.parse_tag(tag)
        if parsed is None:
            return None
        body, owner = parsed
        if owner is None:
            if sw_if_index is not None:
                self.retag.append((sw_if_index, body))
            return body
        if owner != self.tags.host_id:
            self.foreign.add(owner)
            return None
        return body

    def _untagged(self, itf: t.Interface, afp: t.AfPacket | None) -> None:
        """Keep an untagged interface that may be ours, left by a crash between
        its create and its tag, for the port or network that needs it."""
        if afp is not None:
            self.untagged_taps[afp.host_if_name] = itf
        elif (
            itf.sup_sw_if_index != itf.sw_if_index
            and not itf.is_guard
            and itf.vlan
            and itf.sub_id == itf.vlan  # as create_vlan_subif makes them
        ):
            self.untagged_subifs[(itf.sup_sw_if_index, itf.vlan)] = itf

    def _adopt_port(
        self, itf: t.Interface, body: str, vhost: t.VhostUser | None, afp: t.AfPacket | None
    ) -> None:
        port_id = body[len(t.PORT_TAG) :]
        if vhost is not None:
            kind, endpoint, is_server = "vhostuser", vhost.sock_filename, vhost.is_server
        elif afp is not None:
            kind, endpoint, is_server = "tap", afp.host_if_name, False
        else:
            LOG.warning(
                "Interface %s carries tag %s but is neither vhost-user nor af_packet",
                itf.name,
                itf.tag,
            )
            return
        port = _port_of(itf, port_id, kind, endpoint, is_server)
        if port_id in self.ports:
            LOG.warning("Two interfaces carry tag %s; %s will be removed", itf.tag, itf.name)
            self.stray_ports.append(port)
            return
        self.add_port(port)


def _port_of(itf: t.Interface, port_id: str, kind: str, endpoint: str, is_server: bool) -> PortObj:
    """A port found in VPP: what the interface dump says of it."""
    return PortObj(
        port_id=port_id,
        sw_if_index=itf.sw_if_index,
        name=itf.name,
        kind=kind,
        endpoint=endpoint,
        is_server=is_server,
        mac_address=itf.mac_address,
        mtu=itf.mtu,
        admin_up=itf.admin_up,
        link_up=itf.link_up,
    )
