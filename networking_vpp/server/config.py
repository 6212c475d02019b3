"""oslo.config options of the server side: the [ml2_vpp] group, plus [etcd]."""

from __future__ import annotations

from oslo_config import cfg

from networking_vpp.common import config as common_config

GROUP = common_config.ML2_VPP_GROUP

ml2_vpp_opts = [
    cfg.StrOpt(
        "vhostuser_socket_dir",
        default="/run/vpp/vhostuser",
        help="Directory of the vhost-user sockets; a port's socket is <dir>/vhu<port_id[:11]>. "
        "It must be reachable by both VPP and QEMU on every compute host.",
    ),
    cfg.StrOpt(
        "vpp_vhostuser_role",
        default="client",
        choices=[
            (
                "client",
                "QEMU creates the socket and VPP connects (vhostuser_mode 'server'); "
                "VPP reconnects to running guests after it restarts",
            ),
            (
                "server",
                "VPP creates the socket and QEMU connects (vhostuser_mode 'client'); "
                "Nova configures no reconnect, so after a VPP restart every guest stays "
                "cut off until it is rebooted",
            ),
        ],
        help="VPP's side of the vhost-user socket. Nova's vif_details 'vhostuser_mode' names "
        "QEMU's side, so the driver sends the opposite. 'client' (QEMU the server, as "
        "OVS's dpdkvhostuserclient) survives VPP restarts; with 'server' a VPP restart "
        "leaves every guest without network until it is rebooted.",
    ),
    cfg.ListOpt(
        "tap_device_owner_prefixes",
        default=["network:"],
        help="Ports whose device_owner starts with one of these are bound as vif_type 'tap' "
        "(kernel interfaces made by DHCP/L3 agents), never vhost-user.",
    ),
    cfg.ListOpt(
        "tap_hosts",
        default=[],
        help="Hosts where every port is bound as vif_type 'tap' (e.g. hosts without "
        "vhost-user capable hypervisors).",
    ),
    cfg.StrOpt(
        "default_vif_type",
        default="vhostuser",
        choices=["vhostuser", "tap"],
        help="vif_type for ports not covered by tap_device_owner_prefixes or tap_hosts.",
    ),
    cfg.IntOpt(
        "journal_batch_size",
        default=1000,
        min=1,
        help="Journal rows the forwarder reads per batch (written in etcd transactions of "
        "at most 128 operations).",
    ),
    cfg.IntOpt(
        "journal_txns_in_flight",
        default=4,
        min=1,
        help="etcd transactions of one batch the forwarder sends at once (a batch's keys "
        "are distinct, so they commute; etcd commits concurrent ones with one disk sync).",
    ),
    cfg.FloatOpt(
        "journal_poll_interval",
        default=5.0,
        min=0.1,
        help="Seconds between journal checks when no kick arrives (a safety net: commits "
        "normally wake the forwarder at once).",
    ),
    cfg.FloatOpt(
        "etcd_retry_interval",
        default=1.0,
        min=0.05,
        help="Seconds before the forwarder retries after etcd was unreachable (doubles up to 30).",
    ),
    cfg.IntOpt(
        "election_ttl",
        default=10,
        min=2,
        help="Lease TTL (seconds) of the forwarder and state-watcher elections: a dead "
        "leader is replaced within about this time. [etcd] timeout must be below a "
        "third of it (the leader's keepalive may not block longer).",
    ),
    cfg.BoolOpt(
        "resync_on_election",
        default=True,
        help="When a forwarder becomes the leader, compare etcd with the database and repair "
        "the difference (networking-vpp resync does the same on demand).",
    ),
    cfg.FloatOpt(
        "resync_interval",
        default=0.0,
        min=0.0,
        help="Seconds between full resyncs run by the forwarder leader (etcd compared with "
        "the database, differences repaired). 0: only on election and on demand.",
    ),
    cfg.FloatOpt(
        "bind_wait_for_hosts",
        default=5.0,
        min=0.0,
        help="Seconds after an API worker starts during which a bind to a host it does not "
        "(yet) know alive waits for the worker's first read of the agents' states from "
        "etcd, instead of failing. Later binds never wait.",
    ),
    cfg.BoolOpt(
        "start_services",
        default=True,
        help="Start the etcd watchers, forwarder and state watcher in API workers. "
        "Off only for tests.",
    ),
]


def register_opts(conf: cfg.ConfigOpts = cfg.CONF) -> None:
    """Register [ml2_vpp] and [etcd] (idempotent)."""
    common_config.register_etcd_opts(conf)
    conf.register_opts(ml2_vpp_opts, GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For oslo-config-generator."""
    return [(GROUP, ml2_vpp_opts), (common_config.ETCD_GROUP, common_config.etcd_opts)]
