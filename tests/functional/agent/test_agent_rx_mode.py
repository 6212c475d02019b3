"""vhost-user receive queues off polling (issue 15 item 5).

VPP polls a vhost-user queue unless told otherwise: idle VPP used 14 % of a
core at 1,000 ports and 34 % at 3,000 (real-vpp-facts #7). The agent puts each
port's queues in ``[vpp_agent] vhostuser_rx_mode`` (adaptive by default). VPP
registers the queue only when the VM starts it (plugins/vhost): before that,
``sw_interface_set_rx_mode`` succeeds and keeps nothing, so the agent sets the
mode once the port's link is up, and reads it back at resync
(``sw_interface_rx_placement_dump``) so that a restart changes nothing.
"""

from __future__ import annotations

from networking_vpp.agent.vpp.adapter import VppConnectionError
from networking_vpp.testing.wait import wait_for
from tests.functional.agent.conftest import HostRig, binding, port_of

POLLING, INTERRUPT, ADAPTIVE = 1, 2, 3


def modes(rig: HostRig) -> dict[str, set[int]]:
    """port id -> the modes of its vhost-user interface's receive queues."""
    try:
        by_index = rig.look.dump_rx_modes()
    except VppConnectionError:  # the inspector's connection died with VPP
        rig._look = None
        by_index = rig.look.dump_rx_modes()
    return {
        port_of(i.tag): set(by_index[i.sw_if_index])
        for i in rig.look.dump_interfaces()
        if port_of(i.tag) and i.sw_if_index in by_index
    }


def test_a_vm_s_queue_goes_adaptive_once_it_connects_and_a_restart_leaves_it(
    rig: HostRig,
) -> None:
    agent = rig.start_agent()
    rig.put(binding("p1"))
    rig.wait_state("p1", "down")  # VM not connected: VPP has no queue for it yet
    assert modes(rig) == {}
    assert rig.vpp.calls["sw_interface_set_rx_mode"] == 0
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.wait_state("p1")
    wait_for(lambda: modes(rig) == {"p1": {ADAPTIVE}}, what="p1's queue adaptive")
    assert rig.vpp.calls["sw_interface_set_rx_mode"] == 1
    assert agent.wait_converged(10)

    # The VM goes and comes back: VPP keeps the queue and its mode.
    rig.vpp.vm_disconnect("/run/vpp/vhup1")
    rig.wait_state("p1", "down")
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.wait_state("p1")
    assert agent.wait_converged(10)
    assert modes(rig) == {"p1": {ADAPTIVE}}
    assert rig.vpp.calls["sw_interface_set_rx_mode"] == 1

    rig.stop_agents()
    again = rig.start_agent()
    assert again.wait_converged(10)
    assert again.vpp.mutations == 0  # read back, not set again

    # A restarted VPP polls the reconnected VM's queue again: set anew.
    rig.vpp.restart()
    wait_for(lambda: again.resyncs >= 2, what="resync after VPP restart")
    wait_for(lambda: modes(rig) == {"p1": {ADAPTIVE}}, what="p1's queue adaptive again")


def test_polling_asks_nothing_of_vpp(rig: HostRig) -> None:
    rig.vpp.auto_connect_vms = True
    agent = rig.start_agent(vhostuser_rx_mode="polling")
    rig.put(binding("p1"))
    rig.wait_state("p1")
    assert agent.wait_converged(10)
    assert modes(rig) == {"p1": {POLLING}}
    assert rig.vpp.calls["sw_interface_set_rx_mode"] == 0


def test_interrupt_is_set_and_a_change_of_option_is_applied_at_restart(rig: HostRig) -> None:
    rig.vpp.auto_connect_vms = True
    rig.start_agent(vhostuser_rx_mode="interrupt")
    rig.put(binding("p1"))
    rig.wait_state("p1")
    wait_for(lambda: modes(rig) == {"p1": {INTERRUPT}}, what="p1's queue in interrupt mode")
    rig.stop_agents()
    agent = rig.start_agent(vhostuser_rx_mode="adaptive")
    assert agent.wait_converged(10)
    assert modes(rig) == {"p1": {ADAPTIVE}}
    assert agent.vpp.mutations == 1
