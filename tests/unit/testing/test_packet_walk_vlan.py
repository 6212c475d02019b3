"""The packet walk and VLAN tags as VPP has them: ethernet-input's sub-interface
matching (exact and non-exact, dot1q and dot1ad, default sub-interfaces, VLAN 0),
egress VLAN filtering (l2_interface_efp_filter), af_packet's 802.1ad rewrite,
and what the ACL plugin makes of tagged frames (and its ethertype whitelist)."""

from __future__ import annotations

import pytest

from networking_vpp.testing.vpp import Frame

UPLINK = 1
BCAST = "ff:ff:ff:ff:ff:ff"
MAC_A, MAC_B, MAC_C = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b", "fa:16:3e:00:00:0c"
WIRE = "52:54:00:99:99:99"
QINQ, DOT1Q, Q9100 = 0x88A8, 0x8100, 0x9100
# vl_api_sub_if_flags_t
ONE_TAG, TWO_TAGS, DOT1AD, EXACT, DEFAULT = 2, 4, 8, 16, 32
NO_INDEX = 0xFFFFFFFF


class Net:
    """VLAN 100 network (ports a, b, uplink.100 popping), flat network (c, uplink)."""

    def __init__(self, server) -> None:
        self.vpp = vpp = server.emulator
        client = server.connect("wiring")
        self.api = api = client.api
        self.port = {}
        for name in "abc":
            sw = api.create_vhost_user_if_v2(is_server=True, sock_filename=f"/{name}").sw_if_index
            self.port[name] = sw
            vpp.vm_connect(f"/{name}")
        self.sub = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=100).sw_if_index
        api.l2_interface_vlan_tag_rewrite(sw_if_index=self.sub, vtr_op=3, push_dot1q=1)
        for sw in (UPLINK, self.sub, *self.port.values()):
            assert api.sw_interface_set_flags(sw_if_index=sw, flags=1).retval == 0
        for sw in (self.port["a"], self.port["b"], self.sub):
            api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=1)
        for sw in (self.port["c"], UPLINK):
            api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=2)

    def subif(self, parent, sub_id, flags, outer=0, inner=0):
        reply = self.api.create_subif(
            sw_if_index=parent,
            sub_id=sub_id,
            sub_if_flags=flags,
            outer_vlan_id=outer,
            inner_vlan_id=inner,
        )
        assert reply.retval == 0, reply
        return reply.sw_if_index

    def efp(self, sw, on=True):
        assert self.api.l2_interface_efp_filter(sw_if_index=sw, enable_disable=on).retval == 0

    def walk(self, src, ingress, vlans=(), tpids=(), **fields):
        frame = Frame(src_mac=src, dst_mac=BCAST, vlans=vlans, tpids=tpids, **fields)
        return self.vpp.walk(frame, ingress=ingress)

    def out(self, src, ingress, vlans=(), tpids=(), **fields):
        """(port, tags) of every copy, tags as (tpid, vlan) pairs."""
        return sorted(
            (e.sw_if_index, tuple(zip(e.tpids, e.vlans, strict=True)))
            for e in self.walk(src, ingress, vlans, tpids, **fields)
        )


@pytest.fixture
def net(vpp_api):
    return Net(vpp_api)


# --- ethernet-input --------------------------------------------------------------------
def test_frames_carry_a_tpid_per_tag(net):
    frame = Frame(src_mac=MAC_A, dst_mac=BCAST, vlans=(100, 7), tpids=(QINQ,))
    assert frame.tpids == (QINQ, DOT1Q)  # unnamed tags are 802.1Q
    assert frame.tags == ((QINQ, 100), (DOT1Q, 7))
    with pytest.raises(ValueError):
        Frame(src_mac=MAC_A, dst_mac=BCAST, vlans=(1,), tpids=(DOT1Q, DOT1Q))


def test_an_exact_match_sub_interface_takes_exactly_its_tag(net):
    c = net.port["c"]
    assert net.out(WIRE, UPLINK, (100,)) == [(net.port["a"], ()), (net.port["b"], ())]
    # Two tags: the exact-match sub-interface does not match; the L2 main interface does.
    assert net.out(WIRE, UPLINK, (100, 7)) == [(c, ((DOT1Q, 100), (DOT1Q, 7)))]
    # An 802.1ad tag is looked up in the dot1ad table: not the dot1q VLAN 100.
    assert net.out(WIRE, UPLINK, (100,), (QINQ,)) == [(c, ((QINQ, 100),))]
    # 0x9100 is a tag too, in the dot1q table.
    assert [p for p, _ in net.out(WIRE, UPLINK, (100,), (Q9100,))] == [
        net.port["a"],
        net.port["b"],
    ]
    # An inner 802.1ad tag is not counted (only 0x8100 follows an outer tag): one tag.
    out = net.out(WIRE, UPLINK, (100, 5), (DOT1Q, QINQ))
    assert out == [(net.port["a"], ((QINQ, 5),)), (net.port["b"], ((QINQ, 5),))]


