"""Agent-side faults on real processes: agent SIGKILL, VPP restart and crash,
compaction behind a partition, bad values. Each ends with VPP equal to the
desired state and the figures recorded."""

from __future__ import annotations

import random
import time

from networking_vpp.agent.reconcile.isolation import subif_tag
from networking_vpp.agent.vpp.adapter import RX_MODES
from networking_vpp.agent.vpp.types import GUARD_SUB_ID, GUARD_TAG, Tags
from networking_vpp.common import model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.proxy import TcpProxy
from networking_vpp.testing.wait import wait_for
from tests.functional.agent.conftest import KEYS, binding

from .conftest import dump_state

PORT_TAG, NET_TAG = "net-vpp.port:", "net-vpp.net:"
HOST_TAGS = Tags.of("compute-1")


def own(tag: str) -> str:
    """A tag of compute-1's agent as its body (``net-vpp.port:<id>``); others as they are."""
    return HOST_TAGS.ours(tag) or tag


READ_ONLY = ("control_ping", "want_interface_events", "show_version")


def port(i: int, **over) -> model.PortBinding:
    fields = dict(
        mac_address=f"fa:16:3e:01:{i >> 8:02x}:{i & 255:02x}",
        network_id=f"net-{i % 4}",
        segmentation_id=100 + i % 4,
        fixed_ips=(model.FixedIp(f"10.1.{i >> 8}.{i & 255}", "s"),),
    )
    fields.update(over)
    return binding(f"port-{i:04d}", **fields)


def put_ports(etcd: EtcdClient, ports: list[model.PortBinding], host: str = "compute-1") -> None:
    write_batch(etcd, [Put(KEYS.port(host, p.port_id), model.encode(p)) for p in ports])


def reported(etcd: EtcdClient, host: str = "compute-1") -> dict[str, model.PortState]:
    kvs, _ = etcd.get_prefix(KEYS.port_states_prefix(host))
    return {s.port_id: s for s in (model.decode(model.PortState, kv.key, kv.value) for kv in kvs)}


def vpp_matches(vpp, ports: list[model.PortBinding]) -> bool:
    """VPP holds exactly the desired ports, networks and uplinks: nothing orphaned.

    Uplink VLAN sub-interfaces carry the ``:efp`` mark once their egress filter
    is on, and the uplink in use has its (tagged) guard; every port has its
    untagged guard, a default sub-interface 4095 (tenant isolation, e848966).
    """
    state = dump_state(vpp)
    tags = sorted(own(i["tag"]) for i in state["interfaces"] if i["tag"])
    want = sorted(
        [PORT_TAG + p.port_id for p in ports]
        + [subif_tag(v) for v in {p.segmentation_id for p in ports}]
        + ([GUARD_TAG] if ports else [])
    )
    guards = [i for i in state["interfaces"] if i["name"].endswith(f".{GUARD_SUB_ID}")]
    bds = sorted(own(bd["tag"]) for bd in state["bridge_domains"])
    return (
        tags == want
        and len(guards) == len(ports) + (1 if ports else 0)
        and bds == sorted(NET_TAG + n for n in {p.network_id for p in ports})
    )


def converged(etcd, vpp, ports, host="compute-1") -> bool:
    states = reported(etcd, host)
    return (
        all(p.port_id in states and states[p.port_id].binding_id == p.binding_id for p in ports)
        and set(states) == {p.port_id for p in ports}
        and vpp_matches(vpp, ports)
    )


