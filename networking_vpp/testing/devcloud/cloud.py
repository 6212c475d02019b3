"""The dev cloud: MariaDB, etcd, a fake Nova, Neutron's API and two fake hosts.

With ``neutron_agents``: RabbitMQ, ``neutron-rpc-server`` and Neutron's DHCP and
metadata agents on compute-1's side (and with ``l3`` the router service plugin and
``neutron-l3-agent``), see :mod:`.neutron_agents`.

``DevCloud(base).up()`` starts everything in dependency order and waits for
each piece to be healthy; ``down()`` stops whatever is running, in reverse
order, by the PID files. ``up()`` cleans up after itself when any step fails,
so a failed start leaves no process behind. The shell scripts
``tools/devcloud/{up,down}.sh``, the system tests and the benchmark all drive
this one class.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from networking_vpp.common.etcd.settings import EtcdSettings
from networking_vpp.testing.devcloud import (
    etcd_auth,
    etcd_server,
    mariadb,
    neutron,
    neutron_agents,
    procs,
    rabbitmq,
    web,
    wire,
)
from networking_vpp.testing.devcloud.layout import (
    HOSTS,
    PHYSNETS,
    TAP_HOST,
    Layout,
    Ports,
    choose_ports,
)
from networking_vpp.testing.etcd import free_port  # the loopback port picker tests share

LOG = logging.getLogger(__name__)

NOVA = "fake-nova"
# Uplink NIC of each physnet on every fake host (PCI-like names, as VPP shows them).
UPLINKS = {
    "physnet1": "GigabitEthernet0/8/0",
    "physnet2": "GigabitEthernet0/9/0",
    "physnet3": "GigabitEthernet0/a/0",
}


def missing_prerequisites(with_agents: bool = False) -> list[str]:
    """What this machine lacks to run a dev cloud (empty when it can).

    ``with_agents``: also what Neutron's agents need (RabbitMQ, dnsmasq, haproxy).
    """
    missing = []
    if with_agents:
        if not rabbitmq.available():
            missing.append("rabbitmq-server (Debian rabbitmq-server)")
        missing += neutron_agents.available()
    if not mariadb.available():
        missing.append("mariadbd (Debian mariadb-server)")
    if not etcd_server.available():
        missing.append("etcd (Debian etcd-server)")
    if not neutron.available():
        missing.append("uwsgi (pip install uwsgi)")
    return missing


def host_service(host: str) -> str:
    """Name (PID and log file) of a fake host's process."""
    return f"host-{host}"


