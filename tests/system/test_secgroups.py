"""Security groups on a real Neutron: API -> journal -> etcd -> agent -> VPP ACLs -> packets.

A web port whose group lets in only SSH from the members of an "admins" group;
an admin port and an outsider port on the same host and network. The etcd
values are what the server journaled, the host's ACL plugin holds the group's
ACL on the web port, and probe frames through the host's emulated dataplane
(the fake host's ``/passes``) get through exactly as Neutron's rules say.
"""

from __future__ import annotations

import ipaddress

import openstack.exceptions
import pytest

from networking_vpp.agent.vpp import types as vpp_types
from networking_vpp.common import model
from networking_vpp.testing.devcloud import web
from networking_vpp.testing.devcloud.procs import wait_until

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

HOST = "compute-1"


@pytest.fixture
def groups(client):  # noqa: ANN001, ANN201
    """Two groups: "admins" (Neutron's default egress rules) and "web" (plus SSH from admins)."""
    net = client.neutron.network
    admins = net.create_security_group(name="sys-admins")
    web_sg = net.create_security_group(name="sys-web")
    net.create_security_group_rule(
        security_group_id=web_sg.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_group_id=admins.id,
    )
    yield admins, web_sg
    # Tests ask for this fixture before make_port: fixtures unwind in reverse,
    # so the ports are deleted by now (Neutron refuses to delete a group in use).
    for sg in (web_sg, admins):
        net.delete_security_group(sg.id, ignore_missing=True)


def _ip(port) -> str:  # noqa: ANN001
    return port.fixed_ips[0]["ip_address"]


def _frame(src, dst, dport: int, **over) -> dict:  # noqa: ANN001
    frame = {
        "src_mac": src.mac_address,
        "dst_mac": dst.mac_address,
        "src_ip": _ip(src),
        "dst_ip": _ip(dst),
        "proto": 6,
        "src_port": 40000,
        "dst_port": dport,
        "tcp_flags": 0x02,  # SYN
    }
    frame.update(over)
    return frame


def _reply(frame: dict, **over) -> dict:
    out = dict(frame)
    out.update(
        src_mac=frame["dst_mac"],
        dst_mac=frame["src_mac"],
        src_ip=frame["dst_ip"],
        dst_ip=frame["src_ip"],
        src_port=frame["dst_port"],
        dst_port=frame["src_port"],
        tcp_flags=0x12,  # SYN+ACK
    )
    out.update(over)
    return out


def passes(devcloud, ingress, egress, frame: dict) -> bool:  # noqa: ANN001
    """Ask the host's emulated dataplane whether ``frame`` gets from one port to the other."""
    answer = web.request_json(
        "POST",
        f"{devcloud.host_url(HOST)}/passes",
        {"ingress": ingress.id, "egress": egress.id, "frame": frame},
    )
    return bool(answer["passes"])


def test_ssh_only_from_the_remote_group(devcloud, client, groups, make_port, vlan_net):
    admins, web_sg = groups
    web_port = make_port(vlan_net, HOST, security_group_ids=[web_sg.id])
    admin = make_port(vlan_net, HOST, security_group_ids=[admins.id])
    outsider = make_port(vlan_net, HOST, security_group_ids=[admins.id])
    for port in (web_port, admin, outsider):
        client.wait_port(port.id, "ACTIVE", timeout=30)
    # The outsider leaves the admins group: its address must leave the ACL too.
    client.neutron.network.update_port(outsider.id, security_group_ids=[web_sg.id])

    # etcd: the journal's values.
    kv = client.etcd.get(client.keys.secgroup(web_sg.id))
    group = model.decode(model.SecurityGroup, kv.key, kv.value)
    ssh = model.SecGroupRule("ingress", "IPv4", 6, 22, 22, remote_group_id=admins.id)
    assert set(group.rules) == {
        ssh,
        model.SecGroupRule("egress", "IPv4"),
        model.SecGroupRule("egress", "IPv6"),
    }
    member_key = client.keys.remote_group_member(admins.id, admin.id)
    kv = client.etcd.get(member_key)
    assert model.decode(model.RemoteGroupMember, kv.key, kv.value).ips == (_ip(admin),)
    wait_until(
        lambda: client.etcd.get(client.keys.remote_group_member(admins.id, outsider.id)) is None,
        15,
        "the outsider's membership of admins deleted",
    )
    assert client.binding(HOST, web_port.id).security_groups == (web_sg.id,)

    # VPP: the group's shared output ACL permits (statefully) SSH from the admin only.
    def ssh_acl():  # noqa: ANN202
        acls = web.get_json(f"{devcloud.host_url(HOST)}/acls")
        tag = vpp_types.Tags.of(HOST).mark(f"{vpp_types.SECGROUP_TAG}{web_sg.id}:out")
        found = [a for a in acls["acls"] if a["tag"] == tag]
        if not found:
            return None
        sources = {
            r["src"] for r in found[0]["rules"] if r["proto"] == 6 and r["dport"] == [22, 22]
        }
        return found[0] if sources == {f"{ipaddress.ip_address(_ip(admin))}/32"} else None

    acl = wait_until(ssh_acl, 20, "web's ACL permitting SSH from the admin only")
    assert all(r["action"] == vpp_types.ACL_PERMIT_REFLECT for r in acl["rules"])
    acls = web.get_json(f"{devcloud.host_url(HOST)}/acls")
    web_itf = next(
        i
        for i in client.vpp(HOST)["interfaces"]
        if i["tag"] == vpp_types.Tags.of(HOST).mark(vpp_types.PORT_TAG + web_port.id)
    )
    assert acl["acl_index"] in acls["interface_acls"][str(web_itf["sw_if_index"])]["output"]

    # Packets: SSH from the admin gets in and its reply gets back; nothing else gets in.
    syn = _frame(admin, web_port, 22)
    assert passes(devcloud, admin, web_port, syn)
    assert passes(devcloud, web_port, admin, _reply(syn))
    assert not passes(devcloud, admin, web_port, _frame(admin, web_port, 80))
    assert not passes(devcloud, outsider, web_port, _frame(outsider, web_port, 22))
    # Anti-spoofing: the outsider cannot borrow the admin's address.
    spoofed = _frame(outsider, web_port, 22, src_ip=_ip(admin), src_port=40001)
    assert not passes(devcloud, outsider, web_port, spoofed)


