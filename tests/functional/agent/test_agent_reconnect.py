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
from tests.functional.agent.conftest import PHYSNETS, HostRig, binding

PORTS = 60
INTERVAL = 0.1


def record_pauses(agent: Agent) -> list[float]:
    """The pauses the agent's VPP watch asks for while VPP is away, from now on."""
    pauses: list[float] = []
    pause = agent._pause

    def recorded(seconds: float) -> None:
        if agent._vpp_away.is_set():
            pauses.append(seconds)
        pause(seconds)

    agent._pause = recorded  # type: ignore[method-assign]
    return pauses


def reported(rig: HostRig) -> bool:
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
    agent = rig.start_agent(vpp_reconnect_interval=INTERVAL)
    pauses = record_pauses(agent)
    for i in range(PORTS):
        rig.put(binding(f"r{i}", mac_address=f"fa:16:3e:00:07:{i:02x}"))
    wait_for(lambda: reported(rig), timeout=30, what="every port reported")

    rig.vpp.stop()  # VPP crashed; it takes its time to come back
    # An exponential backoff from 0.05 s would take ~13 s to make eight tries.
    wait_for(lambda: agent.vpp_probes >= 8, timeout=5, what="eight looks while away")
    probes = agent.vpp_probes
    restarted = time.monotonic()
    rig.vpp.start()
    wait_for(lambda: agent.resyncs >= 2, timeout=10, what="resync after VPP came back")
    connected = time.monotonic()
    wait_for(lambda: reported(rig), timeout=30, what="every port reported again")
    back = time.monotonic()
    print(
        f"\nVPP restart under {PORTS} ports: reconnected {connected - restarted:.3f} s "
        f"after VPP served, every port reported {back - restarted:.3f} s after "
        f"({probes} looks while away, every {INTERVAL} s)"
    )
    # Found by the first look after VPP started (or the one under way as it did).
    assert agent.vpp_probes - probes <= 2
    # While away the agent waited the probe interval between looks, never longer.
    assert pauses and set(pauses) == {INTERVAL}


class Refused:
    """A client factory for a VPP that is not there, counting the tries."""

    def __init__(self) -> None:
        self.tries = 0

    def __call__(self) -> Any:
        self.tries += 1
        raise ConnectionRefusedError(111, "Connection refused")


def test_no_client_is_made_while_the_probe_says_vpp_is_absent(rig: HostRig) -> None:
    """vpp_papi's client loads every API file when made: while VPP's socket
    refuses (the production probe), the agent makes none."""
    factory = Refused()
    there = threading.Event()
    settings = AgentSettings(host=rig.host, physnets=dict(PHYSNETS), vpp_reconnect_interval=0.05)
    agent = Agent(settings, rig.etcd, VppAdapter(factory, probe=there.is_set))
    agent.start()
    rig.agents.append(agent)
    wait_for(lambda: agent.vpp_probes >= 5, what="five looks")
    assert factory.tries == 1  # at start, before any look
    there.set()
    wait_for(lambda: factory.tries == 2, what="a try once the probe says yes")
    wait_for(lambda: agent.vpp_connect_failures == 2, what="the try failed")
