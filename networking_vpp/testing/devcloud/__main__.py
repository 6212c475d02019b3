"""``python -m networking_vpp.testing.devcloud {up,down,status,env}``.

The shell wrappers in ``tools/devcloud/`` call this; run from the repository
top, the cloud lives in ``./.devcloud`` (``--base`` or ``$DEVCLOUD_DIR`` to move it).
``eval "$(python -m networking_vpp.testing.devcloud env)"`` sets up a shell for
``openstack``, ``etcdctl``, ``networking-vpp`` and ``vpp-agent``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from networking_vpp.common.etcd.settings import EtcdSettings
from networking_vpp.testing.devcloud import etcd_auth, neutron, neutron_agents, procs, rabbitmq
from networking_vpp.testing.devcloud.cloud import DevCloud, missing_prerequisites


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devcloud", description="networking-vpp dev cloud")
    parser.add_argument(
        "--base", type=Path, default=Path(os.environ.get("DEVCLOUD_DIR", ".devcloud"))
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or restart) the dev cloud")
    up.add_argument("--debug", action="store_true", help="debug logging everywhere")
    up.add_argument(
        "--mechanism-drivers", default="vpp", help="ML2 mechanism drivers (default: vpp)"
    )
    up.add_argument(
        "--no-agents",
        action="store_true",
        help="without RabbitMQ and Neutron's DHCP and metadata agents",
    )
    up.add_argument("--l3", action="store_true", help="also the router plugin and L3 agent")
    down = sub.add_parser("down", help="stop everything")
    down.add_argument("--purge", action="store_true", help="also delete the directory")
    sub.add_parser("status", help="what runs, and where")
    sub.add_parser("env", help="the exports a shell needs (eval its output)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devcloud: %(message)s")

    l3 = getattr(args, "l3", False)
    cloud = DevCloud(
        args.base,
        mechanism_drivers=getattr(args, "mechanism_drivers", "vpp"),
        debug=getattr(args, "debug", False),
        neutron_agents=not getattr(args, "no_agents", True) or l3,
        l3=l3,
    )
    if args.command == "env":
        if not cloud.ports.neutron:
            print(f"devcloud: no dev cloud in {cloud.layout.base}", file=sys.stderr)
            return 1
        print(env_exports(cloud), end="")
        return 0
    if args.command == "up":
        missing = missing_prerequisites(with_agents=cloud.neutron_agents)
        if missing:
            print("devcloud: missing " + ", ".join(missing), file=sys.stderr)
            return 2
        try:
            cloud.up()
        except procs.DevCloudError as exc:
            print(f"devcloud: {exc}\ndevcloud: logs are in {cloud.layout.logs}", file=sys.stderr)
            return 1
        _print_status(cloud)
    elif args.command == "down":
        existed = cloud.layout.base.exists()
        stopped = cloud.down(purge=args.purge)
        print("devcloud: stopped " + (", ".join(stopped) or "nothing (nothing was running)"))
        if args.purge and existed:
            print(f"devcloud: removed {cloud.layout.base}")
    elif not cloud.ports.neutron:
        print(f"devcloud: no dev cloud in {cloud.layout.base}")
        return 1
    else:
        _print_status(cloud)
    return 0


def env_exports(cloud: DevCloud) -> str:
    """Shell exports for a running dev cloud: the venv's commands, the OpenStack
    client (noauth), etcdctl (v3 API, as the server's etcd identity) and
    networking-vpp's configuration files (neutron.conf: the server's identity too)."""
    bin_dir = Path(sys.executable).parent
    try:
        server: EtcdSettings | None = cloud.etcd_settings(etcd_auth.SERVER)
    except FileNotFoundError:  # a cloud from before etcd had auth on
        server = None
    config_files = " ".join(
        f"--config-file {cloud.layout.etc / name}" for name in neutron.CONFIG_FILES
    )
    exports = [
        ("PATH", f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"),
        ("OS_AUTH_TYPE", "none"),
        ("OS_ENDPOINT", cloud.neutron_url),
        ("ETCDCTL_API", "3"),
        ("ETCDCTL_ENDPOINTS", ",".join(cloud.etcd_endpoints)),
        # networking-vpp resync/status/watch $NETWORKING_VPP_CONFIG
        ("NETWORKING_VPP_CONFIG", config_files),
    ]
    if server is not None:
        # etcd has auth on: etcdctl reads as the server (every key below the prefix)
        exports.append(("ETCDCTL_USER", f"{server.username}:{server.password}"))
    lines = [
        f"# the dev cloud in {cloud.layout.base}: "
        'eval "$(python -m networking_vpp.testing.devcloud env)"'
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in exports]
    return "\n".join(lines) + "\n"


def _print_status(cloud: DevCloud) -> None:
    running = cloud.running()
    ports = cloud.ports
    where = {
        "mariadb": f"{cloud.layout.mariadb_socket} and 127.0.0.1:{ports.mariadb}",
        "etcd": ",".join(cloud.etcd_endpoints),
        "fake-nova": cloud.nova_url
        + (f" (metadata API {cloud.nova_metadata_url})" if ports.neutron_agents else ""),
        "neutron-api": cloud.neutron_url,
        "rabbitmq": f"127.0.0.1:{ports.rabbitmq} (node {rabbitmq.node_name(cloud.layout)})",
    }
    for name in cloud.agent_names():
        where[name] = f"host {neutron_agents.HOST}"
    for host, port in ports.hosts.items():
        where[f"host-{host}"] = f"http://127.0.0.1:{port}"
    for name, alive in running.items():
        print(f"  {name:24} {'up  ' if alive else 'DOWN'} {where.get(name, '')}")
    print(f"  logs: {cloud.layout.logs}")
    print('  a shell for it: eval "$(python -m networking_vpp.testing.devcloud env)"')


if __name__ == "__main__":
    raise SystemExit(main())
