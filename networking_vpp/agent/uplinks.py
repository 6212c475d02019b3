"""Which physnets' uplink interfaces VPP has: what the host may advertise.

A physnet mapped in the agent's configuration is only of use once VPP has its
uplink interface, and real VPP creates the interfaces of its startup config
about 2 s after its API starts to serve (real-vpp-facts #4): an agent that
advertised its configuration would take ports it cannot connect. The set is
read from the resync's dump, then kept current from VPP's interface events (an
interface added while a physnet is missing, the deletion of an uplink), each
looked at with a one-interface dump; a full dump now and then, while a physnet
is missing, heals an event that went astray.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from networking_vpp.agent.inventory import Inventory
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter

LOG = logging.getLogger(__name__)


class Uplinks:
    """The configured physnets whose uplink interface exists in VPP."""

    def __init__(self, physnets: Mapping[str, str]) -> None:
        self._mapping = dict(physnets)  # physnet -> uplink interface name
        self._lock = threading.Lock()  # VPP's event thread and the worker
        self._present: dict[str, int] = {}  # physnet -> its uplink's sw_if_index
        self._candidates: set[int] = set()  # interfaces events asked us to look at

    # --- what the host advertises ----------------------------------------------------
    def advertised(self) -> dict[str, str]:
        """physnet -> uplink interface, for the physnets whose uplink VPP has."""
        with self._lock:
            return {name: self._mapping[name] for name in sorted(self._present)}

    def missing(self) -> bool:
        """Whether a configured physnet's uplink is not (yet) in VPP."""
        with self._lock:
            return len(self._present) < len(self._mapping)

    # --- inputs --------------------------------------------------------------------------
    def from_inventory(self, inventory: Inventory) -> set[str]:
        """Take what a resync's dump found; returns the physnets that appeared."""
        before = set(self._present)
        present = {
            name: inventory.interfaces_by_name[itf].sw_if_index
            for name, itf in self._mapping.items()
            if itf in inventory.interfaces_by_name
        }
        with self._lock:
            # Candidates stay: an event that came after the dump was read names
            # an interface the dump did not see.
            self._present = present
        return set(present) - before

    def on_event(self, event: t.InterfaceEvent) -> bool:
        """An interface event that is not a port's (VPP's event thread): whether
        :meth:`check` has something to look at."""
        with self._lock:
            ours = event.sw_if_index in self._present.values()
            if (event.deleted and ours) or (
                not event.deleted and not ours and len(self._present) < len(self._mapping)
            ):
                self._candidates.add(event.sw_if_index)
                return True
            return False

    def check(self, vpp: VppAdapter, inventory: Inventory) -> set[str]:
        """Look at the interfaces events named; returns the physnets that appeared.

        The inventory learns an appeared uplink (the networks' reconciler finds
        uplinks there) and forgets a vanished one.
        """
        with self._lock:
            candidates, self._candidates = self._candidates, set()
        appeared: set[str] = set()
        for index in sorted(candidates):
            itf = vpp.get_interface(index)
            appeared |= self._update(index, itf, inventory)
        return appeared

    def refresh(self, vpp: VppAdapter, inventory: Inventory) -> set[str]:
        """A full dump (the periodic safety net); returns the physnets that appeared."""
        found = {itf.name: itf for itf in vpp.dump_interfaces()}
        appeared: set[str] = set()
        for name, itf_name in self._mapping.items():
            itf = found.get(itf_name)
            with self._lock:
                index = self._present.get(name)
            if itf is not None:
                appeared |= self._update(itf.sw_if_index, itf, inventory)
            elif index is not None:
                appeared |= self._update(index, None, inventory)
        return appeared

    def _update(self, index: int, itf: t.Interface | None, inventory: Inventory) -> set[str]:
        """Apply what VPP said of interface ``index`` (None: there is none)."""
        appeared: set[str] = set()
        with self._lock:
            for name, itf_name in self._mapping.items():
                if self._present.get(name) == index and (itf is None or itf.name != itf_name):
                    del self._present[name]
                    inventory.interfaces_by_name.pop(itf_name, None)
                    LOG.warning("Uplink %s of physnet %s is gone from VPP", itf_name, name)
                elif itf is not None and itf.name == itf_name and name not in self._present:
                    self._present[name] = index
                    inventory.interfaces_by_name[itf_name] = itf
                    appeared.add(name)
                    LOG.info("Uplink %s of physnet %s is in VPP now", itf_name, name)
        return appeared
