"""Capacity, known and said (issue 15 item 6).

The agent counts what its ports cost VPP (a secured port's MACIP ACL: 18
memory maps, 146 KB of main heap) against the host's vm.max_map_count and
VPP's main heap: it warns before the limit, reports further ports in error
with the reason and the fix (nothing made in VPP for them), and programs them
once ports go.
"""

from __future__ import annotations

import logging

import pytest

from networking_vpp.agent.capacity import BASE_MAPS, SECURED_MAPS, Capacity, Cost

from .conftest import HostRig, binding

FITTING = 10  # secured ports the injected vm.max_map_count leaves room for
MAX_MAP_COUNT = BASE_MAPS + FITTING * SECURED_MAPS


def secured(i: int, **over: object):
    return binding(
        f"p{i}",
        mac_address=f"fa:16:3e:00:01:{i:02x}",
        port_security_enabled=True,
        security_groups=("sg1",),
        **over,
    )


def test_ports_past_the_limit_are_refused_with_the_fix_then_programmed_when_room_comes(
    rig: HostRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="networking_vpp.agent.capacity")
    agent = rig.start_agent(report_before_vm_connects=True, max_map_count=lambda: MAX_MAP_COUNT)
    for i in range(1, FITTING + 1):
        rig.put(secured(i))
    for i in range(1, FITTING + 1):
        rig.wait_state(f"p{i}")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("memory maps is 8" in w and "sysctl -w vm.max_map_count=" in w for w in warnings)

    rig.put(secured(FITTING + 1))
    state = rig.wait_state(f"p{FITTING + 1}", "error")
    assert "memory maps would run out" in state.reason
    assert "sysctl -w vm.max_map_count=" in state.reason
    assert f"p{FITTING + 1}" not in agent.inventory.ports
    assert len(rig.look.dump_vhost_user()) == FITTING  # nothing made in VPP for it

    # A port without port security has no MACIP ACL: it still fits.
    rig.put(binding("open", mac_address="fa:16:3e:00:02:01"))
    rig.wait_state("open")

    rig.delete("p1")  # room again: the waiting port is programmed
    rig.wait_state(f"p{FITTING + 1}", "active", timeout=15)
    assert len(rig.look.dump_vhost_user()) == FITTING + 1  # p1 gone, the two others made


def test_a_restarted_agent_counts_what_vpp_holds(rig: HostRig) -> None:
    agent = rig.start_agent(report_before_vm_connects=True)
    for i in range(1, 4):
        rig.put(secured(i))
    for i in range(1, 4):
        rig.wait_state(f"p{i}")
    rig.stop_agents()
    # Room for three: the three VPP holds fill it, a fourth is refused.
    agent = rig.start_agent(
        report_before_vm_connects=True, max_map_count=lambda: BASE_MAPS + 3 * SECURED_MAPS
    )
    assert agent.wait_converged(15)
    rig.put(secured(4))
    state = rig.wait_state("p4", "error")
    assert "vm.max_map_count" in state.reason


def test_the_main_heap_and_tap_rings_are_counted_too() -> None:
    capacity = Capacity(main_heap_mb=65, max_map_count=lambda: 10**9, mem_total=lambda: 0)
    # 64 MB are VPP's own: 1 MB is room for 7 secured ports at 146 KB each
    for i in range(7):
        assert capacity.check(f"p{i}", Cost.of("vhostuser", True)) is None
    reason = capacity.check("p7", Cost.of("vhostuser", True))
    assert reason is not None and "main heap" in reason and "main-heap-size" in reason
    taps = Capacity(max_map_count=lambda: 10**9, mem_total=lambda: 100 * 1024 * 1024)
    for i in range(3):
        assert taps.check(f"t{i}", Cost.of("tap", False)) is None  # 28 MB of rings each
    reason = taps.check("t3", Cost.of("tap", False))
    assert reason is not None and "af_packet rings" in reason
    assert taps.release("t0") and taps.check("t3", Cost.of("tap", False)) is None
