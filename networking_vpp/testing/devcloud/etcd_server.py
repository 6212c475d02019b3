"""A single-member etcd on loopback ports, for the dev cloud."""

from __future__ import annotations

import shutil

from networking_vpp.testing.devcloud import procs, web
from networking_vpp.testing.devcloud.layout import Layout

NAME = "etcd"


def available() -> bool:
    """Whether the etcd server binary (Debian ``etcd-server``) is installed."""
    return shutil.which("etcd") is not None


def endpoint(client_port: int) -> str:
    """The client URL."""
    return f"http://127.0.0.1:{client_port}"


def start(
    layout: Layout,
    client_port: int,
    peer_port: int,
    timeout: float = 30.0,
    die_with_parent: bool = False,
) -> None:
    """Start etcd with its data under the dev cloud's directory and wait until healthy."""
    binary = shutil.which("etcd")
    if binary is None:
        raise procs.DevCloudError("etcd not found: install the Debian package etcd-server")
    client = endpoint(client_port)
    peer = f"http://127.0.0.1:{peer_port}"
    daemon = procs.spawn(
        NAME,
        [
            binary,
            "--name=devcloud",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=devcloud={peer}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-outputs=stderr",
        ],
        layout.pid_file(NAME),
        layout.log_file(NAME),
        die_with_parent=die_with_parent,
    )

    procs.wait_until(lambda: healthy(client), timeout, "etcd to be healthy", alive=daemon.died)


def healthy(client: str) -> bool:
    """etcd's own /health verdict."""
    return web.get_json(f"{client}/health", timeout=2).get("health") == "true"


def stop(layout: Layout) -> bool:
    """Stop etcd."""
    return procs.stop(layout.pid_file(NAME), timeout=15.0)
