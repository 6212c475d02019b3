"""Security groups, anti-spoofing and port security, end to end on the packet walk."""

from __future__ import annotations

import itertools

import pytest

from networking_vpp.common import model
from networking_vpp.testing.vpp import Frame
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, binding

ANY = "0.0.0.0/0"
EGRESS_ALL = model.SecGroupRule("egress", "IPv4")
SSH_FROM_ADMINS = model.SecGroupRule("ingress", "IPv4", 6, 22, 22, remote_group_id="admins")

MACS = {"web": "fa:16:3e:00:10:01", "admin1": "fa:16:3e:00:10:02", "other": "fa:16:3e:00:10:03"}
IPS = {"web": "10.0.0.10", "admin1": "10.0.0.20", "other": "10.0.0.30"}


@pytest.fixture(autouse=True)
def vms_attach(rig):
    rig.vpp.auto_connect_vms = True  # QEMU connects as soon as a socket exists


def put_group(etcd, sg_id, *rules):
    etcd.put(KEYS.secgroup(sg_id), model.encode(model.SecurityGroup(sg_id, tuple(rules))))


def put_member(etcd, sg_id, port_id, *ips):
    etcd.put(
        KEYS.remote_group_member(sg_id, port_id),
        model.encode(model.RemoteGroupMember(port_id, tuple(ips))),
    )


def vm(name, groups, **over):
    fields = dict(
        mac_address=MACS[name],
        fixed_ips=(model.FixedIp(IPS[name], "subnet"),),
        security_groups=tuple(groups),
        port_security_enabled=True,
    )
    fields.update(over)
    return binding(name, **fields)


def tcp(src, dst, dport, sport=40000, **over):
    fields = dict(
        src_mac=MACS[src],
        dst_mac=MACS[dst],
        src_ip=IPS[src],
        dst_ip=IPS[dst],
        proto=6,
        src_port=sport,
        dst_port=dport,
    )
    fields.update(over)
    return Frame(**fields)


def setup_cloud(rig, etcd):
    put_group(etcd, "web", SSH_FROM_ADMINS, EGRESS_ALL)
    put_group(etcd, "admins", EGRESS_ALL)
    put_member(etcd, "admins", "admin1", IPS["admin1"])
    agent = rig.start_agent()
    rig.put(vm("web", ["web"]))
    rig.put(vm("admin1", ["admins"]))
    rig.put(vm("other", ["admins"]))
    for p in MACS:
        rig.wait_state(p)
    assert agent.wait_converged(10)
    idx = {p: agent.inventory.ports[p].sw_if_index for p in MACS}
    return agent, idx


def test_ssh_only_from_remote_group_and_replies_get_back(rig, etcd):
    agent, idx = setup_cloud(rig, etcd)
    vpp = rig.vpp
    syn = tcp("admin1", "web", 22)
    assert vpp.passes(syn, idx["admin1"], idx["web"])
    assert vpp.passes(syn.reply(), idx["web"], idx["admin1"])  # stateful
    assert not vpp.passes(tcp("admin1", "web", 80), idx["admin1"], idx["web"])
    assert not vpp.passes(tcp("other", "web", 22), idx["other"], idx["web"])
    # web's own egress is open, and replies come back although nothing allows
    # ingress to web from "other" on port 5000.
    out = tcp("web", "other", 5000)
    assert not vpp.passes(out, idx["web"], idx["other"])  # "other" takes no ingress
    # Membership change: "other" joins the admins group; its SSH now gets in.
    acl_calls = vpp.calls["acl_add_replace"]
    put_member(etcd, "admins", "other", IPS["other"])
    wait_for(
        lambda: vpp.passes(tcp("other", "web", 22, sport=40001), idx["other"], idx["web"]),
        what="new member allowed",
    )
    assert vpp.calls["acl_add_replace"] == acl_calls + 1  # one replace for the group
    etcd.delete(KEYS.remote_group_member("admins", "other"))
    # A new connection each try: one let through before the change would
    # (as in VPP) live on as a session.
    sports = itertools.count(41000)
    wait_for(
        lambda: (
            not vpp.passes(tcp("other", "web", 22, sport=next(sports)), idx["other"], idx["web"])
        ),
        what="former member refused",
    )