class DevCloud:
    """One dev cloud living in ``base`` (``.devcloud/`` of the repository by default)."""

    def __init__(
        self,
        base: Path,
        hosts: tuple[str, ...] = HOSTS,
        mechanism_drivers: str = "vpp",
        debug: bool = False,
        tied: bool = False,
        etcd_endpoints: tuple[str, ...] = (),
        neutron_agents: bool = False,
        l3: bool = False,
        etcd_hosts: tuple[str, ...] = (),
        etcd_root_password: str | None = None,
    ) -> None:
        """``tied``: every daemon gets SIGTERM if this thread ends (tests, benchmarks).

        ``neutron_agents``: RabbitMQ, neutron-rpc-server, Neutron's DHCP and metadata
        agents; ``l3`` (implies them): the router service plugin and the L3 agent.
        With them the cloud also has the tap host (``TAP_HOST``, where namespace VMs
        live) and a wire (:mod:`.wire`): every host's uplinks cabled to one bridge per
        physnet, so that frames travel between hosts.

        ``etcd_endpoints``: use that etcd (e.g. a test's 3-member
        :class:`~networking_vpp.testing.etcd.EtcdCluster`, which the caller starts,
        kills and stops) instead of starting a single member here.

        etcd runs with auth on (:mod:`.etcd_auth`): the server's identity, and one per
        host of ``hosts`` and ``etcd_hosts`` (hosts whose agents run elsewhere, as the
        fault rig's). ``etcd_root_password``: root's, in an external etcd that has auth
        on already.
        """
        self.layout = Layout(Path(base).resolve())
        # With the agents, the tap host too (namespace VMs), and every uplink is cabled.
        if (neutron_agents or l3) and TAP_HOST not in hosts:
            hosts = (*hosts, TAP_HOST)
        self.hosts = hosts
        self.mechanism_drivers = mechanism_drivers
        self.debug = debug
        self.tied = tied
        self.external_etcd = tuple(etcd_endpoints)
        self.etcd_hosts = tuple(etcd_hosts)
        self.etcd_root_password = etcd_root_password
        self.neutron_agents = neutron_agents or l3
        self.l3 = l3
        self.ports = self.layout.load_ports() or Ports()
        #: seconds each start-up step took, for the tour's report
        self.timings: dict[str, float] = {}

    # --- endpoints -------------------------------------------------------------------
    @property
    def neutron_url(self) -> str:
        return neutron.endpoint(self.ports.neutron)

    @property
    def etcd_url(self) -> str:
        """The first etcd client URL (the only one unless etcd is external)."""
        return self.etcd_endpoints[0]

    @property
    def etcd_endpoints(self) -> list[str]:
        """Every etcd client URL the cloud's components are configured with."""
        if self.ports.etcd_endpoints:
            return list(self.ports.etcd_endpoints)
        return [etcd_server.endpoint(self.ports.etcd_client)]

    def etcd_settings(self, identity: str = etcd_auth.ROOT) -> EtcdSettings:
        """Client settings of the cloud's etcd as ``identity`` (root, the harness's, by
        default; ``etcd_auth.SERVER`` or a host's name for theirs)."""
        return etcd_auth.settings(self.layout, self.etcd_endpoints, identity)

    @property
    def nova_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nova}"

    def host_url(self, host: str) -> str:
        return f"http://127.0.0.1:{self.ports.hosts[host]}"

    def host_ready(self, host: str) -> bool:
        """Whether a fake host's agent has done its first load and resync."""
        return bool(web.get_json(f"{self.host_url(host)}/health", timeout=1).get("ready"))

    @property
    def nova_metadata_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nova_metadata}"

    @property
    def transport_url(self) -> str:
        """oslo.messaging's URL of the cloud's RabbitMQ (``fake:/`` without agents)."""
        # A port is picked for RabbitMQ whether or not it runs: without the agents the
        # API must not wait on a broker that is not there (a network create blocked on
        # notifying the DHCP agent until the client gave up).
        if self.ports.rabbitmq and self.ports.neutron_agents:
            return rabbitmq.transport_url(self.ports.rabbitmq)
        return "fake:/"

    @property
    def server_log(self) -> Path:
        return self.layout.log_file(neutron.NAME)

    def agent_names(self) -> list[str]:
        """Neutron's agents this cloud runs (binaries, PID and log files)."""
        return neutron_agents.names(self.ports.l3) if self.ports.neutron_agents else []

    # --- lifecycle ---------------------------------------------------------------------
    def up(self) -> None:
        """Start every component (stopping any leftover first); undo everything on failure."""
        self.down()
        self.layout.make_dirs()
        external = list(self.external_etcd)
        # The previous start's ports where still free: a restart keeps its addresses.
        self.ports = choose_ports(self.layout.load_ports(), self.hosts, free_port, external)
        self.ports.neutron_agents = self.neutron_agents
        self.ports.l3 = self.l3
        self.layout.save_ports(self.ports)
        try:
            broker = None
            if self.neutron_agents:  # it boots while the rest starts
                broker = rabbitmq.start(
                    self.layout,
                    self.ports.rabbitmq,
                    self.ports.rabbitmq_dist,
                    self.ports.epmd,
                    die_with_parent=self.tied,
                )
            self._step(
                "mariadb",
                lambda: mariadb.start(self.layout, self.ports.mariadb, die_with_parent=self.tied),
            )
            if not external:
                self._step(
                    "etcd",
                    lambda: etcd_server.start(
                        self.layout,
                        self.ports.etcd_client,
                        self.ports.etcd_peer,
                        die_with_parent=self.tied,
                    ),
                )
            self._step("etcd identities", self._set_up_etcd_identities)
            self._step("fake nova", self._start_nova)
            neutron.write_config(
                self.layout,
                self.ports.neutron,
                self.ports.nova,
                ",".join(self.etcd_endpoints),
                self.mechanism_drivers,
                self.debug,
                transport_url=self.transport_url,
                l3=self.l3,
                etcd_identity=etcd_auth.snippet(self.layout, etcd_auth.SERVER),
            )
            self._step("migrations", lambda: neutron.migrate(self.layout))
            # Agents first: a port bound right after the API is up finds live hosts.
            self._step("fake hosts", self._start_hosts)
            if broker is not None:
                self._step("rabbitmq", lambda: rabbitmq.wait_ready(self.ports.rabbitmq, broker))
                # The RPC server loads Neutron while the API does.
                rpc = self._spawn_rpc()
            self._step(
                "neutron api",
                lambda: neutron.start(self.layout, self.ports.neutron, die_with_parent=self.tied),
            )
            if broker is not None:
                self._step("neutron rpc", lambda: self._wait_rpc(rpc))
                self._step("neutron agents", self._start_neutron_agents)
        except BaseException:
            LOG.error(
                "dev cloud start failed; stopping what was started (logs in %s)", self.layout.logs
            )
            self.down()
            raise

    def down(self, purge: bool = False) -> list[str]:
        """Stop every component that runs here; ``purge`` also deletes the directory."""
        stopped = []
        # Neutron's agents first (by PID file, whatever this object was told), and
        # what they left: their namespaces are named after the database's networks.
        for name in neutron_agents.names(l3=True):
            if procs.stop(self.layout.pid_file(name), timeout=15.0):
                stopped.append(name)
        removed = neutron_agents.cleanup(self.layout, self._network_and_router_ids())
        if removed:
            stopped.append(f"{len(removed)} namespaces")
        names = [host_service(h) for h in self._known_hosts()]
        for name in names + [neutron.NAME, neutron.RPC_NAME, NOVA]:
            if procs.stop(self.layout.pid_file(name)):
                stopped.append(name)
        if wire.remove(self.layout.base):
            stopped.append("wire")
        if rabbitmq.stop(self.layout):
            stopped.append(rabbitmq.NAME)
        if etcd_server.stop(self.layout):
            stopped.append(etcd_server.NAME)
        if mariadb.stop(self.layout):
            stopped.append(mariadb.NAME)
        if purge and self.layout.base.exists():
            shutil.rmtree(self.layout.base)
        return stopped

    def running(self) -> dict[str, bool]:
        """Which components have a live process."""
        names = [mariadb.NAME, NOVA, neutron.NAME]
        if not self.ports.etcd_endpoints:  # an external etcd is not ours to report
            names.insert(1, etcd_server.NAME)
        names += [host_service(h) for h in self._known_hosts()]
        if self.ports.neutron_agents:
            names += [rabbitmq.NAME, neutron.RPC_NAME, *self.agent_names()]
        result = {}
        for name in names:
            pid = procs.read_pid(self.layout.pid_file(name))
            result[name] = pid is not None and procs.pid_alive(pid)
        return result

    def _network_and_router_ids(self) -> list[str]:
        """Every network and router id in the cloud's database (empty if it is down)."""
        pid = procs.read_pid(self.layout.pid_file(mariadb.NAME))
        if pid is None or not procs.pid_alive(pid):
            return []
        try:
            conn = mariadb.connect(self.layout, database=mariadb.DB_NAME)
        except Exception as exc:  # noqa: BLE001 - a broken database: clean what we can
            LOG.warning("cannot read the networks and routers from MariaDB: %s", exc)
            return []
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM networks UNION SELECT id FROM routers")
                return [row[0] for row in cur.fetchall()]
        except Exception as exc:  # noqa: BLE001 - e.g. no tables before the migrations
            LOG.warning("cannot read the networks and routers from MariaDB: %s", exc)
            return []
        finally:
            conn.close()

    def _known_hosts(self) -> list[str]:
        return sorted(set(self.hosts) | set(self.ports.hosts))

    def _step(self, name: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        LOG.info("starting %s", name)
        action()
        self.timings[name] = time.monotonic() - started
        LOG.info("%s ready in %.1fs", name, self.timings[name])

    def _set_up_etcd_identities(self) -> None:
        # Before anything talks to etcd: auth on, the server's and every host's identity.
        hosts = sorted({*self.hosts, *self.etcd_hosts})
        steps = etcd_auth.set_up(self.layout, self.etcd_endpoints, hosts, self.etcd_root_password)
        LOG.info("etcd identities: %d changes", len(steps))

    # --- the small services ---------------------------------------------------------------
    def _python(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def _start_nova(self) -> None:
        args = ["--port", str(self.ports.nova)]
        if self.neutron_agents:
            neutron_agents.metadata_secret(self.layout)  # made once per directory
            args += [
                "--metadata-port",
                str(self.ports.nova_metadata),
                "--metadata-secret-file",
                str(self.layout.etc / "metadata_secret"),
            ]
        daemon = procs.spawn(
            NOVA,
            self._python("networking_vpp.testing.fake_nova", *args),
            self.layout.pid_file(NOVA),
            self.layout.log_file(NOVA),
            die_with_parent=self.tied,
        )
        procs.wait_until(
            lambda: web.get_json(f"{self.nova_url}/health", timeout=1),
            15.0,
            "the fake Nova",
            alive=daemon.died,
        )

    def _start_hosts(self) -> None:
        started = {}
        cables: dict[tuple[str, str], str] = {}
        if self.neutron_agents:
            cables = wire.build(self.layout.base, self.hosts, PHYSNETS)
        for host in self.hosts:
            args = ["--host", host, "--http-port", str(self.ports.hosts[host])]
            for endpoint in self.etcd_endpoints:
                args += ["--etcd", endpoint]
            args += ["--etcd-identity", str(etcd_auth.snippet(self.layout, host))]
            for physnet in PHYSNETS:
                args += ["--physnet", f"{physnet}:{UPLINKS[physnet]}"]
                if (host, physnet) in cables:
                    args += ["--nic-wire", f"{UPLINKS[physnet]}={cables[(host, physnet)]}"]
            # The agent takes only sockets in the server's directory (issue 14 item 2).
            args += ["--vhostuser-socket-dir", str(self.layout.vhostuser_dir)]
            if self.neutron_agents:
                # Neutron's agents make real veths (the vpp interface driver).
                args.append("--real-kernel")
            if self.debug:
                args.append("--debug")
            name = host_service(host)
            started[host] = procs.spawn(
                name,
                self._python("networking_vpp.testing.fake_host", *args),
                self.layout.pid_file(name),
                self.layout.log_file(name),
                die_with_parent=self.tied,
            )
        for host, daemon in started.items():
            procs.wait_until(
                functools.partial(self.host_ready, host),
                60.0,
                f"fake host {host}'s agent to converge",
                alive=daemon.died,
            )

    # --- Neutron's RPC server and agents ------------------------------------------------
    def _spawn_rpc(self) -> procs.Daemon:
        return procs.spawn(
            neutron.RPC_NAME,
            neutron.rpc_argv(),
            self.layout.pid_file(neutron.RPC_NAME),
            self.layout.log_file(neutron.RPC_NAME),
            env=neutron.environment(self.layout),
            die_with_parent=self.tied,
        )

    def _wait_rpc(self, daemon: procs.Daemon) -> None:
        procs.wait_until(
            lambda: (
                rabbitmq.queue_consumers(self.ports.rabbitmq, "q-plugin") >= neutron.RPC_WORKERS
            ),
            120.0,
            "neutron-rpc-server's worker to consume q-plugin",
            0.2,
            daemon.died,
        )

    def _start_neutron_agents(self) -> None:
        neutron_agents.write_config(
            self.layout, self.transport_url, self.ports.nova_metadata, self.debug
        )
        started = {
            name: neutron_agents.spawn(self.layout, name, die_with_parent=self.tied)
            for name in self.agent_names()
        }
        for name, daemon in started.items():
            procs.wait_until(
                functools.partial(self.neutron_agent_alive, name),
                90.0,
                f"{name} to report to Neutron",
                0.2,
                daemon.died,
            )

    def neutron_agents_listed(self) -> list[dict[str, Any]]:
        """Neutron's agent list (``GET /v2.0/agents``, as an admin under noauth)."""
        return web.get_json(f"{self.neutron_url}/v2.0/agents", timeout=10)["agents"]

    def neutron_agent_alive(self, binary: str) -> bool:
        """Whether Neutron lists ``binary`` on compute-1 as alive."""
        return any(
            a["binary"] == binary and a["host"] == neutron_agents.HOST and a["alive"]
            for a in self.neutron_agents_listed()
        )
