"""The packet walk through the emulated ACL plugin: first match, default deny,
ports and ICMP, IPv4 and IPv6, permit+reflect sessions per interface and
direction, and MACIP anti-spoofing for IP and ARP."""

from __future__ import annotations

import dataclasses

import pytest

from networking_vpp.testing.vpp import Frame, L2Features

NO_INDEX = 0xFFFFFFFF
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
SYN, ACK = 0x02, 0x10
ETH_IP6, ETH_ARP = 0x86DD, 0x0806
MAC = {"a": "fa:16:3e:00:00:0a", "b": "fa:16:3e:00:00:0b", "c": "fa:16:3e:00:00:0c"}
IP = {"a": "10.0.0.10", "b": "10.0.0.11", "c": "10.0.0.12"}
IP6 = {"a": "2001:db8::a", "b": "2001:db8::b", "c": "2001:db8::c"}


def rule(action=1, src="0.0.0.0/0", dst="0.0.0.0/0", proto=0, sport=(0, 65535), dport=(0, 65535)):
    return {
        "is_permit": action,
        "src_prefix": src,
        "dst_prefix": dst,
        "proto": proto,
        "srcport_or_icmptype_first": sport[0],
        "srcport_or_icmptype_last": sport[1],
        "dstport_or_icmpcode_first": dport[0],
        "dstport_or_icmpcode_last": dport[1],
    }


class Host:
    """Three VM ports (a, b, c) on one bridge domain, and helpers to filter them."""

    def __init__(self, server) -> None:
        self.vpp = vpp = server.emulator
        client = server.connect("wiring")
        self.api = api = client.api
        self.port = {}
        for name in "abc":
            sock = f"/run/vpp/{name}"
            sw = api.create_vhost_user_if_v2(is_server=True, sock_filename=sock).sw_if_index
            vpp.vm_connect(sock)
            assert api.sw_interface_set_flags(sw_if_index=sw, flags=1).retval == 0
            assert api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=1).retval == 0
            self.port[name] = sw

    def acl(self, *rules, index=NO_INDEX):
        reply = self.api.acl_add_replace(acl_index=index, count=len(rules), r=list(rules))
        assert reply.retval == 0, reply
        return reply.acl_index

    def apply(self, port, inputs=(), outputs=()):
        acls = [*inputs, *outputs]
        reply = self.api.acl_interface_set_acl_list(
            sw_if_index=self.port[port], count=len(acls), n_input=len(inputs), acls=acls
        )
        assert reply.retval == 0

    def macip(self, port, *rules):
        index = self.api.macip_acl_add(count=len(rules), r=list(rules)).acl_index
        reply = self.api.macip_acl_interface_add_del(sw_if_index=self.port[port], acl_index=index)
        assert reply.retval == 0
        return index

    def passes(self, frame, src, dst):
        return self.vpp.passes(frame, self.port[src], self.port[dst])


def tcp(src="a", dst="b", sport=40000, dport=22, flags=SYN, **changes):
    frame = Frame(
        src_mac=MAC[src],
        dst_mac=MAC[dst],
        src_ip=IP[src],
        dst_ip=IP[dst],
        proto=TCP,
        src_port=sport,
        dst_port=dport,
        tcp_flags=flags,
    )
    return dataclasses.replace(frame, **changes)


def udp(src="a", dst="b", sport=5000, dport=53, **changes):
    return tcp(src, dst, sport, dport, proto=UDP, flags=0, **changes)


def icmp(src="a", dst="b", icmp_type=8, code=0, v6=False):
    ips = IP6 if v6 else IP
    return Frame(
        src_mac=MAC[src],
        dst_mac=MAC[dst],
        ethertype=ETH_IP6 if v6 else 0x0800,
        src_ip=ips[src],
        dst_ip=ips[dst],
        proto=ICMP6 if v6 else ICMP,
        icmp_type=icmp_type,
        icmp_code=code,
    )