def test_spoofed_mac_or_ip_dropped_and_allowed_address_pair_passes(rig, etcd):
    put_group(etcd, "open", model.SecGroupRule("ingress", "IPv4"), EGRESS_ALL)
    agent = rig.start_agent()
    rig.put(vm("web", ["open"]))
    rig.put(vm("admin1", ["open"]))
    rig.wait_state("web")
    rig.wait_state("admin1")
    agent.wait_converged(10)
    web, adm = (agent.inventory.ports[p].sw_if_index for p in ("web", "admin1"))
    vpp = rig.vpp
    assert vpp.passes(tcp("web", "admin1", 80), web, adm)
    assert not vpp.passes(tcp("web", "admin1", 80, src_ip="10.0.0.99"), web, adm)
    assert not vpp.passes(tcp("web", "admin1", 80, src_mac="fa:16:3e:66:66:66"), web, adm)
    arp = Frame(
        src_mac=MACS["web"],
        dst_mac="ff:ff:ff:ff:ff:ff",
        ethertype=0x0806,
        src_ip="10.0.0.99",
        dst_ip=IPS["admin1"],
    )
    assert not vpp.passes(arp, web, adm)  # ARP spoofing too
    # A VIP as allowed address pair: now the VM may use it.
    pair = model.AddressPair("10.0.0.99/32")
    rig.put(vm("web", ["open"], allowed_address_pairs=(pair,)))
    wait_for(
        lambda: vpp.passes(tcp("web", "admin1", 80, src_ip="10.0.0.99"), web, adm),
        what="allowed address pair",
    )
    assert vpp.passes(arp, web, adm)


def test_port_security_off_passes_everything(rig, etcd):
    put_group(etcd, "closed")  # no rules at all: nothing gets in or out
    agent = rig.start_agent()
    rig.put(vm("web", ["closed"]))
    rig.put(vm("admin1", ["closed"]))
    rig.wait_state("web")
    rig.wait_state("admin1")
    agent.wait_converged(10)
    web, adm = (agent.inventory.ports[p].sw_if_index for p in ("web", "admin1"))
    assert not rig.vpp.passes(tcp("web", "admin1", 80), web, adm)
    for p in ("web", "admin1"):
        rig.put(vm(p, [], port_security_enabled=False))
    wait_for(
        lambda: rig.vpp.passes(tcp("web", "admin1", 80, src_ip="10.9.9.9"), web, adm),
        what="unfiltered",
    )
    assert agent.wait_converged(10)
    # Nothing is left over: the group's ACLs were collected with their last user.
    assert rig.vpp.calls["acl_del"] >= 2
    tags = {a.tag for a in rig.look.dump_acls()}
    assert not any(tag.startswith("net-vpp.sg:") for tag in tags)
    assert rig.look.dump_macips() == []


def test_group_change_for_many_ports_is_one_replace_per_direction(rig, etcd):
    put_group(etcd, "many", EGRESS_ALL)
    agent = rig.start_agent()
    for i in range(30):
        rig.put(
            binding(
                f"p{i}",
                mac_address=f"fa:16:3e:00:20:{i:02x}",
                fixed_ips=(model.FixedIp(f"10.0.1.{i + 1}", "s"),),
                security_groups=("many",),
                port_security_enabled=True,
            )
        )
    wait_for(lambda: all(rig.state(f"p{i}") for i in range(30)), what="30 ports")
    assert agent.wait_converged(10)
    before = dict(rig.vpp.calls)
    put_group(etcd, "many", EGRESS_ALL, model.SecGroupRule("ingress", "IPv4", 6, 443, 443))
    wait_for(lambda: rig.vpp.calls["acl_add_replace"] > before.get("acl_add_replace", 0))
    assert agent.wait_converged(10)
    assert rig.vpp.calls["acl_add_replace"] - before.get("acl_add_replace", 0) == 1
    assert rig.vpp.calls["acl_interface_set_acl_list"] == before["acl_interface_set_acl_list"]


