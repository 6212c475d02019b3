"""Tenant isolation on the wire: VLAN tags never carry a frame into another network.

A physnet's uplink carries a flat network untagged (the main interface) beside
VLAN networks (exact-match sub-interfaces that pop their tag). Left alone, VPP
lets a VM's own tags through: a frame a VM on VLAN 100 tags 7 leaves as 100/7,
which another host's exact-match sub-interface does not take, so the uplink's
main interface does - the flat network; a flat-network VM's frame tagged 100
lands in VLAN 100 everywhere (measured on VPP 26.06, real-vpp-facts #12).

**The decision: a VM's port is an access port**, as on ML2/OVS: a VM's tagged
frames (802.1Q, 802.1ad, 0x9100, priority-tagged VLAN 0, any stack) are
dropped at its port, whatever its network and port security. Each VM port has
a *guard*: a default sub-interface (``create_subif`` with DEFAULT, id 4095, a
reserved VLAN id) left admin down. ethernet-input gives every tagged frame no
other sub-interface takes to the default one, and a down sub-interface drops
what it is given (``src/vnet/ethernet/node.c``), so untagged frames alone reach
the bridge domain, on every host alike.

Behind that, the uplinks send and take their own encapsulation only:

* the main interface of a physnet in use has a guard too, so a frame from the
  wire whose tags no VLAN sub-interface of this host takes is dropped instead
  of entering the flat network (issue 16 item 2);
* egress VLAN filtering (``l2_interface_efp_filter``, ``l2_efp_filter.c``) on
  the main interface and on each VLAN sub-interface: a frame leaves only if its
  tags would bring it back in on that same interface - with the guard, untagged
  on the main interface, exactly the one VLAN tag on a sub-interface. (VPP counts
  three tags plus a pushed one as "four", which its filter lets pass: the port
  guards drop such frames first.)

VPP has no dump of the egress filter, so the agent remembers it in tags
(with the host's id, ``types.Tags``): an uplink guard tagged ``net-vpp.guard``
means the main interface's filter is on;
a VLAN sub-interface's tag ends in ``:efp`` once its filter is on. Objects of an
older agent (or of a crash between the calls) are finished at the next
reconcile; when nothing changed, nothing is called. Port guards need no tag:
a default sub-interface with id 4095 of one of our ports is one.

Where VLAN-aware ports and networks fit: a trunk port's subports become
exact-match sub-interfaces of the parent (popping their VLAN), which the
parent's guard leaves alone - frames with another VLAN are dropped, as on an
OVS trunk. A VLAN-transparent or QinQ network (when it comes) is the one place a
VM's tags are carried: its ports get no guard and its uplink member is a
non-exact (or 802.1ad) sub-interface, whose own filter passes the VM's tags
under the network's one. A flat network can never be transparent: its tags
would be other networks' on the wire.
"""

from __future__ import annotations

import logging

from networking_vpp.agent.inventory import Inventory
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter

LOG = logging.getLogger(__name__)


class Isolation:
    """Guards (default sub-interfaces) and egress filters on ports and uplinks."""

    def __init__(self, vpp: VppAdapter, inventory: Inventory) -> None:
        self._vpp = vpp
        self.inv = inventory

    def port(self, sw_if_index: int) -> None:
        """The port drops its VM's tagged frames (before it goes up)."""
        if sw_if_index not in self.inv.guards:
            # Recorded once VPP's reply is in: nothing behind it in the port's
            # batch needs the guard's index, so nothing waits for it.
            def made(guard: int) -> None:
                self.inv.guards[sw_if_index] = (guard, True)

            self._vpp.add_default_subif(sw_if_index, t.GUARD_SUB_ID, made)

    def uplink(self, uplink: int) -> None:
        """The physnet's main interface: a guard, and its egress filter on."""
        have = self.inv.guards.get(uplink)
        if have is not None and have[1]:
            return
        guard = have[0] if have else self._vpp.create_default_subif(uplink, t.GUARD_SUB_ID)
        self.inv.guards[uplink] = (guard, False)  # made; its filter not known to be on
        self._vpp.set_efp_filter(uplink)
        self._vpp.checkpoint()  # (in a batch: the filter known to be on before the tag)

        def tagged() -> None:
            self.inv.guards[uplink] = (guard, True)
            LOG.info("Uplink %d: guard %d and egress VLAN filter", uplink, guard)

        self._vpp.set_tag(guard, self.inv.tags.mark(t.GUARD_TAG), then=tagged)  # last

    def release_uplink(self, uplink: int) -> None:
        """No network uses the uplink any more: its guard goes (its main
        interface, back in L3 mode, takes no tagged frame anyway)."""
        have = self.inv.guards.pop(uplink, None)
        if have is not None:
            self._vpp.delete_subif(have[0])

    def vlan_subif(self, sub: int, vlan: int) -> None:
        """An uplink VLAN sub-interface: its egress filter on (once)."""
        if sub in self.inv.unfiltered:
            self._vpp.set_efp_filter(sub)
            self._vpp.checkpoint()  # (in a batch: the filter known to be on before the tag)
            self._vpp.set_tag(
                sub,
                self.inv.tags.mark(subif_tag(vlan)),
                then=lambda: self.inv.unfiltered.discard(sub),
            )


def subif_tag(vlan: int) -> str:
    """The tag body of an uplink VLAN sub-interface whose egress filter is on
    (its VPP tag: ``Tags.mark`` of it)."""
    return f"{t.UPLINK_TAG}{vlan}{t.EFP_MARK}"