def tcp6(src="a", dst="b", sport=40000, dport=22):
    return dataclasses.replace(
        tcp(src, dst, sport, dport), ethertype=ETH_IP6, src_ip=IP6[src], dst_ip=IP6[dst]
    )


def arp(src="a", sender_ip=None, sender_mac=None):
    return Frame(
        src_mac=MAC[src],
        dst_mac="ff:ff:ff:ff:ff:ff",
        ethertype=ETH_ARP,
        src_ip=sender_ip or IP[src],
        dst_ip=IP["b"],
        arp_sender_mac=sender_mac,
    )


@pytest.fixture
def host(vpp_api):
    return Host(vpp_api)


# --- stateless matching ---
def test_without_acls_everything_passes_and_walk_says_where(host):
    assert host.passes(tcp(), "a", "b")
    assert host.vpp.passes(tcp(), host.port["a"], "VirtualEthernet0/0/1")  # by name too
    assert not host.passes(tcp(), "a", "a")


def test_first_match_wins_and_no_match_is_deny(host):
    deny_ssh_then_all = host.acl(rule(0, proto=TCP, dport=(22, 22)), rule(1))
    host.apply("a", inputs=[deny_ssh_then_all])
    assert not host.passes(tcp(dport=22), "a", "b")
    assert host.passes(tcp(dport=80), "a", "b")
    assert host.vpp.features.verdicts[-1].by == "rule"
    # The other order: the permit matches first.
    host.acl(rule(1), rule(0, proto=TCP, dport=(22, 22)), index=deny_ssh_then_all)
    assert host.passes(tcp(dport=22), "a", "b")
    # An ACL that matches nothing denies: the default action.
    only_udp = host.acl(rule(1, proto=UDP))
    host.apply("a", inputs=[only_udp])
    assert not host.passes(tcp(), "a", "b")
    verdict = host.vpp.features.verdicts[-1]
    assert (verdict.by, verdict.permit, verdict.is_input) == ("default", False, True)
    # An ACL without rules denies all IP too.
    host.apply("a", inputs=[host.acl()])
    assert not host.passes(udp(), "a", "b")


def test_acls_in_list_order_then_deny(host):
    permit_web = host.acl(rule(1, proto=TCP, dport=(80, 80)))
    deny_all = host.acl(rule(0))
    permit_all = host.acl(rule(1))
    host.apply("a", inputs=[permit_web, deny_all, permit_all])
    assert host.passes(tcp(dport=80), "a", "b")
    assert not host.passes(tcp(dport=81), "a", "b")
    verdict = host.vpp.features.verdicts[-1]
    assert (verdict.acl_index, verdict.rule_index) == (deny_all, 0)


def test_port_ranges_protocols_and_prefixes(host):
    host.apply(
        "a",
        inputs=[
            host.acl(
                rule(1, proto=TCP, sport=(1024, 65535), dport=(1000, 2000)),
                rule(1, proto=UDP, dst="10.0.0.11/32", dport=(53, 53)),
                rule(1, src="10.0.0.10/32", dst="10.0.0.12/32", proto=0, dport=(7, 7)),
            )
        ],
    )
    assert not host.passes(tcp(dport=999), "a", "b")
    assert host.passes(tcp(dport=1000), "a", "b") and host.passes(tcp(dport=2000), "a", "b")
    assert not host.passes(tcp(dport=2001, sport=50000), "a", "b")
    assert not host.passes(tcp(dport=1500, sport=80), "a", "b")
    assert host.passes(udp(dport=53), "a", "b")
    assert not host.passes(udp(dport=53, dst_ip="10.0.0.13"), "a", "b")  # dst prefix
    assert not host.passes(udp(dport=54), "a", "b")
    assert not host.passes(udp(dport=53, dst="c", src_ip="10.0.0.9"), "a", "c")  # src prefix
    # proto 0 is any protocol, and the ports are not looked at.
    gre = Frame(src_mac=MAC["a"], dst_mac=MAC["c"], src_ip=IP["a"], dst_ip=IP["c"], proto=47)
    assert host.passes(gre, "a", "c")
    assert host.passes(udp(dport=9, dst="c"), "a", "c")