def test_agent_sigkilled_mid_reconcile_converges_without_redundant_calls(
    etcd, vpp_process, agent_process, figures
):
    vpp = vpp_process.handle
    ports = [port(i) for i in range(150)]
    put_ports(etcd, ports)
    agent = agent_process()
    rng = random.Random(7)
    kills = 0
    for _ in range(3):  # killed three times at random points of its work
        agent.start()
        target = vpp.attr("mutations") + rng.randint(20, 200)
        wait_for(
            lambda t=target: vpp.attr("mutations") >= t or converged(etcd, vpp, ports),
            what="agent at work",
        )
        agent.kill()
        kills += 1
    before = dump_state(vpp)
    right = _fully_right_ports(before, ports)
    vpp.take_log()
    start = time.monotonic()
    agent.start()
    wait_for(lambda: converged(etcd, vpp, ports), 60, "converged after the kills")
    took = time.monotonic() - start
    calls = [
        c for c in vpp.take_log() if not c[0].endswith(("_dump", "_get")) and c[0] not in READ_ONLY
    ]
    touched = {c[1].get("sw_if_index", c[1].get("rx_sw_if_index")) for c in calls}
    redundant = touched & right
    assert not redundant, "calls for ports that were already right: " + repr(
        [c for c in calls if c[1].get("sw_if_index", c[1].get("rx_sw_if_index")) in redundant][:10]
    )
    figures(
        f"agent SIGKILL mid-reconcile: {len(ports)} ports, {kills} kills, "
        f"{len(right)} ports already right untouched, {len(calls)} calls to finish, "
        f"lost 0, converged {took:.2f} s after the last restart"
    )


def _fully_right_ports(state: dict, ports: list[model.PortBinding]) -> set[int]:
    """sw_if_index of ports whose interface, MTU, admin state, bridge domain and
    receive queue mode (the default ``adaptive``, set once the VM's link is up,
    225534d; the rig's VMs connect at once) are all right."""
    by_tag = {own(i["tag"]): i for i in state["interfaces"] if i["tag"]}
    bd_tag = {bd["bd_id"]: own(bd["tag"]) for bd in state["bridge_domains"]}
    member_of = {m: bd["bd_id"] for bd in state["bridge_domains"] for m in bd["members"]}
    out = set()
    for p in ports:
        itf = by_tag.get(PORT_TAG + p.port_id)
        if itf is None:
            continue
        idx = itf["sw_if_index"]
        if (
            itf["admin_up"]
            and itf["mtu"] == p.mtu
            and itf["rx_modes"] == [RX_MODES["adaptive"]]
            and bd_tag.get(member_of.get(idx)) == NET_TAG + p.network_id
        ):
            out.add(idx)
    return out


def test_vpp_restart_and_crash_are_reprogrammed(etcd, vpp_process, agent_process, figures):
    ports = [port(i) for i in range(60)]
    put_ports(etcd, ports)
    agent = agent_process()
    agent.start()
    vpp = vpp_process.handle
    wait_for(lambda: converged(etcd, vpp, ports), 60, "first convergence")
    start = time.monotonic()
    vpp.restart()  # VPP restarts: state wiped, API connections dropped
    wait_for(
        lambda: converged(etcd, vpp, ports) and len(dump_state(vpp)["interfaces"]) > 2,
        60,
        "reprogrammed after restart",
    )
    restart_took = time.monotonic() - start
    vpp_process.kill()  # VPP crashes; the socket is gone until it comes back
    start = time.monotonic()
    vpp = vpp_process.start()
    wait_for(lambda: converged(etcd, vpp, ports), 60, "reprogrammed after crash")
    crash_took = time.monotonic() - start
    assert agent.alive(), agent.tail()
    figures(
        f"VPP restart: {len(ports)} ports reprogrammed in {restart_took:.2f} s; "
        f"VPP process killed and started again: reprogrammed in {crash_took:.2f} s; lost 0"
    )


def test_compaction_past_the_agent_revision_behind_a_partition(
    etcd, etcd_server, vpp_process, agent_process, figures
):
    proxy = TcpProxy("127.0.0.1", int(etcd_server.endpoint.rsplit(":", 1)[1]))
    try:
        vpp = vpp_process.handle
        ports = [port(i) for i in range(40)]
        put_ports(etcd, ports)
        agent = agent_process(endpoints=[proxy.endpoint])
        agent.start()
        wait_for(lambda: converged(etcd, vpp, ports), 60, "first convergence")
        proxy.cut()
        ops = 0
        for i in range(40, 60):
            ports.append(port(i))
            put_ports(etcd, [ports[-1]])
            ops += 1
        for gone in ports[:10]:
            etcd.delete(KEYS.port("compute-1", gone.port_id))
            ops += 1
        ports = ports[10:]
        etcd.compact(etcd.current_revision())
        start = time.monotonic()
        proxy.restore()
        wait_for(lambda: converged(etcd, vpp, ports), 60, "converged after compaction")
        figures(
            f"compaction behind a partition: {ops} updates while cut off, 1 compaction, "
            f"lost 0, converged {time.monotonic() - start:.2f} s after the partition healed"
        )
    finally:
        proxy.close()


