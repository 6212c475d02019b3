"""``networking-vpp resync``: compare etcd with Neutron's database and repair it.

Runs outside neutron-server: it reads neutron.conf (``--config-file``, as
``neutron-db-manage`` does) for the database and ``[etcd]``, and loads the ML2
core plugin (with only our mechanism driver, no Nova notifier, no RPC) so
that ports come out exactly as ML2 hands them to the journal. Writes are safe
while neutron-server runs: see :mod:`networking_vpp.server.sync`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from networking_vpp.cli import conf


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the command."""
    parser = sub.add_parser(
        "resync",
        help="compare etcd with the Neutron database and repair the difference",
        description="Recompute every key the journal would have written from Neutron's "
        "database, compare with etcd, print the difference as JSON and (unless --dry-run) "
        "repair it. Keys with pending journal rows are left to the journal. Exit status: "
        "0 etcd matched or was repaired; 1 differences found by --dry-run, or repairs that "
        "failed; 2 could not run.",
    )
    conf.add_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    parser.add_argument("--host", help="only this host's port bindings (no /global/ keys)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run one resync and print its report."""
    resync, client = load(args)
    try:
        report = resync.run(dry_run=args.dry_run, host=args.host)
    finally:
        client.close()
    json.dump(report.to_json(), out, indent=2)
    out.write("\n")
    if report.failed or (args.dry_run and report.changes):
        return 1
    return 0


def load(args: argparse.Namespace) -> tuple[Any, Any]:
    """Neutron's configuration and core plugin; returns ``(Resync, EtcdClient)``."""
    # Late imports: status and watch must work where Neutron is not installed.
    from neutron import manager
    from neutron.common import config as n_config
    from neutron.conf import service as service_conf
    from neutron.conf.plugins.ml2 import config as ml2_config
    from neutron_lib.plugins import constants as plugin_constants
    from neutron_lib.plugins import directory
    from oslo_config import cfg
    from oslo_db import options as db_options

    from networking_vpp.server import config as server_config
    from networking_vpp.server.journal.forwarder import ROLE
    from networking_vpp.server.journal.ports import DRIVER_NAME
    from networking_vpp.server.sync import make_resync

    n_config.register_common_config_options()
    db_options.set_defaults(cfg.CONF)
    ml2_config.register_ml2_plugin_opts()
    service_conf.register_service_opts(service_conf.SERVICE_OPTS)
    server_config.register_opts(cfg.CONF)
    # Without --config-file, oslo.config finds /etc/neutron/neutron.conf, as Neutron's tools do.
    cfg.CONF(args=conf.oslo_args(args), project="neutron", prog="networking-vpp resync")
    conf.apply_overrides(cfg.CONF, args)
    if not cfg.CONF.database.connection:
        raise SystemExit("networking-vpp resync: no [database] connection: pass neutron.conf")
    # Only what reading ports needs: our driver (whatever else the cloud runs
    # binds nothing we care about here), no notifications, no RPC.
    cfg.CONF.set_override("mechanism_drivers", [DRIVER_NAME], "ml2")
    cfg.CONF.set_override("notify_nova_on_port_status_changes", False)
    cfg.CONF.set_override("notify_nova_on_port_data_changes", False)
    cfg.CONF.set_override("rpc_workers", 0)
    plugin_class = manager.NeutronManager.load_class_for_provider(
        "neutron.core_plugins", cfg.CONF.core_plugin or "ml2"
    )
    directory.add_plugin(plugin_constants.CORE, plugin_class())

    client, keyspace = conf.client_from(cfg.CONF)

    def kick() -> None:
        # Rows this run journaled: wake the forwarder leader, wherever it runs.
        client.put(keyspace.kick(ROLE), "")

    resync = make_resync(client, keyspace, cfg.CONF.ml2_vpp.vpp_vhostuser_role, kick=kick)
    return resync, client
