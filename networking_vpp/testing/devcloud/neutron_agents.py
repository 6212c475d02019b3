"""Neutron's own agents on the dev cloud: DHCP, metadata and (``--l3``) L3.

They run as on a real network node that is also ``compute-1``: ``host =
compute-1``, so the ports they create are bound there by our mechanism driver
(``tap``: their owners are ``network:*``), and their devices are made by our
interface driver (``interface_driver = vpp``): a veth pair whose root end,
``tap<port_id[:11]>``, compute-1's vpp-agent attaches to VPP. They talk to
Neutron over the dev cloud's RabbitMQ.

* DHCP: dnsmasq per network in ``qdhcp-<network>``, with isolated metadata
  (haproxy on 169.254.169.254 in that namespace, forwarding to the metadata
  agent's socket);
* metadata: proxies to the fake Nova's metadata API, signing the instance id
  with the shared secret (``X-Instance-ID-Signature``);
* L3 (``agent_mode = legacy``): routers, SNAT and floating IPs in
  ``qrouter-<router>``.

The namespaces and the daemons the agents leave behind (dnsmasq, haproxy,
keepalived: Neutron's agents deliberately keep them on exit) are removed by
:func:`cleanup`, which only touches this cloud's: namespaces named after the
networks and routers in its own database, or after the networks in its DHCP
agent's state directory.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.layout import Layout

LOG = logging.getLogger(__name__)

HOST = "compute-1"  # where the agents run, as far as Neutron is concerned
INTERFACE_DRIVER = "vpp"  # our entry point in neutron.interface_drivers
DHCP = "neutron-dhcp-agent"
METADATA = "neutron-metadata-agent"
L3 = "neutron-l3-agent"
AGENT_TYPES = {DHCP: "DHCP agent", METADATA: "Metadata agent", L3: "L3 agent"}
NAMESPACE_PREFIXES = ("qdhcp-", "qrouter-")


def _venv_bin(name: str) -> Path:
    return Path(sys.executable).parent / name


def names(l3: bool) -> list[str]:
    """The agents a cloud runs (their binaries, PID and log files)."""
    return [DHCP, METADATA] + ([L3] if l3 else [])


def available() -> list[str]:
    """What the agents need that this machine lacks (empty when nothing)."""
    missing = []
    for binary, package in (("dnsmasq", "dnsmasq-base"), ("haproxy", "haproxy")):
        if not _which(binary):
            missing.append(f"{binary} (Debian {package})")
    return missing


def _which(binary: str) -> bool:
    import shutil

    return shutil.which(binary, path=_path()) is not None


def _path() -> str:
    # The venv first (privsep-helper, neutron-*), and sbin: dnsmasq, haproxy, ip.
    return os.pathsep.join(
        [str(Path(sys.executable).parent), "/usr/local/sbin", "/usr/sbin", "/sbin"]
        + os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    )


def metadata_secret(layout: Layout) -> str:
    """The metadata proxy's shared secret (made once per dev cloud directory)."""
    path = layout.etc / "metadata_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def state_path(layout: Layout) -> Path:
    return layout.base / "neutron-agents"


def config_files(layout: Layout, name: str) -> list[Path]:
    """The files an agent reads: the common one, then its own."""
    return [layout.etc / "agents.conf", layout.etc / f"{name}.ini"]