def test_a_default_sub_interface_takes_every_tag_no_other_sub_interface_matches(net):
    guard = net.subif(UPLINK, 4095, DEFAULT)
    assert net.vpp.interface(guard).name == "GigabitEthernet0/8/0.4095"
    # Admin down (as created): such frames are dropped.
    for vlans, tpids in [
        ((100, 7), ()),
        ((7,), ()),
        ((0,), ()),
        ((100,), (QINQ,)),
        ((1, 2, 3), ()),
    ]:
        assert net.walk(WIRE, UPLINK, vlans, tpids) == [], (vlans, tpids)
    assert [p for p, _ in net.out(WIRE, UPLINK, (100,))] == [net.port["a"], net.port["b"]]
    assert net.out(WIRE, UPLINK) == [(net.port["c"], ())]  # untagged: the main interface
    # Up and bridged, it forwards them (back out of the main interface too).
    net.api.sw_interface_set_flags(sw_if_index=guard, flags=1)
    net.api.sw_interface_set_l2_bridge(rx_sw_if_index=guard, bd_id=2)
    assert net.out(WIRE, UPLINK, (7,)) == [(UPLINK, ((DOT1Q, 7),)), (net.port["c"], ((DOT1Q, 7),))]


def test_a_priority_tag_goes_to_the_main_interface_when_no_sub_interface_is_valid(net):
    assert net.out(WIRE, UPLINK, (0,)) == [(net.port["c"], ((DOT1Q, 0),))]


def test_non_exact_and_dot1ad_and_two_tag_sub_interfaces(net):
    api = net.api
    loose = net.subif(UPLINK, 200, ONE_TAG, outer=200)
    s_tag = net.subif(UPLINK, 4200, DOT1AD | ONE_TAG | EXACT, outer=300)
    qinq = net.subif(UPLINK, 4300, TWO_TAGS | EXACT, outer=400, inner=5)
    for sw in (loose, s_tag, qinq):
        api.sw_interface_set_flags(sw_if_index=sw, flags=1)
        api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=3)
    api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port["a"], bd_id=3)
    a, c = net.port["a"], net.port["c"]

    def vms(vlans, tpids=()):
        return [(p, tags) for p, tags in net.out(WIRE, UPLINK, vlans, tpids) if p != UPLINK]

    assert vms((200, 5, 6)) == [(a, ((DOT1Q, 200), (DOT1Q, 5), (DOT1Q, 6)))]
    assert vms((300,), (QINQ,)) == [(a, ((QINQ, 300),))]
    assert vms((300,)) == [(c, ((DOT1Q, 300),))]  # dot1q 300: not it
    assert vms((400, 5)) == [(a, ((DOT1Q, 400), (DOT1Q, 5)))]
    assert vms((400, 6)) == [(c, ((DOT1Q, 400), (DOT1Q, 6)))]
    # The same match twice is refused; so is a second use of a sub-interface id.
    reply = api.create_subif(sw_if_index=UPLINK, sub_id=9, sub_if_flags=ONE_TAG, outer_vlan_id=200)
    assert reply.retval == -1 and reply.sw_if_index == NO_INDEX
    reply = api.create_subif(sw_if_index=UPLINK, sub_id=200, sub_if_flags=ONE_TAG, outer_vlan_id=9)
    assert reply.retval == -56
    rows = {r.sw_if_index: r for r in api.sw_interface_dump(sw_if_index=NO_INDEX)}
    assert rows[qinq].sub_number_of_tags == 2 and rows[qinq].sub_inner_vlan_id == 5
    assert int(rows[s_tag].sub_if_flags) == DOT1AD | ONE_TAG | EXACT


