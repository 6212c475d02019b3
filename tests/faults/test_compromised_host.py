"""A compromised compute host (issue 14 item 6): with compute-2's etcd credentials, every
attack of the issue is tried on the fault rig (auth on, the identities of
``networking-vpp etcd-setup``):

* write compute-1's desired state (a forged binding bridging ``eth0``, a new port, a
  deletion) and its reports (a forged ``active`` that would let Nova boot a guest
  before its network exists, its liveness key);
* open every security group cloud-wide (``/global/``: a group's rules, a remote-group
  member, a deletion);
* stall the journal: delete or take the forwarder's ``/election/`` key (plain puts and
  the candidates' own compare-and-put), revoke the leader's lease, write the kick key;
* put a vhost-user socket outside the socket directory, or ``eth0`` as a tap name, into
  its own bindings.

etcd refuses each one. The agent is the second line: the same two bad values written
with the *server's* identity (as by a fooled server) are rejected by compute-2's agent,
which keeps what it programmed and reports the port in error. Throughout, compute-1's
VPP and Neutron's port states stay as they were, and the journal keeps draining.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from networking_vpp.common import model
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdAuthError, EtcdClient
from networking_vpp.testing.devcloud import etcd_auth
from networking_vpp.testing.faultcloud import vppcheck
from networking_vpp.testing.wait import wait_for

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

VICTIM, ATTACKER = "compute-1", "compute-2"


@pytest.fixture
def two_ports(fault_cloud: Any, fault_networks: list[str]) -> Iterator[dict[str, str]]:
    """One ACTIVE port on each host (ids by host); deleted afterwards."""
    api = fault_cloud.api
    made = {}
    try:
        for host in (VICTIM, ATTACKER):
            port = api.create_port(
                network_id=fault_networks[0],
                name=f"compromised-{host}",
                device_owner="compute:nova",
                device_id=str(uuid.uuid4()),
                **{"binding:host_id": host},
            )
            made[host] = port["id"]
        for port_id in made.values():
            wait_active(api, port_id)
        fault_cloud.wait_converged(120)
        yield made
    finally:
        for port_id in made.values():
            api.delete_quietly("ports", port_id)
        fault_cloud.wait_converged(120)


def wait_active(api: Any, port_id: str, timeout: float = 60.0) -> None:
    wait_for(
        lambda: (api.get_port(port_id) or {}).get("status") == "ACTIVE",
        timeout,
        f"port {port_id} ACTIVE",
        interval=0.1,
    )


def vpp_objects(rig: Any, host: str) -> dict[str, Any]:
    """Every VPP object the checks compare (interfaces, bridge domains, ACLs...)."""
    return vppcheck.read_vpp(rig.hosts[host].vpp.socket)


def changed_objects(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The VPP objects that differ, by kind (empty: VPP is as it was)."""
    out = []
    for kind, old in before.items():
        new = after[kind]
        if isinstance(old, dict):
            keys = set(old) | set(new)
            out += [f"{kind}[{k}]" for k in sorted(keys, key=str) if old.get(k) != new.get(k)]
        else:
            out += [f"{kind}: {o}" for o in old if o not in new]
            out += [f"{kind}: {n}" for n in new if n not in old]
    return out


def leases(client: EtcdClient) -> dict[int, list[str]]:
    """Every lease etcd has and its keys, as a host can list them (no permission needed)."""
    found = client.transport.post("lease/leases", {}).get("leases") or []
    out = {}
    for lease in found:
        lease_id = codec.as_int(lease.get("ID"))
        reply = client.transport.post("kv/lease/timetolive", {"ID": lease_id, "keys": True})
        out[lease_id] = [codec.decode_key(k) for k in reply.get("keys") or []]
    return out


