"""Networks on a host: one bridge domain per network, joined to its physnet uplink.

Derived objects: a network's bridge domain and its uplink member (the physnet
interface itself for flat networks, a VLAN sub-interface that pops the tag for
VLAN networks) are made when the first port needs them and collected when the
last port leaves. The uplinks send and take their own encapsulation only
(guards and egress VLAN filters, ``isolation.py``).
"""

from __future__ import annotations

import dataclasses
import logging

from networking_vpp.agent.inventory import Inventory, NetObj
from networking_vpp.agent.reconcile.isolation import Isolation, subif_tag
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import L2_VTR_POP_1, VppAdapter, VppApiError
from networking_vpp.common import model

LOG = logging.getLogger(__name__)


class NetworkError(Exception):
    """A network this host cannot serve; the reason goes into the port's report."""


class NetworkInUse(NetworkError):
    """The uplink member a network needs carries another network (``owner``).

    Not for ever: once the owner lets it go (its last port leaves) the port
    that wanted it is tried again.
    """

    def __init__(self, message: str, owner: str, member: int) -> None:
        super().__init__(message)
        self.owner = owner
        self.member = member


class NetworkReconciler:
    """Creates, repairs and collects bridge domains and uplinks."""

    def __init__(
        self,
        vpp: VppAdapter,
        inventory: Inventory,
        physnets: dict[str, str],
        mac_age: int = 0,
        learn_limit: int | None = None,
    ) -> None:
        """``mac_age`` (minutes, 0: never) and ``learn_limit`` (None: VPP's
        default) bound MAC learning in the bridge domains made here."""
        self._vpp = vpp
        self._physnets = physnets
        self._mac_age = mac_age
        self._learn_limit = learn_limit
        self.isolation = Isolation(vpp, inventory)
        self.inv = inventory

    @property
    def inv(self) -> Inventory:
        """The inventory (a resync replaces it: the isolation's follows)."""
        return self._inv

    @inv.setter
    def inv(self, inventory: Inventory) -> None:
        self._inv = self.isolation.inv = inventory

    def uplink_for(self, binding: model.PortBinding) -> t.Interface:
        """The VPP interface that leads to the binding's physnet, or NetworkError."""
        name = self._physnets.get(binding.physnet)
        if name is None:
            raise NetworkError(f"physnet {binding.physnet!r} is not mapped on this host")
        itf = self.inv.interfaces_by_name.get(name)
        if itf is None:
            raise NetworkError(
                f"uplink interface {name!r} of physnet {binding.physnet!r} is not in VPP"
            )
        return itf

    def ensure(self, binding: model.PortBinding) -> NetObj:
        """Make the binding's network ready in VPP; returns it."""
        uplink = self.uplink_for(binding)
        vlan = binding.segmentation_id if binding.network_type == "vlan" else None
        member = self._ensure_uplink_member(uplink, vlan)
        net = self.inv.networks.get(binding.network_id)
        if net is None or net.uplink != member:
            # A new network, or one moving: the uplink member must be free.
            # (Not looked at when the network already holds it: that is every
            # port but a network's first, and the look is O(networks).)
            owner = self._network_using(member)
            if owner is not None and owner != binding.network_id:
                where = uplink.name if vlan is None else f"VLAN {vlan} on {uplink.name}"
                raise NetworkInUse(f"{where} already carries network {owner}", owner, member)
        if net is None:
            bd_id = self._create_bd(binding.network_id)
            net = NetObj(binding.network_id, bd_id, mac_age=self._mac_age)
            self.inv.networks[binding.network_id] = net
            LOG.info("Network %s: bridge domain %d", binding.network_id, bd_id)
        if net.uplink is not None and net.uplink != member:
            self._release_uplink(net)  # the network moved to another physnet or VLAN
        if net.mac_age != self._mac_age:
            # Made by an agent before MAC ageing, or under another setting
            self._vpp.set_mac_age(net.bd_id, self._mac_age, then=lambda: _aged(net, self._mac_age))
        if self.inv.bd_of.get(member) != net.bd_id:
            self._vpp.set_bridge(member, net.bd_id)
            self.inv.join(member, net.bd_id)
        net.uplink = member
        return net

    def _create_bd(self, network_id: str) -> int:
        bd_id = self._vpp.create_bridge_domain(
            self.inv.tags.mark(t.NETWORK_TAG + network_id), self._mac_age
        )
        if self._learn_limit is not None:
            # Set once, here: VPP keeps it for the bridge domain's life, and
            # no dump shows it (a restart cannot compare it).
            self._vpp.set_learn_limit(bd_id, self._learn_limit)
        return bd_id

    def adopt_legacy(self) -> None:
        """Tag an older agent's objects with our host id, once (at a resync).

        One ``sw_interface_tag_add_del`` per interface. VPP cannot re-tag a
        bridge domain, so an older agent's moves to a new one, tagged: its
        members join it (one call each; a member is out of its network for
        no longer than that call) and the old one goes. A crash in between
        leaves both, each adopted: the move then finishes.
        """
        for sw_if_index, body in self.inv.retag:
            self._vpp.set_tag(sw_if_index, self.inv.tags.mark(body))
        if self.inv.retag:
            LOG.info("Tagged %d interfaces of an older agent with our host id", len(self.inv.retag))
        self.inv.retag = []
        for network_id, old in sorted(self.inv.legacy_bds.items()):
            net = self.inv.networks[network_id]
            if net.bd_id == old:
                net.bd_id = self._create_bd(network_id)
                net.mac_age = self._mac_age
            for member in sorted(self.inv.bd_members.get(old, ())):
                self._vpp.set_bridge(member, net.bd_id)
                self.inv.join(member, net.bd_id)
            self._vpp.delete_bridge_domain(old)
            self.inv.bd_members.pop(old, None)
            LOG.info(
                "Network %s: bridge domain %d of an older agent moved to %d, tagged",
                network_id,
                old,
                net.bd_id,
            )
        self.inv.legacy_bds = {}

    def _ensure_uplink_member(self, uplink: t.Interface, vlan: int | None) -> int:
        if not uplink.admin_up:
            self._vpp.set_admin_up(uplink.sw_if_index, True)
            self.inv.interfaces_by_name[uplink.name] = _with_admin_up(uplink)
        self.isolation.uplink(uplink.sw_if_index)
        if vlan is None:
            return uplink.sw_if_index
        return self._ensure_subif(uplink, vlan)

    def _ensure_subif(self, uplink: t.Interface, vlan: int) -> int:
        sub = self.inv.subifs.get((uplink.sw_if_index, vlan))
        if sub is None:
            sub = self._adopt_untagged_subif(uplink.sw_if_index, vlan)
        if sub is None:
            tag = self.inv.tags.mark(subif_tag(vlan))
            sub = self._vpp.create_vlan_subif(uplink.sw_if_index, vlan)
            try:
                self._vpp.set_vlan_pop1(sub)
                self._vpp.set_efp_filter(sub)  # before it is up: nothing leaves unfiltered
                self._vpp.checkpoint()  # (in a batch: known to be on before the rest)
            except VppApiError:
                self._vpp.delete_subif(sub)  # made afresh when the port is retried
                raise
            self._vpp.set_admin_up(sub, True)
            # The tag last, for it says the filter is on: a crash before it
            # leaves an untagged sub-interface, which the next resync finishes
            # (_adopt_untagged_subif). Recorded once VPP says all is done (in a
            # batch, the calls go out without waiting).
            self._vpp.set_tag(sub, tag, then=lambda: self._record_subif(uplink, vlan, sub))
        else:
            self.isolation.vlan_subif(sub, vlan)
        return sub

    def _record_subif(self, uplink: t.Interface, vlan: int, sub: int) -> None:
        self.inv.subifs[(uplink.sw_if_index, vlan)] = sub
        self.inv.stray_subifs.discard(sub)

    def _adopt_untagged_subif(self, uplink: int, vlan: int) -> int | None:
        """An untagged sub-interface for this VLAN on the uplink (a crash
        between its create and its tag): finished and tagged, not made twice."""
        itf = self.inv.untagged_subifs.pop((uplink, vlan), None)
        if itf is None:
            return None
        sub = itf.sw_if_index
        # What _ensure_subif does after the create, in its order (the filter
        # before it is up), and the tag last: the filter is on.
        if itf.vtr_op != L2_VTR_POP_1:
            self._vpp.set_vlan_pop1(sub)
        self._vpp.set_efp_filter(sub)
        if not itf.admin_up:
            self._vpp.set_admin_up(sub, True)
        self._vpp.set_tag(sub, self.inv.tags.mark(subif_tag(vlan)))
        self.inv.subifs[(uplink, vlan)] = sub
        LOG.info("VLAN %d: adopted untagged sub-interface %s", vlan, itf.name)
        return sub

    def _network_using(self, member: int) -> str | None:
        for net in self.inv.networks.values():
            if net.uplink == member:
                return net.network_id
        return None

    def collect(self, network_id: str) -> None:
        """Remove the network's bridge domain and uplink if no port uses it any more."""
        net = self.inv.networks.get(network_id)
        if net is None or self.inv.network_users(network_id) > 0:
            return
        self._release_uplink(net)
        for member in list(self.inv.bd_members.get(net.bd_id, ())):
            self._vpp.unset_bridge(member)  # foreign members would block the delete
            self.inv.leave(member)
        self._vpp.delete_bridge_domain(net.bd_id)
        del self.inv.networks[network_id]
        self.inv.bd_members.pop(net.bd_id, None)
        LOG.info("Network %s: bridge domain %d collected", network_id, net.bd_id)

    def collect_strays(self) -> None:
        """Delete VLAN sub-interfaces of ours that no network uses (left by a crash)."""
        for sub in sorted(self.inv.stray_subifs):
            if self._network_using(sub) is None:
                self._delete_subif(sub)
        self.inv.stray_subifs.clear()

    def _release_uplink(self, net: NetObj) -> None:
        member, net.uplink = net.uplink, None
        if member is None:
            return
        if self.inv.bd_of.get(member) is not None:
            self._vpp.unset_bridge(member)
            self.inv.leave(member)
        main = member
        for (parent, _vlan), sub in self.inv.subifs.items():
            if sub == member:
                main = parent
        if member in self.inv.subifs.values():
            self._delete_subif(member)
        if main in self.inv.guards and not self._uplink_in_use(main):
            self.isolation.release_uplink(main)

    def _uplink_in_use(self, main: int) -> bool:
        members = {main} | {sub for (p, _v), sub in self.inv.subifs.items() if p == main}
        return any(net.uplink in members for net in self.inv.networks.values())

    def _delete_subif(self, sub: int) -> None:
        self._vpp.delete_subif(sub)
        for key, idx in list(self.inv.subifs.items()):
            if idx == sub:
                del self.inv.subifs[key]
        self.inv.unfiltered.discard(sub)


def _aged(net: NetObj, minutes: int) -> None:
    net.mac_age = minutes


def _with_admin_up(itf: t.Interface) -> t.Interface:
    return dataclasses.replace(itf, admin_up=True)