# --- egress VLAN filtering --------------------------------------------------------------
def test_efp_on_a_popping_sub_interface_drops_what_would_not_come_back_to_it(net):
    a, sub = net.port["a"], net.sub
    assert (UPLINK, ((DOT1Q, 100), (DOT1Q, 7))) in net.out(MAC_A, a, (7,))  # filtering off
    net.efp(sub)
    assert (UPLINK, ((DOT1Q, 100),)) in net.out(MAC_A, a)
    for vlans, tpids in [((7,), ()), ((0,), ()), ((7,), (QINQ,)), ((7, 8), ())]:
        assert UPLINK not in [p for p, _ in net.out(MAC_A, a, vlans, tpids)], (vlans, tpids)
    # VPP's quirk: three tags plus the pushed one count as "4", whose match flag
    # (1 << 4) is SUBINT_CONFIG_VALID itself, which every valid entry has.
    assert (UPLINK, ((DOT1Q, 100), (DOT1Q, 7), (DOT1Q, 8), (DOT1Q, 9))) in net.out(
        MAC_A, a, (7, 8, 9)
    )
    assert net.port["b"] in [p for p, _ in net.out(MAC_A, a, (7,))]  # not on other ports
    net.efp(sub, False)
    assert UPLINK in [p for p, _ in net.out(MAC_A, a, (7,))]


def test_efp_on_a_main_interface_needs_the_default_sub_interface_for_unknown_tags(net):
    c = net.port["c"]
    net.efp(UPLINK)
    assert net.out(MAC_C, c) == [(UPLINK, ())]
    assert net.out(MAC_C, c, (100,)) == []  # would come back on uplink.100
    assert net.out(MAC_C, c, (7,)) == [(UPLINK, ((DOT1Q, 7),))]  # would come back here
    net.subif(UPLINK, 4095, DEFAULT)
    for vlans in [(7,), (0,), (100, 7), (7, 100)]:
        assert net.out(MAC_C, c, vlans) == [], vlans
    assert net.out(MAC_C, c) == [(UPLINK, ())]


def test_efp_checks_the_tags_input_pushes_before_output_rewrites(net):
    c = net.port["c"]
    net.api.l2_interface_vlan_tag_rewrite(sw_if_index=c, vtr_op=1, push_dot1q=1, tag1=42)
    net.efp(c)
    assert net.out(WIRE, UPLINK, (42,)) == [(c, ())]
    assert net.out(WIRE, UPLINK, (43,)) == []  # does not carry the pushed 42


def test_efp_needs_an_interface(net):
    assert net.api.l2_interface_efp_filter(sw_if_index=99, enable_disable=True).retval == -2


# --- af_packet -----------------------------------------------------------------------------
def test_af_packet_input_rewrites_an_outer_8021ad_tag_as_8021q(net, vpp):
    vpp.add_kernel_interface("tapx")
    api = net.api
    tap = api.af_packet_create_v3(
        mode=1, host_if_name="tapx", use_random_hw_addr=True, flags=3
    ).sw_if_index
    api.sw_interface_set_flags(sw_if_index=tap, flags=1)
    api.sw_interface_set_l2_bridge(rx_sw_if_index=tap, bd_id=2)
    assert net.out(MAC_A, tap, (5, 6), (QINQ, DOT1Q)) == [
        (UPLINK, ((DOT1Q, 5), (DOT1Q, 6))),
        (net.port["c"], ((DOT1Q, 5), (DOT1Q, 6))),
    ]
    # Only the outer tag: the kernel strips one
    assert (UPLINK, ((DOT1Q, 5), (QINQ, 6))) in net.out(MAC_A, tap, (5, 6), (QINQ, QINQ))
    # A vhost-user port passes it as it is.
    assert (UPLINK, ((QINQ, 5),)) in net.out(MAC_C, net.port["c"], (5,), (QINQ,))


# --- the ACL plugin ---------------------------------------------------------------------
def deny_ip4_rule():
    return {"is_permit": 0, "src_prefix": "0.0.0.0/0", "dst_prefix": "0.0.0.0/0", "proto": 0}


def ip4(**fields):
    return dict(ethertype=0x0800, src_ip="10.0.0.1", dst_ip="10.0.0.2", proto=17, **fields)


