"""The real vpp-agent as a process of its own, on an emulator process's socket.

For fault tests that SIGKILL agents: the same Agent as ``vpp-agent`` runs, with
vpp_papi on the emulator process's API socket (see ``testing/vpp/remote.py``)::

    python -m networking_vpp.testing.agent_process --host compute-1 \\
        --etcd http://127.0.0.1:2379 --vpp-socket /tmp/vpp.sock \\
        --physnet physnet1:GigabitEthernet0/8/0
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.cli.etcd_setup import read_identity
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.testing.vpp.socket_server import api_dir_for


def main() -> None:
    """Run one agent until SIGTERM (or until SIGKILLed, which is the point)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--etcd", action="append", required=True, help="endpoint (repeatable)")
    parser.add_argument("--vpp-socket", required=True)
    parser.add_argument("--vpp-api-dir", help="the .api.json files (default: api/ by the socket)")
    parser.add_argument("--physnet", action="append", default=[], help="NAME:INTERFACE")
    parser.add_argument("--report-before-vm-connects", action="store_true")
    parser.add_argument(
        "--vhostuser-socket-dir",
        default="/run/vpp",
        help="where bindings' sockets must lie (the functional rig's); not made",
    )
    parser.add_argument(
        "--etcd-identity", help="the host's [etcd] snippet (user, password) when auth is on"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"
    )
    settings = AgentSettings(
        host=args.host,
        physnets=dict(p.split(":", 1) for p in args.physnet),
        alive_ttl=3,
        vpp_ping_interval=0.2,
        summary_interval=0.2,
        report_before_vm_connects=args.report_before_vm_connects,
        vhostuser_socket_dir=args.vhostuser_socket_dir,
        make_vhostuser_socket_dir=False,  # the emulator needs no real directory
    )
    username, password = read_identity(args.etcd_identity) if args.etcd_identity else (None, None)
    etcd = EtcdClient(
        EtcdSettings(endpoints=args.etcd, username=username, password=password, timeout=2.0)
    )
    api_dir = args.vpp_api_dir or api_dir_for(args.vpp_socket)
    agent = Agent(settings, etcd, vpp_adapter(args.vpp_socket, api_dir))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    agent.start()
    stop.wait()
    agent.stop()


if __name__ == "__main__":
    main()
