"""Neutron's API for the dev cloud: configuration, migrations, uWSGI.

As in production for this release: the WSGI app under uWSGI with
``lazy-apps`` (so each worker loads the app and fires ``PROCESS/AFTER_INIT``,
which starts the driver's etcd services), no Keystone (``noauth``), and the
Nova notifier pointed at the fake Nova. Neutron's own agents (DHCP, metadata,
L3) talk to the server over RabbitMQ; under uWSGI the API serves no RPC, so
``neutron-rpc-server`` (one RPC worker, which also takes the agents' state
reports) runs beside it with the same configuration (:func:`start_rpc`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from networking_vpp.cli import etcd_setup
from networking_vpp.testing.devcloud import mariadb, procs, web
from networking_vpp.testing.devcloud.layout import PHYSNETS, TAP_HOST, Layout

NAME = "neutron-api"
RPC_NAME = "neutron-rpc"
API_WORKERS = 2
RPC_WORKERS = 1
VLAN_RANGE = (100, 200)
CONFIG_FILES = ("neutron.conf", "ml2_conf.ini")


def _venv_bin(name: str) -> Path:
    return Path(sys.executable).parent / name


def available() -> bool:
    """Whether uWSGI is installed next to this Python."""
    return _venv_bin("uwsgi").exists() or shutil.which("uwsgi") is not None


def endpoint(port: int) -> str:
    """The API's base URL."""
    return f"http://127.0.0.1:{port}"