def test_bad_values_are_skipped_and_the_agent_keeps_serving(
    etcd, vpp_process, agent_process, figures
):
    vpp = vpp_process.handle
    agent = agent_process()
    agent.start()
    good = [port(i) for i in range(10)]
    bad = {
        KEYS.port("compute-1", "junk"): "{not json",
        KEYS.port("compute-1", "v9"): model.encode(port(99))[:-2] + "9}",
        KEYS.port("compute-1", "huge"): '{"version":1,"p":"' + "x" * (1100 * 1024) + '"}',
        KEYS.port("compute-1", "unknown-physnet"): model.encode(
            binding("unknown-physnet", physnet="physnet-nowhere")
        ),
        KEYS.port("compute-2", "other-host"): model.encode(binding("other-host")),
    }
    for key, value in bad.items():
        etcd.put(key, value)
    put_ports(etcd, good)
    wait_for(lambda: converged_with_error(etcd, vpp, good), 30, "good ports served")
    states = reported(etcd)
    assert states["unknown-physnet"].status == "error"
    assert "physnet-nowhere" in states["unknown-physnet"].reason
    kv = wait_for(lambda: etcd.get(KEYS.summary("compute-1")), what="summary")
    summary = model.decode(model.HostSummary, kv.key, kv.value)
    assert summary.rejected_values == 3  # junk, wrong version, oversized
    # A value the agent cannot use reports its port in error with the reason
    # (a845bfd), as a port on an unknown physnet is; the other host's key is not ours.
    for rejected in ("junk", "v9", "huge"):
        assert states[rejected].status == "error", states[rejected]
    assert summary.errors == ("huge", "junk", "unknown-physnet", "v9")
    assert agent.alive(), agent.tail()
    figures(
        f"bad values: {len(bad)} injected (malformed, wrong version, oversized, unknown "
        f"physnet, other host's key); agent kept serving {len(good)} ports; "
        f"{summary.rejected_values} rejected, {len(summary.errors)} ports reported in error"
    )


def converged_with_error(etcd, vpp, ports) -> bool:
    states = reported(etcd)
    ok = all(p.port_id in states and states[p.port_id].status == "active" for p in ports)
    errors = {"junk", "v9", "huge", "unknown-physnet"}
    return ok and errors <= set(states) and vpp_matches(vpp, ports)


def test_etcd_cluster_member_and_leader_kills_while_the_agent_watches(
    etcd_cluster, tmp_path, vpp_process, figures
):
    from networking_vpp.common.etcd.client import EtcdUnavailable

    from .conftest import AgentProcess

    client = EtcdClient(etcd_cluster.settings(timeout=10.0))
    client.delete_prefix("")
    vpp = vpp_process.handle
    agent = AgentProcess(tmp_path, "compute-1", etcd_cluster.endpoints, vpp_process)
    try:
        agent.start()
        ports: list[model.PortBinding] = []
        faults = 0
        start = time.monotonic()
        for round_ in range(6):
            # Kill a follower, the leader, or (every third round) the member the
            # agent most likely talks to, while ports keep coming.
            victim = etcd_cluster.leader_index() if round_ % 2 else (round_ % 3)
            etcd_cluster.kill(victim)
            faults += 1
            for i in range(len(ports), len(ports) + 8):
                ports.append(port(i))
                _put_retrying(client, ports[-1], EtcdUnavailable)
            etcd_cluster.restart(victim)
        last_fault = time.monotonic()
        wait_for(lambda: converged(client, vpp, ports), 90, "converged after member kills")
        took = time.monotonic() - last_fault
        total = last_fault - start
        assert agent.alive(), agent.tail()
        figures(
            f"etcd 3-member cluster: {len(ports)} port puts, {faults} member kills "
            f"(leader {faults // 2} times) over {total:.1f} s, lost 0, "
            f"converged {took:.2f} s after the last"
        )
    finally:
        agent.kill()
        client.close()


def _put_retrying(client: EtcdClient, p: model.PortBinding, unavailable: type) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            client.put(KEYS.port("compute-1", p.port_id), model.encode(p))
            return
        except unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
