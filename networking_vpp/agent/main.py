"""``vpp-agent``: the networking-vpp agent of one host."""

from __future__ import annotations

import gc
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.common import config
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.lease import check_keepalive_timeout

LOG = logging.getLogger(__name__)


def settings_from_conf(conf: cfg.ConfigOpts) -> AgentSettings:
    """AgentSettings from the [vpp_agent] and [etcd] options."""
    group = conf[config.AGENT_GROUP]
    return AgentSettings(
        host=group.host,
        physnets=dict(group.physnets),
        prefix=conf[config.ETCD_GROUP].prefix,
        alive_ttl=group.alive_ttl,
        vpp_ping_interval=group.vpp_ping_interval,
        vpp_reconnect_interval=group.vpp_reconnect_interval,
        link_refresh_interval=group.link_refresh_interval,
        report_before_vm_connects=group.report_before_vm_connects,
        vhostuser_socket_dir=group.vhostuser_socket_dir or None,
        vhostuser_socket_group=group.vhostuser_socket_group or None,
        vhostuser_socket_mode=int(group.vhostuser_socket_mode, 8),
        watch_tap_devices=group.watch_tap_devices,
        bridge_mac_age=group.bridge_mac_age,
        bridge_learn_limit=group.bridge_learn_limit or None,
        vhostuser_rx_mode=group.vhostuser_rx_mode,
        vpp_main_heap_mb=group.vpp_main_heap_mb,
    )


# The agent's heap is mostly long-lived: a binding, a record of what VPP holds
# and a report per port. With the default thresholds (700, 10, 10) a cold start
# of 10,000 ports ran ~850 collections, six of them full sweeps of ~400,000
# objects, for 0.9 s of its 6-7 s. At (10_000, 20, 20) it still ran two
# middle-generation sweeps of the ports it had just made, 0.18-0.36 s in all; at
# these, 8 young collections and no other, 0.09-0.13 s. The price is up to
# 50,000 young objects (a few MB) waiting a little longer to be found garbage.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Set the agent process's garbage collector thresholds (see GC_THRESHOLDS)."""
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str] | None = None) -> int:
    """Run the agent until SIGTERM or SIGINT (exit status 0, whenever they come)."""
    stop = threading.Event()
    agent: Agent | None = None

    def on_signal(*_: object) -> None:
        # Whenever it comes: before the agent exists, or while start() waits for etcd.
        stop.set()
        if agent is not None:
            agent.interrupt()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    conf = cfg.ConfigOpts()
    config.register_agent_opts(conf)
    logging.register_options(conf)
    conf(sys.argv[1:] if argv is None else argv, project="networking-vpp", prog="vpp-agent")
    logging.setup(conf, "networking-vpp")
    tune_gc()
    group = conf[config.AGENT_GROUP]
    vpp = vpp_adapter(group.vpp_api_socket, group.vpp_api_dir)
    etcd_settings = EtcdSettings.from_conf(conf)
    check_keepalive_timeout(group.alive_ttl, etcd_settings.timeout, "[vpp_agent] alive_ttl")
    agent = Agent(settings_from_conf(conf), EtcdClient(etcd_settings), vpp)
    if stop.is_set():
        return 0
    agent.start()
    if not stop.is_set():
        LOG.info("vpp-agent for host %s started", agent.settings.host)
    stop.wait()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