class Attacker:
    """Tries writes with one identity and counts what etcd refuses."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self.attempts: list[str] = []
        self.refused: list[str] = []
        self.accepted: list[str] = []

    def attempt(self, what: str, write: Callable[[], object]) -> None:
        self.attempts.append(what)
        try:
            write()
        except EtcdAuthError:
            self.refused.append(what)
            return
        self.accepted.append(what)


def test_compromised_host_is_refused_by_etcd_and_the_agent(fault_cloud, two_ports, figures) -> None:
    rig = fault_cloud
    keys, root = rig.keys, rig.etcd_client
    p1, p2 = two_ports[VICTIM], two_ports[ATTACKER]
    b1_key, b2_key = keys.port(VICTIM, p1), keys.port(ATTACKER, p2)
    b1_raw, b2_raw = root.get(b1_key).value, root.get(b2_key).value  # type: ignore[union-attr]
    b1 = model.decode(model.PortBinding, b1_key, b1_raw)
    b2 = model.decode(model.PortBinding, b2_key, b2_raw)
    sg = b1.security_groups[0]
    election = root.get(keys.election("forwarder"))
    assert election is not None, "no forwarder leader"
    statuses = {p["id"]: p["status"] for p in rig.api.list("ports")}
    vpp1, vpp2 = vpp_objects(rig, VICTIM), vpp_objects(rig, ATTACKER)
    etcd_before = {kv.key: kv.value for kv in root.get_prefix(keys.root_prefix())[0]}

    attacker = Attacker(EtcdClient(rig.dev.etcd_settings(ATTACKER)))
    try:
        _attack(attacker, rig, b1, b2, sg)
        lease_ops = _attack_leases(attacker, election.lease, keys.alive(VICTIM))
    finally:
        attacker.client.close()
    assert attacker.accepted == [], attacker.accepted
    assert attacker.refused == attacker.attempts

    # Nothing the attacker aimed at moved: etcd, compute-1's VPP, Neutron's port states.
    etcd_after = {kv.key: kv.value for kv in root.get_prefix(keys.root_prefix())[0]}
    aimed = {k: v for k, v in etcd_before.items() if not k.startswith(keys.state_prefix())}
    assert {k: etcd_after.get(k) for k in aimed} == aimed
    assert root.get(keys.alive(VICTIM)) is not None
    election_after = root.get(keys.election("forwarder"))
    assert election_after is not None and election_after.value == election.value
    assert changed_objects(vpp1, vpp_objects(rig, VICTIM)) == []
    assert {p["id"]: p["status"] for p in rig.api.list("ports")} == statuses

    # The journal keeps draining: a new port on compute-1 goes ACTIVE.
    started = time.monotonic()
    extra = rig.api.create_port(
        network_id=b1.network_id,
        name="compromised-after",
        device_owner="compute:nova",
        device_id=str(uuid.uuid4()),
        **{"binding:host_id": VICTIM},
    )
    try:
        wait_active(rig.api, extra["id"])
        drained = time.monotonic() - started
        assert rig.audit.pending() == 0 and rig.audit.dead() == 0
    finally:
        rig.api.delete_quietly("ports", extra["id"])

    # The agent's line: the two bad values, written as the server, never reach VPP.
    rejected = _server_writes_bad_values(rig, b2_key, b2, b2_raw, vpp2)

    figures(
        f"compromised host ({ATTACKER}'s etcd credentials): {len(attacker.attempts)} writes "
        f"tried, {len(attacker.refused)} refused by etcd, {len(attacker.accepted)} accepted "
        f"({lease_ops}); 2 bad values written as the server, {rejected} rejected by the "
        f"agent; VPP objects changed: {VICTIM} 0, {ATTACKER} 0 (last good kept); Neutron "
        f"port states changed: 0; journal drained a new port to ACTIVE in {drained:.2f} s"
    )


def _attack(attacker: Attacker, rig: Any, b1: Any, b2: Any, sg: str) -> None:
    keys, c = rig.keys, attacker.client
    eth0 = model.replace(b1, binding_type="tap", vhostuser=None, tap=model.Tap(ifname="eth0"))
    forged = model.PortState(b1.port_id, b1.binding_id, "active")
    open_all = model.SecurityGroup(
        sg,
        rules=tuple(
            model.SecGroupRule(direction=d, ethertype=e)
            for d in ("ingress", "egress")
            for e in ("IPv4", "IPv6")
        ),
    )
    outside = model.replace(b2, vhostuser=model.VhostUser(socket="/etc/" + "vhu" + b2.port_id[:11]))
    tap_eth0 = model.replace(b2, binding_type="tap", vhostuser=None, tap=model.Tap(ifname="eth0"))
    election = keys.election("forwarder")
    put, delete = c.put, c.delete
    tries: list[tuple[str, Callable[[], object]]] = [
        # compute-1's desired state
        (
            f"{VICTIM}'s binding with tap eth0",
            lambda: put(keys.port(VICTIM, b1.port_id), model.encode(eth0)),
        ),
        (
            f"a new port on {VICTIM}",
            lambda: put(keys.port(VICTIM, "forged"), model.encode(eth0)),
        ),
        (f"{VICTIM}'s binding deleted", lambda: delete(keys.port(VICTIM, b1.port_id))),
        # compute-1's reports
        (
            f"{VICTIM}'s port reported active",
            lambda: put(keys.port_state(VICTIM, b1.port_id), model.encode(forged)),
        ),
        (f"{VICTIM}'s liveness deleted", lambda: delete(keys.alive(VICTIM))),
        (f"{VICTIM}'s reports deleted", lambda: c.delete_prefix(keys.host_state_prefix(VICTIM))),
        # every security group
        ("a group opened to all", lambda: put(keys.secgroup(sg), model.encode(open_all))),
        (
            "a remote-group member added",
            lambda: put(keys.remote_group_member(sg, "forged"), '{"version":1}'),
        ),
        ("a group deleted", lambda: delete(keys.secgroup(sg))),
        # the journal's forwarder
        ("the election key deleted", lambda: delete(election)),
        ("the election key taken", lambda: put(election, "attacker:1")),
        (
            "the election key taken as a candidate takes it",
            lambda: c.txn(
                [codec.compare(election, "CREATE", "EQUAL", 0)],
                [codec.put_op(election, "attacker:1")],
                [codec.delete_op(election)],
            ),
        ),
        ("the kick key written", lambda: put(keys.kick("forwarder"), "")),
        # its own bindings
        (
            f"{ATTACKER}'s socket outside the directory",
            lambda: put(keys.port(ATTACKER, b2.port_id), model.encode(outside)),
        ),
        (
            f"{ATTACKER}'s tap eth0",
            lambda: put(keys.port(ATTACKER, b2.port_id), model.encode(tap_eth0)),
        ),
        # beside the layout
        ("a key beside the prefix", lambda: put(keys.prefix + "-other", "x")),
    ]
    for what, write in tries:
        attacker.attempt(what, write)


def _attack_leases(attacker: Attacker, leader_lease: int, victim_alive: str) -> str:
    """Revoke the forwarder's and compute-1's leases (etcd checks the keys they hold).

    A keepalive of someone else's lease is no write and etcd 3.4 checks no permission
    for it: a compromised host could keep a dead leader's key alive. Recorded, not an
    attempt of a write.
    """
    found = leases(attacker.client)
    assert leader_lease in found, "the leader's lease is not listed"
    victim = [lid for lid, held in found.items() if victim_alive in held]
    assert victim, f"no lease holds {victim_alive}"
    attacker.attempt(
        "the forwarder leader's lease revoked",
        lambda: attacker.client.transport.post("lease/revoke", {"ID": leader_lease}),
    )
    attacker.attempt(
        f"{VICTIM}'s liveness lease revoked",
        lambda: attacker.client.transport.post("lease/revoke", {"ID": victim[0]}),
    )
    kept = attacker.client.lease_keepalive(leader_lease) > 0
    return f"a keepalive of the leader's lease {'is' if kept else 'is not'} taken"


def _server_writes_bad_values(
    rig: Any, key: str, binding: Any, good: bytes, vpp_before: dict[str, Any]
) -> int:
    """As the server, put each bad value in compute-2's binding; the agent must reject it."""
    server = EtcdClient(rig.dev.etcd_settings(etcd_auth.SERVER))
    keys, root = rig.keys, rig.etcd_client
    outside = model.VhostUser(socket="/etc/vhu" + binding.port_id[:11])
    bad = [
        ("vhost-user socket '/etc/", model.replace(binding, vhostuser=outside)),
        (
            "tap device 'eth0' refused",
            model.replace(binding, binding_type="tap", vhostuser=None, tap=model.Tap("eth0")),
        ),
    ]
    rejected = 0
    try:
        for reason, value in bad:
            server.put(key, model.encode(value))

            def report(reason: str = reason) -> model.PortState | None:
                kv = root.get(keys.port_state(ATTACKER, binding.port_id))
                state = model.decode(model.PortState, kv.key, kv.value) if kv else None
                return state if state and reason in state.reason else None

            state = wait_for(report, 30, f"the agent's report: {reason}", interval=0.05)
            assert state.status == "error", state
            rejected += 1
            assert changed_objects(vpp_before, vpp_objects(rig, ATTACKER)) == []
        server.put(key, good)  # back as the journal wrote it
    finally:
        server.close()
    wait_for(
        lambda: (rig.api.get_port(binding.port_id) or {}).get("status") == "ACTIVE",
        60,
        "the port back to ACTIVE",
        interval=0.1,
    )
    rig.wait_converged(120)
    return rejected
