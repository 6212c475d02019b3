"""MAC learning per bridge domain is bounded: entries age out, and a bridge
domain learns at most ``bridge_learn_limit`` MACs, so one port without port
security cannot fill the host's L2 table."""

from __future__ import annotations

from networking_vpp.testing.vpp import Frame

from .conftest import binding

MACS = {"p1": "fa:16:3e:00:40:01", "p2": "fa:16:3e:00:40:02"}


def frame(src_mac: str, dst_mac: str) -> Frame:
    return Frame(src_mac=src_mac, dst_mac=dst_mac, ethertype=0x88B5)  # not IP: no ACL needed


def test_bridge_domains_age_their_macs_and_stop_learning_at_the_limit(rig) -> None:
    rig.vpp.auto_connect_vms = True
    agent = rig.start_agent(bridge_mac_age=5, bridge_learn_limit=8)
    for p, mac in MACS.items():
        rig.put(binding(p, mac_address=mac))
    for p in MACS:
        rig.wait_state(p)
    assert agent.wait_converged(10)
    idx = {p: agent.inventory.ports[p].sw_if_index for p in MACS}
    bd = rig.vpp.state.bds[agent.inventory.networks["net-a"].bd_id]
    assert bd.mac_age == 5 and bd.learn_limit == 8
    now = [6000.0]
    rig.vpp.state.clock = lambda: now[0]
    # p1 (no port security) sends from 20 made-up MACs: 8 are learnt, and
    # frames from the others are still forwarded (VPP forwards, only learning stops).
    for i in range(20):
        assert rig.vpp.passes(frame(f"02:00:00:00:01:{i:02x}", MACS["p2"]), idx["p1"], idx["p2"])
    assert len(bd.fib) == 8
    # Five minutes of silence later the ager has removed them, and learning goes on.
    now[0] += 5 * 60
    assert rig.vpp.passes(frame(MACS["p2"], MACS["p1"]), idx["p2"], idx["p1"])
    assert set(bd.fib) == {MACS["p2"]}
    # An agent restart leaves the bridge domain as it is (mac_age is read back).
    rig.stop_agents()
    second = rig.start_agent(bridge_mac_age=5, bridge_learn_limit=8)
    assert second.wait_converged(10)
    assert second.vpp.mutations == 0


def test_bridge_domains_made_before_mac_ageing_get_it_and_keep_their_members(rig) -> None:
    rig.vpp.auto_connect_vms = True
    rig.start_agent(bridge_mac_age=0)  # as an agent before ageing made them
    rig.put(binding("p1", mac_address=MACS["p1"]))
    rig.wait_state("p1")
    rig.stop_agents()
    (bd,) = rig.vpp.state.bds.values()
    assert bd.mac_age == 0
    members = set(bd.members)
    agent = rig.start_agent(bridge_mac_age=5)
    assert agent.wait_converged(10)
    assert list(rig.vpp.state.bds.values()) == [bd]  # the same bridge domain
    assert bd.mac_age == 5 and set(bd.members) == members
    assert rig.vpp.calls["bridge_domain_set_mac_age"] == 1