def test_rules_vpp_cannot_express_are_refused(client, groups):
    _admins, web_sg = groups
    with pytest.raises(openstack.exceptions.BadRequestException) as caught:
        client.neutron.network.create_security_group_rule(
            security_group_id=web_sg.id,
            direction="ingress",
            protocol="sctp",
            port_range_min=5000,
            port_range_max=5000,
        )
    assert "VPP's ACL plugin cannot match ports of protocol sctp (132)" in str(caught.value)
    rules = client.neutron.network.get_security_group(web_sg.id).security_group_rules
    assert not [r for r in rules if r["protocol"] == "sctp"]


def test_a_stateless_group_is_refused_with_the_plain_message(client):
    # As the README's table shows: 409 and our message, not Neutron's "Callback
    # ... failed with ..." wrapping of its security group events.
    plain = (
        "networking-vpp does not support stateless security groups (stateful=false): its "
        "VPP ACLs always let replies back in, which a stateless group would not"
    )
    with pytest.raises(openstack.exceptions.ConflictException) as caught:
        client.neutron.network.create_security_group(name="sys-stateless", stateful=False)
    assert caught.value.details == plain
    assert not list(client.neutron.network.security_groups(name="sys-stateless"))
    group = client.neutron.network.create_security_group(name="sys-stateful")
    try:
        with pytest.raises(openstack.exceptions.ConflictException) as caught:
            client.neutron.network.update_security_group(group.id, stateful=False)
        assert caught.value.details == plain
        assert client.neutron.network.get_security_group(group.id).stateful
    finally:
        client.neutron.network.delete_security_group(group.id, ignore_missing=True)


def test_concurrent_rule_changes_of_one_group_all_reach_etcd(devcloud, client, groups):
    """Each rule change rewrites the group's whole value: none may be lost to a race.

    Two API workers create rules of the same group at once (and delete some):
    the journal's lock and locking read make the last row written hold them all.
    """
    import concurrent.futures

    import openstack

    _admins, web_sg = groups

    def connect():  # noqa: ANN202
        return openstack.connect(
            auth_type="none",
            auth={"endpoint": devcloud.neutron_url},
            network_endpoint_override=devcloud.neutron_url,
        )

    def create(port: int) -> str:
        conn = connect()
        try:
            rule = conn.network.create_security_group_rule(
                security_group_id=web_sg.id,
                direction="ingress",
                protocol="udp",
                port_range_min=port,
                port_range_max=port,
            )
            return rule.id
        finally:
            conn.close()

    ports = list(range(7000, 7012))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = dict(zip(ports, pool.map(create, ports), strict=True))
        doomed = ports[::3]

        def delete(port: int) -> None:
            conn = connect()
            try:
                conn.network.delete_security_group_rule(ids[port])
            finally:
                conn.close()

        list(pool.map(delete, doomed))

    expected = {p for p in ports if p not in doomed}

    def udp_ports() -> set[int] | None:
        kv = client.etcd.get(client.keys.secgroup(web_sg.id))
        group = model.decode(model.SecurityGroup, kv.key, kv.value)
        found = {r.port_range_min for r in group.rules if r.protocol == 17}
        return found if found == expected else None

    wait_until(udp_ports, 20, f"etcd's value of the group to hold UDP ports {sorted(expected)}")