def test_a_prefix_left_out_is_zero_length_and_matches_all(host):
    bare = {"is_permit": 1, "src_prefix": "10.0.0.10/32", "proto": TCP}  # no dst, no ports
    host.apply("a", inputs=[host.acl(bare)])
    (d,) = host.api.acl_dump(acl_index=0)
    assert str(d.r[0].dst_prefix) == "0.0.0.0/0"
    assert not host.passes(tcp(), "a", "b")  # ports 0-0 left out: only port 0 matches
    assert host.passes(tcp(sport=0, dport=0), "a", "b")


def test_tcp_flags(host):
    syn_only = {**rule(1, proto=TCP), "tcp_flags_mask": SYN | ACK, "tcp_flags_value": SYN}
    host.apply("a", inputs=[host.acl(syn_only)])
    assert host.passes(tcp(flags=SYN), "a", "b")
    assert not host.passes(tcp(flags=SYN | ACK), "a", "b")
    assert not host.passes(tcp(flags=ACK), "a", "b")


def test_icmp_type_and_code_are_the_port_ranges(host):
    echo = rule(1, proto=ICMP, sport=(8, 8), dport=(0, 0))
    unreachable = rule(1, proto=ICMP, sport=(3, 3), dport=(0, 15))
    host.apply("a", inputs=[host.acl(echo, unreachable)])
    assert host.passes(icmp(icmp_type=8), "a", "b")
    assert not host.passes(icmp(icmp_type=8, code=1), "a", "b")
    assert not host.passes(icmp(icmp_type=0), "a", "b")
    assert host.passes(icmp(icmp_type=3, code=13), "a", "b")


def test_ipv6_rules_match_ipv6_only(host):
    ns = rule(1, src="::/0", dst="::/0", proto=ICMP6, sport=(135, 136))
    ssh6 = rule(1, src="2001:db8::/64", dst="2001:db8::b/128", proto=TCP, dport=(22, 22))
    any4 = rule(1)
    host.apply("a", inputs=[host.acl(ns, ssh6)])
    assert host.passes(icmp(icmp_type=135, v6=True), "a", "b")
    assert not host.passes(icmp(icmp_type=128, v6=True), "a", "b")
    assert host.passes(tcp6(dport=22), "a", "b")
    assert not host.passes(tcp6(dst="c", dport=22), "a", "c")
    assert not host.passes(tcp(dport=22), "a", "b")  # IPv4: no IPv4 rule
    host.apply("a", inputs=[host.acl(any4)])
    assert not host.passes(tcp6(), "a", "b")  # an IPv4 rule never matches IPv6
    # A rule's family is its source prefix's; a destination of length 0 matches anything.
    host.apply("a", inputs=[host.acl(rule(1, src="2001:db8::/32"))])  # dst 0.0.0.0/0
    assert host.passes(tcp6(), "a", "b")


def test_non_ip_frames_pass_acls(host):
    host.apply("a", inputs=[host.acl(rule(0))], outputs=[host.acl(rule(0))])
    assert host.passes(arp(), "a", "b")
    lldp = Frame(src_mac=MAC["a"], dst_mac="01:80:c2:00:00:0e", ethertype=0x88CC)
    assert host.passes(lldp, "a", "b")
    assert not host.passes(tcp(), "a", "b")
    assert not host.passes(tcp(src="b", dst="a"), "b", "a")  # output of a


def test_an_ip_frame_without_addresses_cannot_cross_an_acl(host):
    host.apply("a", inputs=[host.acl(rule(1))])
    with pytest.raises(ValueError, match="src_ip"):
        host.vpp.walk(Frame(src_mac=MAC["a"], dst_mac=MAC["b"]), host.port["a"])


