"""Liveness that means the data plane works (the Kubernetes node Ready condition).

A host is a bind target while ``/state/<host>/alive`` exists: the agent writes
it only once VPP has answered and the first resync (the load from etcd and the
reconcile of what it held) is done, withdraws it while VPP is away and writes
it again after reconnect and resync. A physnet is advertised while its uplink
interface exists in VPP: real VPP creates the uplinks of its startup config
about 2 s after its API serves (real-vpp-facts #4).
"""

from __future__ import annotations

from networking_vpp.common import model
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.wait import wait_for
from tests.functional.agent.conftest import KEYS, UPLINK2, HostRig, binding, mark


def alive(rig: HostRig) -> model.HostAlive | None:
    kv = rig.etcd.get(KEYS.alive(rig.host))
    return None if kv is None else model.decode(model.HostAlive, kv.key, kv.value)


def physnets(rig: HostRig) -> dict[str, str]:
    """physnet -> uplink interface, as the host advertises them."""
    kvs, _ = rig.etcd.get_prefix(KEYS.physnets_prefix(rig.host))
    return {
        value.name: value.interface
        for value in (model.decode(model.HostPhysnet, kv.key, kv.value) for kv in kvs)
    }


def test_alive_waits_for_vpp_and_the_first_resync(rig: HostRig) -> None:
    rig.vpp.auto_connect_vms = True
    rig.put(binding("p1"))
    rig.vpp.stop()  # VPP's API does not serve yet
    agent = rig.start_agent()
    # The agent has loaded etcd and has tried VPP, and failed, twice.
    wait_for(
        lambda: agent._loaded(0) and agent.vpp_connect_failures and agent.vpp_probes >= 2,
        what="VPP refused",
    )
    assert alive(rig) is None
    assert physnets(rig) == {}

    rig.vpp.start()
    wait_for(lambda: alive(rig), what="alive once VPP answers")
    # Alive only after the resync reconciled what etcd held: p1 is in VPP.
    assert mark("net-vpp.port:p1") in rig.tags()
    assert physnets(rig) == {"physnet1": "GigabitEthernet0/8/0", "physnet2": UPLINK2}
    rig.wait_state("p1")


def test_alive_goes_while_vpp_is_away_and_returns_after_resync(rig: HostRig) -> None:
    rig.vpp.auto_connect_vms = True
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    wait_for(lambda: alive(rig), what="alive")
    rig.put(binding("p1"))
    rig.wait_state("p1")

    resyncs = agent.resyncs
    rig.vpp.stop()  # VPP crashed
    wait_for(lambda: alive(rig) is None, what="alive withdrawn while VPP is away")
    rig.vpp.start()  # back, empty
    wait_for(lambda: alive(rig), what="alive again after reconnect")
    assert agent.resyncs > resyncs
    assert mark("net-vpp.port:p1") in rig.tags()  # the resync's work was done first


def test_a_physnet_is_advertised_once_its_uplink_exists(rig: HostRig) -> None:
    rig.vpp = VppEmulator(random_bd_ids=True)  # a VPP whose second NIC is not there yet
    rig.vpp.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    rig.vpp.auto_connect_vms = True
    rig.put(binding("p2", physnet="physnet2", network_id="net-b", segmentation_id=200))
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    wait_for(lambda: alive(rig), what="alive")
    assert physnets(rig) == {"physnet1": "GigabitEthernet0/8/0"}
    assert rig.wait_state("p2", "error")

    # VPP's startup config creates the uplink a little later: an interface
    # event (or the periodic check) makes the agent see it.
    rig.vpp.add_hardware_interface(UPLINK2, "52:54:00:00:09:00")
    wait_for(lambda: "physnet2" in physnets(rig), what="physnet2 advertised")
    assert physnets(rig)["physnet2"] == UPLINK2
    # The port that could not be programmed without it is programmed now.
    rig.wait_state("p2", "active")
