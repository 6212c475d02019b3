"""Back at once after a VPP restart (issue 15 item 4).

While VPP is away the agent looks for it every ``vpp_reconnect_interval``
(sub-second, constant: no backoff that grows while VPP takes its seconds to
start), and resyncs as soon as it answers. The figures of a restart under N
ports are printed (``pytest -s``); what is asserted is the behaviour.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter, VppConnectionError
from networking_vpp.testing.wait import wait_for
from tests.functional.agent.conftest import PHYSNETS, SOCKET_DIR, HostRig, binding

PORTS = 60
INTERVAL = 0.1


class CountingFactory:
    """The rig's client factory, recording when each connection was tried."""

    def __init__(self, rig: HostRig) -> None:
        self._rig = rig
        self.lock = threading.Lock()
        self.tries: list[float] = []

    def __call__(self) -> Any:
        with self.lock:
            self.tries.append(time.monotonic())
        return self._rig.vpp.client()

    def since(self, when: float) -> int:
        with self.lock:
            return sum(1 for at in self.tries if at >= when)


def settings(rig: HostRig) -> AgentSettings:
    """The rig's agent settings, probing VPP every INTERVAL while it is away."""
    return AgentSettings(
        host=rig.host,
        physnets=dict(PHYSNETS),
        vpp_ping_interval=0.1,
        vpp_reconnect_interval=INTERVAL,
        summary_interval=0.05,
        vhostuser_socket_dir=SOCKET_DIR,
        make_vhostuser_socket_dir=False,
    )


def start(rig: HostRig, adapter: VppAdapter) -> tuple[Agent, list[float]]:
    """An agent on ``adapter``; returns it and the pauses its VPP watch asked
    for while VPP was away."""
    agent = Agent(settings(rig), rig.etcd, adapter)
    pauses: list[float] = []
    pause = agent._pause

    def recorded(seconds: float) -> None:
        if agent._vpp_away.is_set():
            pauses.append(seconds)
        pause(seconds)

    agent._pause = recorded  # type: ignore[method-assign]
    agent.start()
    rig.agents.append(agent)
    return agent, pauses


def reported(rig: HostRig, agent: Agent) -> bool:
    """Every port programmed in the VPP of now and reported active with it."""
    try:
        bds = {bd.bd_id for bd in rig.look.dump_bridge_domains()}
    except VppConnectionError:  # the inspector's connection died with VPP
        rig._look = None
        return False
    ports = [i for i in rig.look.dump_interfaces() if i.tag.startswith(t.PORT_TAG)]
    if len(ports) != PORTS or not all(i.link_up for i in ports):
        return False
    for i in range(PORTS):
        state = rig.state(f"r{i}")
        if state is None or state.status != "active" or state.programmed is None:
            return False
        if state.programmed.bridge_domain not in bds:
            return False  # still the report of the VPP before
    return True


def test_vpp_restarted_under_ports_is_found_at_the_next_probe(rig: HostRig) -> None:
    rig.vpp.auto_connect_vms = True
    factory = CountingFactory(rig)
    agent, pauses = start(rig, VppAdapter(factory))
    for i in range(PORTS):
        rig.put(binding(f"r{i}", mac_address=f"fa:16:3e:00:07:{i:02x}"))
    wait_for(lambda: reported(rig, agent), timeout=30, what="every port reported")

    rig.vpp.stop()  # VPP crashed; it takes its time to come back
    stopped = time.monotonic()
    # An exponential backoff from 0.05 s would take ~13 s to make eight tries.
    wait_for(lambda: factory.since(stopped) >= 8, timeout=5, what="eight tries while away")
    restarted = time.monotonic()
    tries_before = factory.since(0)
    rig.vpp.start()
    wait_for(lambda: agent.resyncs >= 2, timeout=10, what="resync after VPP came back")
    connected = time.monotonic()
    wait_for(lambda: reported(rig, agent), timeout=30, what="every port reported again")
    back = time.monotonic()
    print(
        f"\nVPP restart under {PORTS} ports: reconnected {connected - restarted:.3f} s "
        f"after VPP served, every port reported {back - restarted:.3f} s after "
        f"({factory.since(stopped) - (factory.since(0) - tries_before)} tries while away)"
    )
    # The first try after VPP started was the one that connected.
    assert factory.since(0) - tries_before == 1
    # While away the agent waited the probe interval between tries, never longer.
    assert pauses and set(pauses) == {INTERVAL}


def test_a_probe_that_says_vpp_is_absent_spares_the_connection(rig: HostRig) -> None:
    """With a probe (VPP's socket accepting, in production), no client is made
    while it says no: vpp_papi's client loads every API file when made."""
    factory = CountingFactory(rig)
    there = threading.Event()
    rig.vpp.stop()
    agent, _ = start(rig, VppAdapter(factory, probe=there.is_set))
    wait_for(lambda: agent.vpp_connect_failures >= 1, what="the first try failed")
    wait_for(lambda: agent.vpp_probes >= 5, what="five probes")
    assert factory.since(0) == 1  # the first try, at start; none while the probe says no
    rig.vpp.start()
    there.set()
    wait_for(lambda: agent.resyncs >= 1, what="resync once the probe says yes")
    assert factory.since(0) == 2
