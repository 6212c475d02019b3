"""A dev cloud built for faults: every piece a process the test can kill.

* etcd: a 3-member :class:`~networking_vpp.testing.etcd.EtcdCluster` (members and
  the leader can be killed, or all of them), auth on, with the identities
  ``networking-vpp etcd-setup`` makes: the server's in neutron.conf, each host's for
  its agent, root for the rig's own checks;
* MariaDB, Neutron's API under uWSGI (its workers can be SIGKILLed: the master
  respawns them), the fake Nova: the :class:`DevCloud`, told to use that etcd;
* per host, the emulated VPP and the real agent as two processes
  (:mod:`networking_vpp.testing.fault_host`), so either can die alone;
* the checks: the journal audit (:mod:`.history`), the desired-state oracle
  (:mod:`.oracle`) and the VPP comparison (:mod:`.vppcheck`), joined in
  :meth:`FaultCloud.wait_converged`.

``up()`` undoes what it started when a step fails; ``down()`` stops everything,
whatever state the test left it in. Start and restart etcd members from one
long-lived thread (PR_SET_PDEATHSIG ends them with the thread that started them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from networking_vpp.common import keys
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.devcloud import etcd_auth, neutron, procs
from networking_vpp.testing.devcloud.cloud import DevCloud
from networking_vpp.testing.etcd import ROOT_PASSWORD, EtcdCluster
from networking_vpp.testing.fault_host import AgentProcess, VppProcess
from networking_vpp.testing.faultcloud import vppcheck
from networking_vpp.testing.faultcloud.history import (
    JournalAudit,
    OrderReport,
    check_order,
    etcd_history,
    journal_prefixes,
)
from networking_vpp.testing.faultcloud.neutron_api import NeutronApi, bound_host
from networking_vpp.testing.faultcloud.oracle import DesiredOracle, is_clean

LOG = logging.getLogger(__name__)

HOSTS = ("compute-1", "compute-2")
# physnet -> the uplink NIC every fake host has for it (as the dev cloud's hosts).
UPLINKS = {"physnet1": "GigabitEthernet0/8/0", "physnet2": "GigabitEthernet0/9/0"}
SERVICES_STARTED = re.compile(rb"networking-vpp services started in worker (\d+)")
RESYNC_APPLIED = re.compile(rb"resync: .* (\d+) applied")


@dataclasses.dataclass
class Host:
    """One fake host: its VPP and its agent."""

    name: str
    vpp: VppProcess
    agent: AgentProcess


@dataclasses.dataclass
class Converged:
    """What :meth:`FaultCloud.wait_converged` saw when everything matched."""

    seconds: float
    etcd_keys: int
    bound_ports: int


class FaultCloud:
    """The whole rig in ``base`` (a test's temporary directory)."""

    def __init__(self, base: Path, hosts: tuple[str, ...] = HOSTS, etcd_size: int = 3) -> None:
        self.base = Path(base)
        self.host_names = hosts
        self.etcd = EtcdCluster(etcd_size, auth=True)
        self.cloud: DevCloud | None = None
        self.hosts: dict[str, Host] = {}
        self.keys = keys.KeySpace()
        self.client: EtcdClient | None = None
        self.audit: JournalAudit | None = None
        self.oracle: DesiredOracle | None = None
        self.api: NeutronApi | None = None
        #: VPP reads that failed (the first ones matter for a post-mortem)
        self.read_errors: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------
    def up(self) -> FaultCloud:
        """Start etcd, the dev cloud, the hosts and the checks; all or nothing."""
        try:
            self.etcd.start()
            self.client = EtcdClient(self.etcd.settings(timeout=5.0))
            self.cloud = DevCloud(
                self.base / "cloud",
                hosts=(),
                tied=True,
                etcd_endpoints=tuple(self.etcd.endpoints),
                etcd_hosts=self.host_names,  # their agents run here, as processes
                etcd_root_password=ROOT_PASSWORD,
            )
            self.cloud.up()
            for name in self.host_names:
                self._start_host(name)
            self.api = NeutronApi(self.cloud.neutron_url)
            self.audit = JournalAudit(self.cloud.layout)
            self.audit.install()
            etc = self.cloud.layout.etc
            self.oracle = DesiredOracle(
                [etc / "neutron.conf", etc / "ml2_conf.ini"], self.cloud.layout.log_file("oracle")
            )
            self.oracle.start()
            for name in self.host_names:
                self._wait_alive(name)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop everything that runs, in reverse order; never raises for a dead piece."""
        if self.oracle is not None:
            self.oracle.close()
        if self.audit is not None:
            with contextlib.suppress(Exception):
                self.audit.close()
        for host in self.hosts.values():
            host.agent.kill(signal.SIGTERM)
            host.vpp.kill()
        if self.cloud is not None:
            self.cloud.down()
        if self.api is not None:
            self.api.close()
        if self.client is not None:
            self.client.close()
        self.etcd.stop()

    def _start_host(self, name: str) -> None:
        workdir = self.base / name
        index = self.host_names.index(name) + 1  # host-unique, stable uplink MACs
        macs = {
            nic: f"52:54:00:{index:02x}:{n + 8:02x}:00" for n, nic in enumerate(UPLINKS.values())
        }
        vpp = VppProcess(workdir, macs)
        vpp.start()
        agent = AgentProcess(
            workdir,
            name,
            self.etcd.endpoints,
            vpp,
            UPLINKS,
            etcd_identity=etcd_auth.snippet(self.dev.layout, name),
            vhostuser_socket_dir=str(self.dev.layout.vhostuser_dir),
        )
        self.hosts[name] = Host(name, vpp, agent)
        agent.start()

    def _wait_alive(self, name: str, timeout: float = 60.0) -> None:
        """Wait until the host's agent has registered its liveness key in etcd."""
        client, agent = self.etcd_client, self.hosts[name].agent

        def alive() -> bool:
            return client.get(self.keys.alive(name)) is not None

        def died() -> str | None:
            return None if agent.alive() else f"the agent of {name} died:\n{agent.tail()}"

        procs.wait_until(alive, timeout, f"{name}'s agent to be alive in etcd", alive=died)

    @property
    def dev(self) -> DevCloud:
        """The dev cloud (MariaDB, Neutron, Nova)."""
        assert self.cloud is not None, "FaultCloud not up"
        return self.cloud

    @property
    def etcd_client(self) -> EtcdClient:
        assert self.client is not None, "FaultCloud not up"
        return self.client

    # --- host faults ----------------------------------------------------------------------
    def restart_agent(self, name: str) -> None:
        """SIGKILL the host's agent and start it again at once."""
        host = self.hosts[name]
        host.agent.kill()
        host.agent.start()

    def restart_vpp(self, name: str) -> None:
        """VPP crashes (process SIGKILLed) and starts again, empty."""
        host = self.hosts[name]
        host.vpp.kill()
        host.vpp.start()

    # --- Neutron's API workers ----------------------------------------------------------------
    def uwsgi_master(self) -> int:
        pid = procs.read_pid(self.dev.layout.pid_file(neutron.NAME))
        if pid is None or not procs.pid_alive(pid):
            raise AssertionError("the uWSGI master is not running")
        return pid

    def api_workers(self) -> list[int]:
        """PIDs of the uWSGI workers (children of the master) alive now."""
        master = self.uwsgi_master()
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master and fields[0] != "Z":
                out.append(int(entry))
        return sorted(out)

    def serving_workers(self) -> set[int]:
        """Workers whose networking-vpp services have started (from the API's log)."""
        started = {int(m) for m in SERVICES_STARTED.findall(self.dev.server_log.read_bytes())}
        return started & set(self.api_workers())

    def forwarder_leader_pid(self) -> int | None:
        """The worker that leads the journal forwarder now (from the election key)."""
        kv = self.etcd_client.get(self.keys.election("forwarder"))
        if kv is None:
            return None
        try:
            return int(kv.value.decode().rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return None

    def kill_workers(self, pids: list[int]) -> None:
        """SIGKILL API workers (never the master)."""
        master = self.uwsgi_master()
        for pid in pids:
            assert pid != master, "refusing to kill the uWSGI master"
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def wait_workers_respawned(self, killed: list[int], timeout: float = 90.0) -> float:
        """Wait until uWSGI replaced every killed worker and its services run; seconds taken."""
        started = time.monotonic()

        def respawned() -> bool:
            serving = self.serving_workers()
            return len(serving) >= neutron.API_WORKERS and not serving & set(killed)

        procs.wait_until(respawned, timeout, "uWSGI to respawn the killed API workers", 0.1)
        return time.monotonic() - started

    def resync_repairs(self) -> int:
        """Keys the forwarder's full resyncs had to repair so far (from the API's log).

        A repair means etcd lacked something the database had with no journal row
        pending: a lost journal write. It must stay 0.
        """
        return sum(int(n) for n in RESYNC_APPLIED.findall(self.dev.server_log.read_bytes()))

    # --- convergence -------------------------------------------------------------------------
    def differences(self) -> list[str]:
        """Everything that keeps the cloud from being converged (empty: converged)."""
        assert self.audit is not None and self.oracle is not None and self.api is not None
        out: list[str] = []
        pending = self.audit.pending()
        if pending:
            return [f"{pending} journal rows not forwarded yet"]
        report = self.oracle.check()
        if not is_clean(report):
            for field in ("put", "delete", "skipped", "failed", "problems"):
                for item in report.get(field) or []:
                    out.append(f"etcd vs database: {field} {item}")
            return out
        view = vppcheck.EtcdView(self.etcd_client, self.keys)
        for name, host in self.hosts.items():
            if not host.agent.alive():
                out.append(f"{name}: agent process is dead:\n{host.agent.tail()}")
                continue
            try:
                vpp = vppcheck.read_vpp(host.vpp.socket)
            except Exception as exc:  # noqa: BLE001 - VPP restarting: not converged yet
                out.append(f"{name}: VPP not readable ({exc!r})")
                if len(self.read_errors) < 20:
                    self.read_errors.append(f"{time.strftime('%T')} {name}: {exc!r}")
                continue
            out += vppcheck.host_differences(view, name, vpp, UPLINKS)
        bound = {p for ports in view.bindings.values() for p in ports}
        for port in self.api.list("ports"):
            if port["id"] in bound and port["admin_state_up"] and port["status"] != "ACTIVE":
                out.append(f"port {port['id']} is bound and programmed but {port['status']}")
            if bound_host(port) and port["id"] not in bound:
                out.append(f"port {port['id']} bound on {bound_host(port)} has no etcd binding")
        return out

    def wait_converged(self, timeout: float = 120.0) -> Converged:
        """Wait until etcd equals the database and every VPP equals etcd; raise with the diff."""
        started = time.monotonic()
        last: list[str] = []
        while True:
            last = self.differences()
            if not last:
                view = vppcheck.EtcdView(self.etcd_client, self.keys)
                return Converged(
                    time.monotonic() - started,
                    sum(len(b) for b in view.bindings.values()) + len(view.groups),
                    sum(len(b) for b in view.bindings.values()),
                )
            if time.monotonic() - started > timeout:
                shown = "\n  ".join(last[:30])
                errors = "\n  ".join(self.read_errors[:5])
                raise AssertionError(
                    f"not converged after {timeout:.0f}s ({len(last)} differences):\n  {shown}"
                    + (f"\nfirst VPP read errors:\n  {errors}" if errors else "")
                )
            time.sleep(0.2)  # poll pacing; the wait itself is bounded by the deadline

    def mark(self, timeout: float = 60.0) -> tuple[int, int]:
        """Start of an observation window: ``(last audited journal id, etcd revision)``.

        Taken with the journal drained, so every write audited before the mark is
        in etcd before the revision, and every later one is after it.
        """
        audit = self.audit
        assert audit is not None
        procs.wait_until(lambda: audit.pending() == 0, timeout, "the journal to drain")
        return audit.last_id(), self.etcd_client.current_revision()

    def journal_keys(self) -> dict[str, bytes]:
        """etcd's content of every key only the journal writes."""
        out: dict[str, bytes] = {}
        for prefix in journal_prefixes(self.keys):
            kvs, _ = self.etcd_client.get_prefix(prefix)
            out.update((kv.key, kv.value) for kv in kvs)
        return out

    def check_window(self, mark: tuple[int, int]) -> OrderReport:
        """Committed journal writes since ``mark`` against etcd's history since then."""
        assert self.audit is not None
        after_id, after_revision = mark
        events = etcd_history(self.etcd_client, self.keys, after_revision)
        report = check_order(self.audit.rows(after_id), events, self.journal_keys())
        if report.details:  # the full sequences, for the post-mortem
            path = self.dev.layout.logs / f"order-problems-{after_revision}.json"
            path.write_text(json.dumps(report.details, indent=1))
            report.reordered.append(f"(full sequences in {path})")
        return report

    # --- reporting ---------------------------------------------------------------------------
    def logs(self) -> dict[str, Any]:
        """Where to look after a failure."""
        return {
            "cloud": str(self.dev.layout.logs),
            "hosts": {n: str(h.agent.log) for n, h in self.hosts.items()},
            "etcd": self.etcd.workdir,
        }


__all__ = ["HOSTS", "UPLINKS", "Converged", "FaultCloud", "Host"]
