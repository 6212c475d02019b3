"""Real processes for the fault suite: emulated VPP and agents, each its own process.

Every scenario records its figures (operations, faults, lost or reordered
updates, time to converge) with the ``figures`` fixture; they are printed at
the end of the run.

The server-side scenarios share one :class:`FaultCloud` (``fault_cloud``): a
3-member etcd cluster, MariaDB, Neutron's API under uWSGI and two hosts whose
VPP and agent are separate processes. Started once for this package (about 40 s)
and stopped when its last test is done, whatever happened (before the system
tests start their own cloud); each scenario leaves it converged and without its
own ports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The processes live in the package (benchmarks use them too); re-exported for the tests.
from networking_vpp.testing.fault_host import UPLINK, AgentProcess, VppProcess, dump_state

__all__ = ["UPLINK", "AgentProcess", "VppProcess", "dump_state"]

_FIGURES: list[str] = []


@pytest.fixture
def vpp_process(tmp_path: Path) -> Iterator[VppProcess]:
    vpp = VppProcess(tmp_path, call_log=True)  # test_agent_faults counts the agent's calls
    vpp.start()
    yield vpp
    vpp.kill()


@pytest.fixture
def agent_process(tmp_path, etcd_server, vpp_process) -> Iterator[Callable[..., AgentProcess]]:
    made: list[AgentProcess] = []

    def make(host: str = "compute-1", endpoints: list[str] | None = None) -> AgentProcess:
        agent = AgentProcess(tmp_path, host, endpoints or [etcd_server.endpoint], vpp_process)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.kill()


@pytest.fixture(scope="package")
def fault_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The server-side fault rig, up for this package's tests (skips without MariaDB/etcd/uWSGI)."""
    from networking_vpp.testing.devcloud.cloud import missing_prerequisites
    from networking_vpp.testing.faultcloud.rig import FaultCloud

    missing = missing_prerequisites()
    if missing:
        pytest.skip("the fault cloud needs " + ", ".join(missing))
    rig = FaultCloud(tmp_path_factory.mktemp("faultcloud"))
    rig.up()  # stops what it started if it fails
    try:
        yield rig
    finally:
        rig.down()


@pytest.fixture(scope="package")
def fault_networks(fault_cloud: Any) -> list[str]:
    """Two VLAN networks with subnets, on physnet1 and physnet2 (ids)."""
    api = fault_cloud.api
    out = []
    for i, physnet in enumerate(("physnet1", "physnet2")):
        net = api.create(
            "networks",
            "network",
            name=f"fx-net-{i}",
            **{"provider:network_type": "vlan", "provider:physical_network": physnet},
        )
        api.create(
            "subnets", "subnet", network_id=net["id"], cidr=f"10.{60 + i}.0.0/16", ip_version=4
        )
        out.append(net["id"])
    return out


@pytest.fixture
def figures() -> Callable[[str], None]:
    """Record one scenario's figures for the closing summary."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    if _FIGURES:
        terminalreporter.section("fault suite figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