def test_output_acls_filter_frames_leaving_by_the_port(host):
    host.apply("b", outputs=[host.acl(rule(1, proto=TCP, dport=(80, 80)))])
    assert host.passes(tcp(dport=80), "a", "b")
    assert not host.passes(tcp(dport=22), "a", "b")
    out = host.vpp.walk(tcp(dst="c", dport=22), host.port["a"])  # floods: c gets it, b not
    assert [e.sw_if_index for e in out] == [host.port["c"]]


def test_replacing_an_acl_applies_at_once_everywhere(host):
    shared = host.acl(rule(1))
    host.apply("a", inputs=[shared])
    host.apply("c", inputs=[shared])
    assert host.passes(tcp(), "a", "b") and host.passes(tcp(src="c"), "c", "b")
    host.acl(rule(0), index=shared)
    assert not host.passes(tcp(), "a", "b") and not host.passes(tcp(src="c"), "c", "b")


# --- permit+reflect sessions ---
def vm_port(host, port, egress, ingress):
    """As networking-vpp applies security groups: VM egress = VPP input."""
    host.apply(port, inputs=[host.acl(*egress)], outputs=[host.acl(*ingress)])


def test_replies_to_a_connection_the_vm_opened_come_in(host):
    vm_port(host, "a", egress=[rule(2)], ingress=[rule(2, proto=TCP, dport=(22, 22))])
    syn = tcp(sport=40000, dport=443)
    assert host.passes(syn, "a", "b")
    assert len(host.vpp.sessions) == 1
    reply = syn.reply(tcp_flags=SYN | ACK)
    assert host.passes(reply, "b", "a")  # leaves by a's output: the session's reverse key
    assert host.vpp.features.verdicts[-1].by == "session"
    assert host.passes(syn, "a", "b")  # more of the flow: the session's key
    assert not host.passes(dataclasses.replace(reply, dst_port=40001), "b", "a")  # not it
    assert not host.passes(tcp(src="b", dst="a", dport=443), "b", "a")  # not a reply
    assert host.passes(tcp(src="b", dst="a", dport=22), "b", "a")  # the ingress rule
    host.vpp.sessions.clear()  # as an idle timeout would
    assert not host.passes(reply, "b", "a")


def test_a_session_made_on_output_lets_the_replies_in(host):
    # Ingress reflect (VPP output), egress permits nothing.
    vm_port(host, "a", egress=[rule(0)], ingress=[rule(2, proto=UDP, dport=(53, 53))])
    query = udp(src="b", dst="a", dport=53)
    assert not host.passes(query.reply(), "a", "b")  # no session yet
    assert host.passes(query, "b", "a")
    assert host.passes(query.reply(), "a", "b")
    [session] = list(host.vpp.sessions)
    assert (session.sw_if_index, session.is_input) == (host.port["a"], False)


def test_sessions_belong_to_their_interface_and_direction(host):
    for port in "ac":
        vm_port(host, port, egress=[rule(2)], ingress=[])
    syn = tcp(src="a", dst="b", dport=443)
    assert host.passes(syn, "a", "b")
    # The same flow's reply towards c (another port with the same ACLs) is denied.
    stray = dataclasses.replace(syn.reply(), dst_mac=MAC["c"])
    assert not host.passes(stray, "b", "c")
    # A frame of the flow's own direction leaving a (not entering it) is denied too.
    assert not host.passes(tcp(src="b", dst="a", sport=40000, dport=443), "b", "a")


