"""The ``vpp`` ML2 mechanism driver: binds ports and journals them for etcd.

No Neutron agents and no RPC: a host can take a port when its vpp-agent is alive
in etcd and reports the segment's physnet (read from an in-memory cache, see
:mod:`networking_vpp.server.hosts`). Precommits append journal rows in
Neutron's own transaction; postcommits only wake the forwarder, which copies
the rows to etcd (:mod:`networking_vpp.server.journal.forwarder`). Security
groups, their rules and every port's remote-group memberships are journaled
the same way (:mod:`networking_vpp.server.secgroups`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from neutron.db import provisioning_blocks
from neutron_lib import constants as n_const
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import events, priority_group, registry, resources
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg

from networking_vpp.common import keys
from networking_vpp.server import binding, routers
from networking_vpp.server import config as server_config
from networking_vpp.server.hosts import HostCache
from networking_vpp.server.journal.addresses import AddressJournal
from networking_vpp.server.journal.commit_hooks import CommitHooks
from networking_vpp.server.journal.destinations import DestinationJournal
from networking_vpp.server.journal.ports import DRIVER_NAME, PortJournal
from networking_vpp.server.secgroups.journal import SecGroupJournal

LOG = logging.getLogger(__name__)

# Router ports ML2 binds per host (distributed bindings): declined, see server/routers.py.
_DISTRIBUTED_OWNERS = {
    n_const.DEVICE_OWNER_DVR_INTERFACE: "distributed (DVR)",
    n_const.DEVICE_OWNER_HA_REPLICATED_INT: "HA (replicated interface)",
}

# The L2 agent's, as ML2/OVS: ML2 tells Nova about ports it completes during a
# legacy live migration (migrating_to) only for this entity. See server/state.py.
PROVISIONING_ENTITY = provisioning_blocks.L2_AGENT_ENTITY
AGENT_TYPE = "VPP agent"


class VppMechanismDriver(api.MechanismDriver):
    """Binds normal ports on flat/VLAN segments to hosts running a live vpp-agent."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: HostCache = HostCache()
        self.services: Any = None  # ServerServices, once started in an API worker
        self.secgroups: SecGroupJournal | None = None
        self._pending = threading.local()  # precommit wrote rows -> postcommit kicks

    # --- lifecycle --------------------------------------------------------------
    def initialize(self) -> None:
        """Read options and subscribe to the per-worker start-up event."""
        server_config.register_opts(cfg.CONF)
        group = cfg.CONF.ml2_vpp
        self.keys = keys.KeySpace(cfg.CONF.etcd.prefix)
        self.hosts = HostCache(self.keys)
        self.policy = binding.VifPolicy.from_conf(group)
        self.journal = PortJournal(self.keys, group.vpp_vhostuser_role)
        if self.secgroups is not None:
            self.secgroups.unsubscribe()
        self.secgroups = SecGroupJournal(self.keys, self._mark_pending, self._kick_if_pending)
        self.secgroups.subscribe()
        # Changes that reach no precommit (auto-addresses, Nova's inactive bindings)
        # are journaled just before their transaction commits, in this order.
        self.commit_hooks = CommitHooks(kick=self._kick)
        AddressJournal(self.keys, self.journal, self.secgroups).hook(self.commit_hooks)
        self.destinations = DestinationJournal(self.keys, self.policy, lambda: self.hosts)
        self.destinations.hook(self.commit_hooks)
        self.commit_hooks.listen()
        registry.subscribe(self._after_init, resources.PROCESS, events.AFTER_INIT)
        routers.subscribe()  # distributed (DVR) routers refused at the API
        # After the security group journal's callback of the same event (default
        # priority), so a port's member rows are locked before its binding row, as
        # in the port precommits; its SUBNET AFTER_DELETE callback kicks the forwarder.
        registry.subscribe(
            self._subnet_deleting,
            resources.SUBNET,
            events.PRECOMMIT_DELETE_ASSOCIATIONS,
            priority=priority_group.PRIORITY_DEFAULT + 1,
        )
        LOG.info("vpp mechanism driver initialised (etcd prefix %s)", self.keys.prefix)

    def _after_init(self, resource: str, event: str, trigger: Any, payload: Any = None) -> None:
        """Start etcd-facing threads in API and RPC workers (not in periodic workers).

        RPC workers (``neutron-rpc-server``) bind ports too: the DHCP and L3
        agents create and update their ports over RPC, so those workers need
        the host cache and must kick the forwarder after their journal rows.
        """
        from neutron.api import wsgi  # late: importing it at load time pulls in the API stack

        if not cfg.CONF.ml2_vpp.start_services:
            return
        if trigger is not wsgi.WorkerService and not _is_rpc_worker(trigger):
            return
        if self.services is not None:
            return
        from networking_vpp.server.services import ServerServices

        self.services = ServerServices(cfg.CONF, self.keys, self.hosts)
        self.services.start()

    @property
    def connectivity(self) -> str:
        """VPP forwards L2 frames for the ports it binds."""
        return portbindings.CONNECTIVITY_L2

    # --- binding ----------------------------------------------------------------
    def bind_port(self, context: api.PortContext) -> None:
        """Bind to the first flat/VLAN segment whose physnet the host's live agent serves."""
        port = context.current
        port_id = port["id"]
        host = context.host
        # None: a binding created without a vnic_type (ML2 stores 'normal' for it).
        vnic_type = port.get(portbindings.VNIC_TYPE) or portbindings.VNIC_NORMAL
        if vnic_type != portbindings.VNIC_NORMAL:
            LOG.info(
                "vpp: not binding port %s on %s: vnic_type %r is not 'normal'",
                port_id,
                host,
                vnic_type,
            )
            return
        if port.get("device_owner") in _DISTRIBUTED_OWNERS:
            # One port bound on every host of the router, but one etcd key per
            # port in our journal: each host's binding would delete the last.
            LOG.info(
                "vpp: not binding port %s on %s: it is a %s router port, "
                "and networking-vpp serves routers centrally only (server/routers.py)",
                port_id,
                host,
                _DISTRIBUTED_OWNERS[port["device_owner"]],
            )
            return
        if not self.hosts.is_alive(host) and not self.hosts.loaded:
            # A worker just started has not read the agents' states yet: failing
            # now would fail the first binds after every neutron-server restart.
            self.hosts.wait_loaded(cfg.CONF.ml2_vpp.bind_wait_for_hosts)
        if not self.hosts.is_alive(host):
            LOG.warning(
                "vpp: not binding port %s on %s: no live vpp-agent on that host%s",
                port_id,
                host,
                ""
                if self.hosts.loaded
                else " (this API worker has not read the agents' states from etcd yet)",
            )
            return
        served = self.hosts.physnets(host)
        vif_type = self.policy.vif_type(port, host)
        details = self.policy.vif_details(vif_type, port_id)
        mtu = context.network.current.get("mtu")
        reasons = []
        for segment in context.segments_to_bind:
            problem = binding.segment_problem(segment)
            if problem is None and segment[api.PHYSICAL_NETWORK] not in served:
                problem = (
                    f"physnet {segment[api.PHYSICAL_NETWORK]!r} is not served by "
                    f"the host (it serves {sorted(served) or 'none'})"
                )
            if problem is None:
                try:  # the value the journal will write must be valid: check it now
                    binding.port_value(
                        port,
                        segment,
                        mtu,
                        vif_type,
                        details,
                        str(uuid.uuid4()),
                        self.policy.vpp_vhostuser_role,
                    )
                except binding.UnservablePort as exc:
                    problem = str(exc)
            if problem is not None:
                reasons.append(f"segment {segment[api.ID]}: {problem}")
                continue
            context.set_binding(segment[api.ID], vif_type, details)
            LOG.info(
                "vpp: bound port %s on %s to %s segment %s (%s)",
                port_id,
                host,
                segment[api.NETWORK_TYPE],
                segment[api.ID],
                vif_type,
            )
            return
        LOG.info(
            "vpp: not binding port %s on %s: %s",
            port_id,
            host,
            "; ".join(reasons) or "no segment to bind",
        )

    def check_segment_for_agent(self, segment: dict[str, Any], agent: dict[str, Any]) -> bool:
        """Segment-host mapping (routed networks): can this VPP agent serve ``segment``?"""
        if agent.get("agent_type") != AGENT_TYPE or binding.segment_problem(segment):
            return False
        mappings = (agent.get("configurations") or {}).get("interface_mappings") or {}
        return segment[api.PHYSICAL_NETWORK] in mappings

    # --- ports ------------------------------------------------------------------
    def create_port_precommit(self, context: api.PortContext) -> None:
        """Journal the new port's remote-group memberships (bound or not)."""
        self._secgroups.port_changed(context.plugin_context.session, context.current, None)
        AddressJournal.covered(context.plugin_context.session, context.current["id"])

    def create_port_postcommit(self, context: api.PortContext) -> None:
        """Wake the forwarder if the precommit wrote rows."""
        self._kick_if_pending()

    def update_port_precommit(self, context: api.PortContext) -> None:
        """Journal binding and membership changes; block provisioning of a freshly bound port."""
        self._secgroups.port_changed(
            context.plugin_context.session, context.current, context.original
        )
        change = self.journal.port_changed(context)
        if change.wrote:
            self._pending.rows = True
        AddressJournal.covered(context.plugin_context.session, context.current["id"])
        # Destinations copy the port's value: recompute them before the commit.
        self.destinations.note(context.plugin_context.session, [context.current["id"]])
        if change.new_binding_id:
            provisioning_blocks.add_provisioning_component(
                context.plugin_context, context.current["id"], resources.PORT, PROVISIONING_ENTITY
            )

    def update_port_postcommit(self, context: api.PortContext) -> None:
        """Wake the forwarder if the precommit wrote rows."""
        self._kick_if_pending()

    def delete_port_precommit(self, context: api.PortContext) -> None:
        """Journal the removal of the port's key and of its memberships."""
        self._secgroups.port_deleted(context.plugin_context.session, context.current)
        if self.destinations.deleted(context.plugin_context.session, context.current["id"]):
            self._pending.rows = True
        if self.journal.port_deleted(context):
            self._pending.rows = True

    def delete_port_postcommit(self, context: api.PortContext) -> None:
        """Wake the forwarder if the precommit wrote rows."""
        self._kick_if_pending()

    # --- networks ---------------------------------------------------------------
    def update_network_precommit(self, context: api.NetworkContext) -> None:
        """An MTU change rewrites every port bound on the network."""
        if self.journal.network_changed(context):
            self._pending.rows = True
            self.destinations.network_changed(
                context._plugin_context.session, context.current["id"]
            )

    def update_network_postcommit(self, context: api.NetworkContext) -> None:
        """Wake the forwarder if the precommit wrote rows."""
        self._kick_if_pending()

    # --- subnets ----------------------------------------------------------------
    def _subnet_deleting(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        """Deleting a subnet takes its addresses from ports with no port precommit."""
        session = payload.context.session
        rewritten = self.journal.subnet_addresses_removed(session, payload.resource_id)
        if rewritten:
            self._pending.rows = True
            # Live-migration destinations copy the port's value: recomputed before the commit.
            self.destinations.note(session, rewritten)

    # --- helpers ----------------------------------------------------------------
    @property
    def _secgroups(self) -> SecGroupJournal:
        if self.secgroups is None:
            raise RuntimeError("vpp mechanism driver used before initialize()")
        return self.secgroups

    def _mark_pending(self) -> None:
        self._pending.rows = True

    def _kick(self) -> None:
        if self.services is not None:
            self.services.kick()

    def _kick_if_pending(self) -> None:
        # A precommit of a transaction that then rolled back leaves the flag set:
        # the next postcommit in this thread kicks for nothing, which is harmless.
        if getattr(self._pending, "rows", False):
            self._pending.rows = False
            if self.services is not None:
                self.services.kick()


def _is_rpc_worker(trigger: Any) -> bool:
    """Whether PROCESS/AFTER_INIT comes from an RPC worker of neutron-rpc-server."""
    from neutron import service  # late: only the RPC server has it loaded already

    return isinstance(trigger, service.RpcWorker)


__all__ = ["AGENT_TYPE", "DRIVER_NAME", "PROVISIONING_ENTITY", "VppMechanismDriver"]