def test_the_acl_plugin_looks_through_three_standard_tags_to_the_ip_header(net):
    api, a, b = net.api, net.port["a"], net.port["b"]
    acl = api.acl_add_replace(acl_index=NO_INDEX, count=1, r=[deny_ip4_rule()]).acl_index
    api.acl_interface_set_acl_list(sw_if_index=b, count=1, n_input=0, acls=[acl])
    for vlans, tpids in [((), ()), ((0,), ()), ((5,), (QINQ,)), ((5, 6), (QINQ,)), ((1, 2, 3), ())]:
        assert b not in [p for p, _ in net.out(MAC_A, a, vlans, tpids, **ip4())], (vlans, tpids)
    # The non-IP path: four tags, an inner 802.1ad tag, MPLS: the IP ACLs do not see them ...
    nonip = [
        ((1, 2, 3, 4), (), ip4()),
        ((0, 0), (DOT1Q, QINQ), ip4()),
        ((), (), {"ethertype": 0x8847}),
    ]
    for vlans, tpids, fields in nonip:
        assert b in [p for p, _ in net.out(MAC_A, a, vlans, tpids, **fields)], (vlans, tpids)
    # ... unless the interface has an ethertype whitelist in that direction.
    whitelist = [0x0800, 0x86DD, 0x0806]
    reply = api.acl_interface_set_etype_whitelist(
        sw_if_index=b, count=6, n_input=3, whitelist=whitelist + whitelist
    )
    assert reply.retval == 0
    for vlans, tpids, fields in nonip:
        assert b not in [p for p, _ in net.out(MAC_A, a, vlans, tpids, **fields)], (vlans, tpids)
    arp = {"ethertype": 0x0806, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2"}
    assert b in [p for p, _ in net.out(MAC_A, a, **arp)]
    rows = api.acl_interface_etype_whitelist_dump(sw_if_index=NO_INDEX)
    assert [(r.sw_if_index, r.n_input, list(r.whitelist)) for r in rows] == [
        (b, 3, whitelist + whitelist)
    ]
    # Without ACLs in a direction the whitelist does not apply there.
    api.acl_interface_set_acl_list(sw_if_index=b, count=0, n_input=0, acls=[])
    assert b in [p for p, _ in net.out(MAC_A, a, **nonip[2][2])]
    assert api.acl_interface_set_etype_whitelist(sw_if_index=99, count=0).retval == -2


def test_macip_classifies_untagged_dot1q_and_dot1ad_dot1q_frames_only(net):
    api, a, b = net.api, net.port["a"], net.port["b"]
    rule = {
        "is_permit": 1,
        "src_mac": MAC_A,
        "src_mac_mask": "ff:ff:ff:ff:ff:ff",
        "src_prefix": "10.0.0.1/32",
    }
    index = api.macip_acl_add(count=1, r=[rule]).acl_index
    api.macip_acl_interface_add_del(sw_if_index=a, acl_index=index)
    for vlans, tpids in [((), ()), ((5,), ()), ((5, 6), (QINQ,))]:
        assert b in [p for p, _ in net.out(MAC_A, a, vlans, tpids, **ip4())], (vlans, tpids)
    for vlans, tpids in [((5, 6), ()), ((5,), (QINQ,)), ((5,), (Q9100,)), ((1, 2, 3), ())]:
        assert b not in [p for p, _ in net.out(MAC_A, a, vlans, tpids, **ip4())], (vlans, tpids)


def test_the_acl_plugin_s_output_node_runs_before_the_efp_filter(net, vpp):
    # l2_output.h: features run from the highest bit down; the ACL plugin's
    # output nodes sit on the output feature arc (OUTPUT_FEAT_ARC), above
    # EFP_FILTER. A flow the ACL reflects opens its session even when the
    # filter then drops the frame.
    api, c = net.api, net.port["c"]
    d = api.create_vhost_user_if_v2(is_server=True, sock_filename="/d").sw_if_index
    vpp.vm_connect("/d")
    api.sw_interface_set_flags(sw_if_index=d, flags=1)
    api.sw_interface_set_l2_bridge(rx_sw_if_index=d, bd_id=2)
    net.subif(c, 100, ONE_TAG | EXACT, outer=100)  # a frame tagged 100 would come back there
    net.efp(c)
    reflect = {
        "is_permit": 2,
        "src_prefix": "0.0.0.0/0",
        "dst_prefix": "0.0.0.0/0",
        "proto": 17,
        "srcport_or_icmptype_last": 65535,
        "dstport_or_icmpcode_last": 65535,
    }
    acl = api.acl_add_replace(acl_index=NO_INDEX, count=1, r=[reflect]).acl_index
    api.acl_interface_set_acl_list(sw_if_index=c, count=1, n_input=0, acls=[acl])
    udp = ip4(src_port=40000, dst_port=53)
    assert c not in [p for p, _ in net.out(MAC_A, d, (100,), **udp)]  # the filter drops it
    assert len(vpp.sessions) == 1  # made by the ACL before the filter
    assert c in [p for p, _ in net.out(MAC_A, d, **udp)]  # untagged: passes both