def test_agent_restart_adopts_acls_without_touching_vpp(rig, etcd):
    setup_cloud(rig, etcd)
    rig.stop_agents()
    second = rig.start_agent()
    assert second.wait_converged(10)
    assert second.vpp.mutations == 0


def test_bad_group_value_is_skipped(rig, etcd):
    agent = rig.start_agent()
    etcd.put(KEYS.secgroup("bad"), '{"version": 1, "sg_id": "bad", "rules": [{"direction": "up"}]}')
    put_group(etcd, "ok", EGRESS_ALL)
    rig.put(vm("web", ["ok", "bad"]))
    rig.wait_state("web")
    wait_for(lambda: KEYS.secgroup("bad") in agent.groups.rejected)
    assert "direction" in agent.groups.rejected[KEYS.secgroup("bad")]


HTTP_FROM_ANY = model.SecGroupRule("ingress", "IPv4", 6, 80, 80)


def test_removed_rule_or_member_ends_the_flows_it_allowed(rig, etcd):
    """VPP keeps established sessions across acl_add_replace unless the ACL
    plugin reclassifies them (real-vpp-facts #9): the agent turns that on, so a
    revoked flow stops at its next packet while flows still allowed run on."""
    put_group(etcd, "web", SSH_FROM_ADMINS, HTTP_FROM_ANY, EGRESS_ALL)
    put_group(etcd, "admins", EGRESS_ALL)
    put_member(etcd, "admins", "admin1", IPS["admin1"])
    put_member(etcd, "admins", "other", IPS["other"])
    agent = rig.start_agent()
    for p in MACS:
        rig.put(vm(p, ["web"] if p == "web" else ["admins"]))
    for p in MACS:
        rig.wait_state(p)
    assert agent.wait_converged(10)
    idx = {p: agent.inventory.ports[p].sw_if_index for p in MACS}
    vpp = rig.vpp

    def flow(src, dport, sport):
        """Open a connection to web (SYN there, SYN-ACK back); its next packet."""
        syn = tcp(src, "web", dport, sport=sport, tcp_flags=0x02)
        assert vpp.passes(syn, idx[src], idx["web"])
        assert vpp.passes(syn.reply(tcp_flags=0x12), idx["web"], idx[src])
        return tcp(src, "web", dport, sport=sport, tcp_flags=0x10)

    ssh, http = flow("admin1", 22, 40000), flow("admin1", 80, 40001)
    other_ssh = flow("other", 22, 40002)
    # The SSH rule goes: the group's ACL is replaced in place.
    put_group(etcd, "web", HTTP_FROM_ANY, EGRESS_ALL)
    wait_for(lambda: not vpp.passes(ssh, idx["admin1"], idx["web"]), what="SSH flow ended")
    assert vpp.passes(http, idx["admin1"], idx["web"])  # not concerned: runs on
    assert not vpp.passes(other_ssh, idx["other"], idx["web"])
    # A remote-group member leaving ends the flows its membership allowed.
    put_group(etcd, "web", SSH_FROM_ADMINS, HTTP_FROM_ANY, EGRESS_ALL)
    assert agent.wait_converged(10)
    ssh, other_ssh = flow("admin1", 22, 40010), flow("other", 22, 40011)
    etcd.delete(KEYS.remote_group_member("admins", "other"))
    wait_for(lambda: not vpp.passes(other_ssh, idx["other"], idx["web"]), what="former member cut")
    assert vpp.passes(ssh, idx["admin1"], idx["web"])
    assert vpp.passes(http, idx["admin1"], idx["web"])
