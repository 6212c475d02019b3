"""The dev cloud: MariaDB, etcd, a fake Nova, Neutron's API and two fake hosts.

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

from networking_vpp.testing.devcloud import etcd_server, mariadb, neutron, procs, web
from networking_vpp.testing.devcloud.layout import HOSTS, PHYSNETS, Layout, Ports
from networking_vpp.testing.etcd import free_port  # the loopback port picker tests share

LOG = logging.getLogger(__name__)

NOVA = "fake-nova"
# Uplink NIC of each physnet on every fake host (PCI-like names, as VPP shows them).
UPLINKS = {"physnet1": "GigabitEthernet0/8/0", "physnet2": "GigabitEthernet0/9/0"}


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run a dev cloud (empty when it can)."""
    missing = []
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
    ) -> None:
        """``tied``: every daemon gets SIGTERM if this thread ends (tests, benchmarks).

        ``etcd_endpoints``: use that etcd (e.g. a test's 3-member
        :class:`~networking_vpp.testing.etcd.EtcdCluster`, which the caller starts,
        kills and stops) instead of starting a single member here.
        """
        self.layout = Layout(Path(base).resolve())
        self.hosts = hosts
        self.mechanism_drivers = mechanism_drivers
        self.debug = debug
        self.tied = tied
        self.external_etcd = tuple(etcd_endpoints)
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

    @property
    def nova_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nova}"

    def host_url(self, host: str) -> str:
        return f"http://127.0.0.1:{self.ports.hosts[host]}"

    def host_ready(self, host: str) -> bool:
        """Whether a fake host's agent has done its first load and resync."""
        return bool(web.get_json(f"{self.host_url(host)}/health", timeout=1).get("ready"))

    @property
    def server_log(self) -> Path:
        return self.layout.log_file(neutron.NAME)

    # --- lifecycle ---------------------------------------------------------------------
    def up(self) -> None:
        """Start every component (stopping any leftover first); undo everything on failure."""
        self.down()
        self.layout.make_dirs()
        external = list(self.external_etcd)
        self.ports = Ports(
            mariadb=free_port(),
            etcd_client=0 if external else free_port(),
            etcd_peer=0 if external else free_port(),
            etcd_endpoints=external,
            neutron=free_port(),
            nova=free_port(),
            hosts={h: free_port() for h in self.hosts},
        )
        self.layout.save_ports(self.ports)
        try:
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
            self._step("fake nova", self._start_nova)
            neutron.write_config(
                self.layout,
                self.ports.neutron,
                self.ports.nova,
                ",".join(self.etcd_endpoints),
                self.mechanism_drivers,
                self.debug,
            )
            self._step("migrations", lambda: neutron.migrate(self.layout))
            # Agents first: a port bound right after the API is up finds live hosts.
            self._step("fake hosts", self._start_hosts)
            self._step(
                "neutron api",
                lambda: neutron.start(self.layout, self.ports.neutron, die_with_parent=self.tied),
            )
        except BaseException:
            LOG.error(
                "dev cloud start failed; stopping what was started (logs in %s)", self.layout.logs
            )
            self.down()
            raise

    def down(self, purge: bool = False) -> list[str]:
        """Stop every component that runs here; ``purge`` also deletes the directory."""
        stopped = []
        for name in [host_service(h) for h in self._known_hosts()] + [neutron.NAME, NOVA]:
            if procs.stop(self.layout.pid_file(name)):
                stopped.append(name)
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
        result = {}
        for name in names:
            pid = procs.read_pid(self.layout.pid_file(name))
            result[name] = pid is not None and procs.pid_alive(pid)
        return result

    def _known_hosts(self) -> list[str]:
        return sorted(set(self.hosts) | set(self.ports.hosts))

    def _step(self, name: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        LOG.info("starting %s", name)
        action()
        self.timings[name] = time.monotonic() - started
        LOG.info("%s ready in %.1fs", name, self.timings[name])

    # --- the small services ---------------------------------------------------------------
    def _python(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def _start_nova(self) -> None:
        daemon = procs.spawn(
            NOVA,
            self._python("networking_vpp.testing.fake_nova", "--port", str(self.ports.nova)),
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
        for host in self.hosts:
            args = ["--host", host, "--http-port", str(self.ports.hosts[host])]
            for endpoint in self.etcd_endpoints:
                args += ["--etcd", endpoint]
            for physnet in PHYSNETS:
                args += ["--physnet", f"{physnet}:{UPLINKS[physnet]}"]
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