def test_icmp_sessions_use_the_reply_type(host):
    icmp6_reflect = rule(2, src="::/0", dst="::/0", proto=ICMP6)
    vm_port(host, "a", egress=[rule(2, proto=ICMP), icmp6_reflect], ingress=[])
    assert host.passes(icmp(icmp_type=8), "a", "b")
    assert host.passes(icmp(src="b", dst="a", icmp_type=0), "b", "a")  # echo reply
    assert not host.passes(icmp(src="b", dst="a", icmp_type=3), "b", "a")
    assert not host.passes(icmp(src="b", dst="a", icmp_type=8), "b", "a")
    assert host.passes(icmp(icmp_type=128, v6=True), "a", "b")
    assert host.passes(icmp(src="b", dst="a", icmp_type=129, v6=True), "b", "a")
    # A message that is no request makes a session without a reverse key.
    before = len(host.vpp.sessions)
    assert host.passes(icmp(dst="c", icmp_type=3, code=1), "a", "c")
    assert len(host.vpp.sessions) == before + 1
    assert not host.passes(icmp(src="c", dst="a", icmp_type=3, code=1), "c", "a")


def test_ipv6_sessions(host):
    vm_port(host, "a", egress=[rule(2, src="::/0", dst="::/0")], ingress=[])
    assert host.passes(tcp6(), "a", "b")
    assert host.passes(tcp6().reply(), "b", "a")


def test_permit_without_reflect_makes_no_session(host):
    vm_port(host, "a", egress=[rule(1)], ingress=[])
    assert host.passes(tcp(), "a", "b")
    assert len(host.vpp.sessions) == 0
    assert not host.passes(tcp().reply(), "b", "a")


def test_sessions_survive_a_replace_but_not_a_new_acl_list(host):
    egress = host.acl(rule(2))
    host.apply("a", inputs=[egress], outputs=[host.acl()])
    syn = tcp(dport=443)
    assert host.passes(syn, "a", "b")
    host.acl(rule(0), index=egress)  # VPP does not reclassify sessions by default
    assert host.passes(syn.reply(), "b", "a") and host.passes(syn, "a", "b")
    assert not host.passes(tcp(dport=444), "a", "b")
    host.apply("a", inputs=[egress])  # the output list changed: the sessions go
    assert len(host.vpp.sessions) == 0
    assert not host.passes(syn, "a", "b")


def test_deleting_the_interface_or_restarting_drops_sessions(vpp, host):
    vm_port(host, "a", egress=[rule(2)], ingress=[])
    vm_port(host, "c", egress=[rule(2)], ingress=[])
    assert host.passes(tcp(), "a", "b") and host.passes(tcp(src="c"), "c", "b")
    assert len(vpp.sessions) == 2
    assert host.api.delete_vhost_user_if(sw_if_index=host.port["c"]).retval == 0
    assert len(vpp.sessions) == 1
    assert vpp.sessions.clear(host.port["a"]) == 1
    assert host.passes(tcp(), "a", "b")
    vpp.restart()
    assert len(vpp.sessions) == 0


def test_a_test_may_replace_the_features(vpp, host):
    host.apply("a", inputs=[host.acl(rule(0))])
    vpp.features = L2Features()  # bypasses the ACL plugin
    assert host.passes(tcp(), "a", "b")


# --- MACIP ---
def mrule(mac, ip, mask="ff:ff:ff:ff:ff:ff", action=1):
    return {"is_permit": action, "src_mac": mac, "src_mac_mask": mask, "src_prefix": ip}