def write_config(
    layout: Layout,
    api_port: int,
    nova_port: int,
    etcd_endpoint: str,
    mechanism_drivers: str = "vpp",
    debug: bool = False,
    transport_url: str = "fake:/",
    l3: bool = False,
    etcd_identity: Path | None = None,
) -> None:
    """neutron.conf, ml2_conf.ini, api-paste.ini and the uWSGI ini under ``etc/``.

    ``etcd_identity``: the server's ``[etcd]`` snippet (``networking-vpp etcd-setup``);
    its user and password go into neutron.conf, so that every reader of the file (the
    API, the RPC server, ``networking-vpp`` with ``devcloud env``) is the server.

    ``transport_url``: the RabbitMQ of Neutron's agents (``fake:/``, oslo.messaging's
    in-memory driver, for a cloud without them). ``l3``: the ``router`` service plugin.
    """
    layout.make_dirs()
    etc = layout.etc
    identity = ""
    if etcd_identity is not None:
        username, password = etcd_setup.read_identity(etcd_identity)
        identity = f"username = {username}\npassword = {password}\n"
    vlan_ranges = ",".join(f"{p}:{VLAN_RANGE[0]}:{VLAN_RANGE[1]}" for p in PHYSNETS)
    agents = not transport_url.startswith("fake:")
    (etc / "neutron.conf").write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            core_plugin = ml2
            service_plugins = {"router" if l3 else ""}
            auth_strategy = noauth
            transport_url = {transport_url}
            # RPC is served by neutron-rpc-server (the API under uWSGI serves none);
            # its worker also takes the agents' state reports.
            rpc_workers = {RPC_WORKERS if agents else 0}
            rpc_state_report_workers = 0
            # Neutron's DHCP agent: notified of changes, and a DHCP provisioning block.
            enable_traditional_dhcp = {str(agents).lower()}
            dhcp_agents_per_network = 1
            # Legacy routers only: networking-vpp serves routers centrally (no DVR, no HA).
            router_distributed = false
            l3_ha = false
            notify_nova_on_port_status_changes = true
            notify_nova_on_port_data_changes = true
            send_events_interval = 1
            debug = {str(debug).lower()}
            use_stderr = true
            host = devcloud-controller
            state_path = {layout.neutron_state}
            api_paste_config = {etc / "api-paste.ini"}

            [database]
            connection = {mariadb.connection_url(layout)}

            [oslo_concurrency]
            lock_path = {layout.neutron_state / "lock"}

            [nova]
            # keystoneauth's 'none' plugin: novaclient posts straight to the fake Nova.
            auth_type = none
            endpoint = http://127.0.0.1:{nova_port}/v2.1

            [etcd]
            endpoints = {etcd_endpoint}
            """
        )
        + identity
    )
    (etc / "ml2_conf.ini").write_text(
        textwrap.dedent(
            f"""\
            [ml2]
            mechanism_drivers = {mechanism_drivers}
            type_drivers = flat,vlan
            project_network_types = vlan
            extension_drivers = port_security

            [ml2_type_flat]
            flat_networks = {",".join(PHYSNETS)}

            [ml2_type_vlan]
            network_vlan_ranges = {vlan_ranges}

            [ml2_vpp]
            vhostuser_socket_dir = {layout.vhostuser_dir}
            # Nova there plugs tap vifs (namespaces as VMs, with Neutron's agents)
            tap_hosts = {TAP_HOST}
            """
        )
    )
    _write_api_paste(layout)
    (etc / "neutron-api-uwsgi.ini").write_text(
        textwrap.dedent(
            f"""\
            [uwsgi]
            http-socket = 127.0.0.1:{api_port}
            start-time = %t
            # Each worker loads the app itself: PROCESS/AFTER_INIT fires in every worker.
            lazy-apps = true
            # A worker that cannot load the app ends uWSGI, rather than serving 500s.
            need-app = true
            master = true
            processes = {API_WORKERS}
            threads = 1
            enable-threads = true
            die-on-term = true
            exit-on-reload = false
            # Bounded shutdown: workers still busy after 5 s are killed.
            worker-reload-mercy = 5
            reload-mercy = 5
            buffer-size = 65535
            add-header = Connection: close
            virtualenv = {sys.prefix}
            module = neutron.wsgi.api:application
            procname-prefix = neutron-api-
            """
        )
    )


def _write_api_paste(layout: Layout) -> None:
    """The wheel's api-paste.ini, with the health check's flag file moved into ours."""
    source = Path(sys.prefix) / "etc" / "neutron" / "api-paste.ini"
    if not source.exists():
        raise procs.DevCloudError(f"{source} missing: is neutron installed in this venv?")
    text = source.read_text().replace(
        "/var/lib/neutron/healthcheck_disable", str(layout.neutron_state / "healthcheck_disable")
    )
    (layout.etc / "api-paste.ini").write_text(text)


def environment(layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OS_NEUTRON_CONFIG_DIR=str(layout.etc),
        OS_NEUTRON_CONFIG_FILES=";".join(CONFIG_FILES),
        TMPDIR=str(layout.tmp),
    )
    return env


def migrate(layout: Layout, timeout: float = 300.0) -> None:
    """``neutron-db-manage upgrade heads``: Neutron, then every installed subproject (ours)."""
    argv = [str(_venv_bin("neutron-db-manage"))]
    for name in CONFIG_FILES:
        argv += ["--config-file", str(layout.etc / name)]
    argv += ["upgrade", "heads"]
    log = layout.log_file("neutron-db-manage")
    with open(log, "ab") as out:
        result = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment(layout),
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise procs.DevCloudError(f"neutron-db-manage upgrade heads failed, see {log}")


def start(
    layout: Layout, api_port: int, timeout: float = 120.0, die_with_parent: bool = False
) -> None:
    """Start uWSGI and wait until every worker has loaded the app and the API answers."""
    uwsgi = _venv_bin("uwsgi")
    log = layout.log_file(NAME)
    offset = log.stat().st_size if log.exists() else 0
    daemon = procs.spawn(
        NAME,
        [
            str(uwsgi if uwsgi.exists() else "uwsgi"),
            "--ini",
            str(layout.etc / "neutron-api-uwsgi.ini"),
        ],
        layout.pid_file(NAME),
        log,
        env=environment(layout),
        die_with_parent=die_with_parent,
    )

    def since_start() -> bytes:
        with open(log, "rb") as f:
            f.seek(offset)
            return f.read()

    def workers_ready() -> bool:
        return since_start().count(b"WSGI app 0 (mountpoint='') ready") >= API_WORKERS

    def failed() -> str | None:
        # uWSGI's master respawns a worker that could not load Neutron, for ever.
        if b"died :( trying respawn" in since_start():
            return f"a uWSGI worker could not load Neutron; {log} ends:\n{procs.tail(log, 40)}"
        return daemon.died()

    procs.wait_until(workers_ready, timeout, "every uWSGI worker to load Neutron", 0.2, failed)
    procs.wait_until(
        lambda: web.get_json(f"{endpoint(api_port)}/v2.0/networks", timeout=10) is not None,
        30.0,
        "Neutron's API to answer",
        0.2,
        failed,
    )


def rpc_argv() -> list[str]:
    """``neutron-rpc-server`` (its configuration comes from :func:`environment`)."""
    return [str(_venv_bin("neutron-rpc-server"))]


def stop(layout: Layout) -> bool:
    """Stop uWSGI (master and workers)."""
    return procs.stop(layout.pid_file(NAME), timeout=20.0)
