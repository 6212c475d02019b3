"""Addresses that change with no port precommit: what copies them is rewritten before commit.

An IPv6 auto-address (SLAAC, DHCPv6-stateless) subnet created on a network
gives every port of it an address, each in a short transaction of its own
(Neutron's ``add_auto_addrs_on_network_ports``) that reaches no mechanism
driver; Neutron's empty ``update_port`` for each port comes later, in another
transaction. The port's member values (remote groups) and binding value (the
agent's MACIP anti-spoofing) must change in the transaction that changes the
addresses, so this stage of the commit hooks (:mod:`.commit_hooks`) runs for
every port whose ``ipallocations`` rows a transaction added or deleted, and
rewrites both from the database. Where a precommit journaled the change already
(a port update), it finds nothing to write.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2

from networking_vpp.common import keys, model
from networking_vpp.server.journal import api as journal
from networking_vpp.server.journal.commit_hooks import CommitHooks
from networking_vpp.server.journal.destinations import DestinationJournal
from networking_vpp.server.journal.ports import PortJournal, lock_binding
from networking_vpp.server.secgroups.journal import SecGroupJournal

LOG = logging.getLogger(__name__)

STAGE = "addresses"


class AddressJournal:
    """Member and binding values of ports whose addresses changed in a transaction."""

    def __init__(
        self, keyspace: keys.KeySpace, ports: PortJournal, secgroups: SecGroupJournal
    ) -> None:
        self._keys = keyspace
        self._ports = ports
        self._secgroups = secgroups

    def hook(self, hooks: CommitHooks) -> None:
        """Run before commit wherever a port's address allocations change (before
        the destinations' stage, which copies the binding value)."""
        hooks.add(STAGE, (models_v2.IPAllocation,), self.changed)

    @staticmethod
    def covered(session: Any, port_id: str) -> None:
        """The port's precommit journaled its addresses: nothing to redo at commit."""
        CommitHooks.covered(session, STAGE, [port_id])

    def changed(self, session: Any, port_ids: list[str]) -> bool:
        """The commit hook's stage; whether it journaled rows."""
        # Member rows before binding rows: the precommits' lock order.
        wrote = self._secgroups.addresses_changed(session, port_ids)
        rewritten = [port_id for port_id in port_ids if self._binding(session, port_id)]
        if rewritten:
            DestinationJournal.note(session, rewritten)
        return wrote or bool(rewritten)

    def _binding(self, session: Any, port_id: str) -> bool:
        """Rewrite the bound port's fixed IPs from its allocations; whether it did."""
        row = lock_binding(session, port_id)
        if row is None:
            return False
        ips = models_v2.IPAllocation
        now = [
            model.FixedIp(ip_address=r.ip_address, subnet_id=r.subnet_id or "")
            for r in session.execute(
                sa.select(ips.ip_address, ips.subnet_id)
                .where(ips.port_id == port_id)
                .order_by(ips.ip_address, ips.subnet_id)  # as Neutron's port dict lists them
            )
        ]
        key = self._keys.port(row.host, port_id)
        old = model.decode(model.PortBinding, key, row.value)
        if set(now) == set(old.fixed_ips):
            return False  # a precommit wrote it already (its order is the port dict's)
        value = self._ports.encode_value(row.host, model.replace(old, fixed_ips=tuple(now)))
        row.value = value
        journal.record(session, key, value)
        LOG.info("journal: port %s on %s: addresses changed with no port update", port_id, row.host)
        return True