def write_config(
    layout: Layout, transport_url: str, nova_metadata_port: int, debug: bool = False
) -> None:
    """agents.conf (common), and one .ini per agent, under ``etc/``."""
    state = state_path(layout)
    (state / "lock").mkdir(parents=True, exist_ok=True)
    (layout.etc / "agents.conf").write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            host = {HOST}
            transport_url = {transport_url}
            state_path = {state}
            interface_driver = {INTERFACE_DRIVER}
            # The DHCP agent's haproxy (isolated metadata) forwards to this socket.
            metadata_proxy_socket = {state / "metadata_proxy"}
            debug = {str(debug).lower()}
            use_stderr = true

            [agent]
            # The agents run as root already: no sudo, no rootwrap (privsep-helper
            # is found on PATH, the venv's bin first).
            root_helper = env
            report_interval = 10

            [oslo_concurrency]
            lock_path = {state / "lock"}
            """
        )
    )
    # dnsmasq drops to user nobody once started and re-reads its hosts file (a new
    # port's MAC) at each SIGHUP: under a directory nobody cannot enter (pytest's
    # temporary directories are 0700) that read fails, and dnsmasq silently ignores
    # every new VM. It keeps root here, as the agents do.
    (layout.etc / "dnsmasq.conf").write_text("user=root\n")
    (layout.etc / f"{DHCP}.ini").write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            dnsmasq_config_file = {layout.etc / "dnsmasq.conf"}
            dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
            # 169.254.169.254 in the DHCP namespace: networks without a router get
            # metadata too (the tour's VMs curl it).
            enable_isolated_metadata = true
            force_metadata = false
            # No upstream DNS on this machine's loopback-only world.
            dnsmasq_local_resolv = false
            num_sync_threads = 2
            """
        )
    )
    (layout.etc / f"{METADATA}.ini").write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            nova_metadata_host = 127.0.0.1
            nova_metadata_port = {nova_metadata_port}
            nova_metadata_protocol = http
            metadata_proxy_shared_secret = {metadata_secret(layout)}
            metadata_workers = 1
            """
        )
    )
    (layout.etc / f"{L3}.ini").write_text(
        textwrap.dedent(
            """\
            [DEFAULT]
            # Routers served centrally, in qrouter- namespaces: SNAT and floating IPs.
            agent_mode = legacy
            """
        )
    )


def spawn(layout: Layout, name: str, die_with_parent: bool = False) -> procs.Daemon:
    """Start one agent (its readiness is its report in Neutron's agent list)."""
    argv = [str(_venv_bin(name))]
    for path in config_files(layout, name):
        argv += ["--config-file", str(path)]
    env = dict(os.environ)
    env["PATH"] = _path()
    return procs.spawn(
        name,
        argv,
        layout.pid_file(name),
        layout.log_file(name),
        env=env,
        die_with_parent=die_with_parent,
    )


def stop(layout: Layout, l3: bool = True) -> list[str]:
    """Stop the agents (not what they left: see :func:`cleanup`)."""
    return [n for n in names(l3) if procs.stop(layout.pid_file(n), timeout=15.0)]


def _gone(pid: int) -> bool:
    return not procs.pid_alive(pid)


# --- what the agents leave behind ---------------------------------------------------
def _namespaces() -> list[str]:
    result = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False, timeout=10
    )
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def ours(layout: Layout, ids: Iterable[str]) -> list[str]:
    """This cloud's agent namespaces: named after ``ids`` (its networks and routers)
    or after the networks its DHCP agent served."""
    known = set(ids)
    dhcp_dir = state_path(layout) / "dhcp"
    if dhcp_dir.is_dir():
        known |= {p.name for p in dhcp_dir.iterdir()}
    found = []
    for ns in _namespaces():
        for prefix in NAMESPACE_PREFIXES:
            if ns.startswith(prefix) and ns[len(prefix) :] in known:
                found.append(ns)
    return found


def cleanup(layout: Layout, ids: Iterable[str]) -> list[str]:
    """Kill the processes in this cloud's agent namespaces and delete the namespaces.

    Deleting a namespace destroys its veth ends, and with them their root-side
    peers (the ``tap`` devices VPP attached to). Returns the namespaces removed.
    """
    removed = []
    for ns in ours(layout, ids):
        pids = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False, timeout=10
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ValueError):
                procs.wait_until(functools.partial(_gone, int(pid)), 5.0, f"process {pid} in {ns}")
        result = subprocess.run(
            ["ip", "netns", "delete", ns], capture_output=True, text=True, check=False, timeout=10
        )
        if result.returncode == 0:
            removed.append(ns)
        else:
            LOG.warning("could not delete namespace %s: %s", ns, result.stderr.strip())
    return removed
