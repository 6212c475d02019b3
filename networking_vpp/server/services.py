"""What each Neutron API worker runs beside its requests.

* a watcher of ``/state/`` feeding the host cache that ``bind_port`` reads;
* a forwarder candidate (elected: one writes in the whole cloud) and a kicker;
* a state-watcher candidate (elected too).

Started from ``PROCESS``/``AFTER_INIT`` in API workers (see the mechanism driver).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.lease import check_keepalive_timeout
from networking_vpp.common.etcd.watcher import PrefixWatcher
from networking_vpp.server.hosts import HostCache
from networking_vpp.server.journal.api import JournalStore, neutron_session_scope
from networking_vpp.server.journal.forwarder import Forwarder, Kicker
from networking_vpp.server.state import StateWatcher
from networking_vpp.server.sync import Guard, SyncReport, log_report, make_resync

LOG = logging.getLogger(__name__)


class ServerServices:
    """The etcd-facing threads of one API worker."""

    def __init__(self, conf: Any, keyspace: keys.KeySpace, hosts: HostCache) -> None:
        group = conf.ml2_vpp
        settings = EtcdSettings.from_conf(conf)
        check_keepalive_timeout(group.election_ttl, settings.timeout, "[ml2_vpp] election_ttl")
        self.client = EtcdClient(settings)
        identity = f"{socket.gethostname()}:{os.getpid()}"
        self.host_watcher = PrefixWatcher(
            self.client,
            keyspace.state_prefix(),
            hosts.on_load,
            hosts.on_events,
            name="host-cache",
        )
        self.forwarder = Forwarder(
            JournalStore(neutron_session_scope()),
            self.client,
            keyspace,
            identity=identity,
            batch_size=group.journal_batch_size,
            poll_interval=group.journal_poll_interval,
            retry_interval=group.etcd_retry_interval,
            election_ttl=group.election_ttl,
            txns_in_flight=group.journal_txns_in_flight,
            syncer=self._resync,
            sync_on_election=group.resync_on_election,
            sync_interval=group.resync_interval,
        )
        self.resync = make_resync(
            self.client, keyspace, group.vpp_vhostuser_role, kick=self.forwarder.kick
        )
        self.kicker = Kicker(self.client, keyspace, self.forwarder)
        self.state = StateWatcher(
            self.client, keyspace, identity=identity, election_ttl=group.election_ttl
        )

    def start(self) -> None:
        """Start every thread; none of them blocks on etcd being up."""
        self.host_watcher.start()
        self.kicker.start()
        self.forwarder.start()
        self.state.start()
        LOG.info("networking-vpp services started in worker %d", os.getpid())

    def stop(self) -> None:
        """Stop everything and resign from the elections."""
        self.state.stop()
        self.forwarder.stop()
        self.kicker.stop()
        self.host_watcher.stop()
        self.client.close()

    def kick(self) -> None:
        """Journal rows were committed: wake the forwarder leader, wherever it is."""
        self.kicker.kick()

    def _resync(self, guard: Guard) -> SyncReport:
        """The forwarder leader's full resync (runs in the forwarder's thread)."""
        report = self.resync.run(guard=guard)
        log_report(report)
        return report