def test_macip_drops_spoofed_ip_and_arp(host):
    host.macip("a", mrule(MAC["a"], IP["a"] + "/32"), mrule(MAC["a"], "fe80::a/128"))
    assert host.passes(tcp(), "a", "b")
    assert not host.passes(tcp(src_ip="10.0.0.99"), "a", "b")  # spoofed IP
    assert not host.passes(tcp(src_mac="fa:16:3e:00:00:99"), "a", "b")  # spoofed MAC
    assert host.passes(arp(), "a", "b")
    assert not host.passes(arp(sender_ip="10.0.0.99"), "a", "b")
    assert not host.passes(arp(sender_mac="fa:16:3e:00:00:99"), "a", "b")
    ll = dataclasses.replace(tcp6(), src_ip="fe80::a", dst_ip="fe80::b")
    assert host.passes(ll, "a", "b")
    assert not host.passes(tcp6(), "a", "b")  # 2001:db8::a is not allowed
    lldp = Frame(src_mac=MAC["a"], dst_mac="01:80:c2:00:00:0e", ethertype=0x88CC)
    assert not host.passes(lldp, "a", "b")  # non-IP, non-ARP: no table hit
    assert host.vpp.features.verdicts[-1].by == "macip"
    # MACIP is input only: anything may go to a.
    assert host.passes(tcp(src="b", dst="a", src_ip="192.0.2.1"), "b", "a")


def test_macip_without_ipv4_rules_drops_ipv4_and_arp(host):
    host.macip("a", mrule(MAC["a"], "2001:db8::a/128"))
    assert host.passes(tcp6(), "a", "b")
    assert not host.passes(tcp(), "a", "b") and not host.passes(arp(), "a", "b")


def test_macip_masks_prefixes_and_deny_rules(host):
    host.macip(
        "a",
        mrule("fa:16:3e:00:00:00", "10.0.0.0/24", mask="ff:ff:ff:00:00:00"),
        mrule(MAC["a"], "0.0.0.0/32"),  # DHCP discover
    )
    assert host.passes(tcp(src_mac="fa:16:3e:12:34:56", src_ip="10.0.0.200"), "a", "b")
    assert not host.passes(tcp(src_mac="fa:16:3f:00:00:0a"), "a", "b")
    assert not host.passes(tcp(src_ip="10.0.1.10"), "a", "b")
    assert host.passes(tcp(src_ip="0.0.0.0"), "a", "b")


def test_macip_looks_in_the_most_specific_table_first(host):
    # Not first-match: the /32 exact-MAC deny is in a more specific table than the permit.
    host.macip(
        "a",
        mrule("00:00:00:00:00:00", "10.0.0.0/24", mask="00:00:00:00:00:00"),
        mrule(MAC["a"], IP["a"] + "/32", action=0),
    )
    assert not host.passes(tcp(), "a", "b")
    assert host.passes(tcp(src_ip="10.0.0.20"), "a", "b")


def test_macip_egress_rules(host):
    host.macip("b", mrule(MAC["b"], IP["b"] + "/32", action=3))
    assert host.passes(tcp(src="b", dst="a"), "b", "a")  # input, as action 1 permits
    assert host.passes(tcp(), "a", "b")  # egress: destination MAC and IP of the rule
    assert not host.passes(tcp(dst_ip="10.0.0.99"), "a", "b")
    assert host.passes(arp(), "a", "b")  # ARP passes the egress tables


def test_a_macip_acl_without_rules_filters_nothing_and_replace_applies(host):
    index = host.macip("a")
    assert host.passes(tcp(src_ip="192.0.2.7"), "a", "b")
    reply = host.api.macip_acl_add_replace(
        acl_index=index, count=1, r=[mrule(MAC["a"], IP["a"] + "/32")]
    )
    assert reply.retval == 0
    assert not host.passes(tcp(src_ip="192.0.2.7"), "a", "b")
    assert (
        host.api.macip_acl_interface_add_del(
            is_add=False, sw_if_index=host.port["a"], acl_index=index
        ).retval
        == 0
    )
    assert host.passes(tcp(src_ip="192.0.2.7"), "a", "b")


def test_input_acls_run_before_macip(host):
    # A spoofed frame permitted with reflect makes a session, then MACIP drops it.
    host.apply("a", inputs=[host.acl(rule(2))])
    host.macip("a", mrule(MAC["a"], IP["a"] + "/32"))
    assert not host.passes(tcp(src_ip="10.0.0.99"), "a", "b")
    assert len(host.vpp.sessions) == 1
