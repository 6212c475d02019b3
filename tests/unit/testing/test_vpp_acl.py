"""The emulated ACL plugin's API: every message, its errors, dumps and lifecycle
(as ``src/plugins/acl/acl.c`` of VPP 26.10 answers them)."""

from __future__ import annotations

import ipaddress

import pytest

from networking_vpp.testing.vpp import MACAddress
from networking_vpp.testing.vpp import errors as e

NO_INDEX = 0xFFFFFFFF
UPLINK = 1  # the vpp fixture's GigabitEthernet0/8/0


@pytest.fixture
def api(vpp_api):
    return vpp_api.connect("test").api


def rule(**kw):
    """An acl_rule_t: permit any IPv4, all ports, unless told otherwise."""
    r = {
        "is_permit": 1,
        "src_prefix": "0.0.0.0/0",
        "dst_prefix": "0.0.0.0/0",
        "proto": 0,
        "srcport_or_icmptype_first": 0,
        "srcport_or_icmptype_last": 65535,
        "dstport_or_icmpcode_first": 0,
        "dstport_or_icmpcode_last": 65535,
    }
    r.update(kw)
    return r


def add(api, rules=(), index=NO_INDEX, tag=""):
    rules = list(rules)
    return api.acl_add_replace(acl_index=index, tag=tag, count=len(rules), r=rules)


def macip_rule(mac="fa:16:3e:00:00:01", ip="10.0.0.5/32", mask="ff:ff:ff:ff:ff:ff", action=1):
    return {"is_permit": action, "src_mac": mac, "src_mac_mask": mask, "src_prefix": ip}


def macip_add(api, rules=(), tag=""):
    rules = list(rules)
    return api.macip_acl_add(tag=tag, count=len(rules), r=rules)


def set_lists(api, sw, inputs=(), outputs=()):
    acls = [*inputs, *outputs]
    return api.acl_interface_set_acl_list(
        sw_if_index=sw, count=len(acls), n_input=len(inputs), acls=acls
    ).retval


def lists(api, sw):
    (d,) = api.acl_interface_list_dump(sw_if_index=sw)
    return list(d.acls[: d.n_input]), list(d.acls[d.n_input :])


def vhost(api, sock):
    return api.create_vhost_user_if_v2(is_server=True, sock_filename=sock).sw_if_index


# --- plugin basics ---
def test_version_ping_and_table_size_are_read_only(vpp, api):
    before = vpp.mutations
    reply = api.acl_plugin_get_version()
    assert (reply.major, reply.minor) == (1, 4)
    assert api.acl_plugin_control_ping().vpe_pid == vpp.vpe_pid
    assert api.acl_plugin_get_conn_table_max_entries().conn_table_max_entries == 500_000
    assert vpp.mutations == before


# --- acl_add_replace / acl_dump / acl_del ---
def test_new_acls_take_pool_indices_and_dump_as_given(api):
    r1 = rule(is_permit=2, src_prefix="10.0.0.0/24", proto=6, dstport_or_icmpcode_first=22)
    r1["dstport_or_icmpcode_last"] = 22
    r2 = rule(src_prefix=ipaddress.ip_network("2001:db8::/64"), dst_prefix="::/0", proto=58)
    first = add(api, [r1, r2], tag="net-vpp.secgroup:sg1")
    assert (first.retval, first.acl_index) == (0, 0)
    assert add(api, [], tag="empty").acl_index == 1  # no rules is allowed
    (d,) = api.acl_dump(acl_index=0)
    assert (d.acl_index, d.tag, d.count) == (0, "net-vpp.secgroup:sg1", 2)
    got = d.r[0]
    assert got.is_permit == 2 and got.proto == 6
    assert got.src_prefix == ipaddress.ip_network("10.0.0.0/24")
    assert (got.dstport_or_icmpcode_first, got.dstport_or_icmpcode_last) == (22, 22)
    assert d.r[1].src_prefix == ipaddress.ip_network("2001:db8::/64")
    assert [x.acl_index for x in api.acl_dump(acl_index=NO_INDEX)] == [0, 1]
    assert api.acl_dump(acl_index=7) == []
    # A freed index is the next one handed out.
    assert api.acl_del(acl_index=0).retval == 0
    assert add(api, [rule()]).acl_index == 0
    assert add(api, [rule()]).acl_index == 2


def test_prefixes_in_every_form_vpp_papi_takes(api):
    forms = [
        "10.1.0.0/16",
        ipaddress.IPv4Network("10.1.0.0/16"),
        {"address": "10.1.0.0", "len": 16},
        {"address": {"af": 0, "un": {"ip4": b"\x0a\x01\x00\x00"}}, "len": 16},
    ]
    for form in forms:
        index = add(api, [rule(src_prefix=form)]).acl_index
        (d,) = api.acl_dump(acl_index=index)
        assert d.r[0].src_prefix == ipaddress.ip_network("10.1.0.0/16"), form


def test_add_replace_checks_every_rule_first(api):
    bad_src = add(api, [rule(), rule(src_prefix="10.0.0.1/24")])
    assert (bad_src.retval, bad_src.acl_index) == (e.INVALID_SRC_ADDRESS, NO_INDEX)
    bad_dst = add(api, [rule(dst_prefix={"address": "2001:db8::1", "len": 64})])
    assert bad_dst.retval == e.INVALID_DST_ADDRESS
    ports = rule(srcport_or_icmptype_first=10, srcport_or_icmptype_last=9)
    assert add(api, [ports]).retval == e.INVALID_VALUE_2
    ports = rule(dstport_or_icmpcode_first=80, dstport_or_icmpcode_last=79)
    assert add(api, [ports]).retval == e.INVALID_VALUE_2
    # The rules are checked before the index: a bad rule to a missing ACL says so.
    assert add(api, [rule(src_prefix="10.0.0.1/8")], index=432).retval == e.INVALID_SRC_ADDRESS
    missing = add(api, [rule()], index=432)
    assert (missing.retval, missing.acl_index) == (e.NO_SUCH_ENTRY, 432)
    # vpp_papi packs count=2 with no rules; VPP's length check refuses it.
    short = api.acl_add_replace(acl_index=NO_INDEX, count=2, r=[])
    assert short.retval == e.INVALID_VALUE
    assert api.acl_dump(acl_index=NO_INDEX) == []


def test_replace_in_place_keeps_the_index_and_every_binding(api):
    index = add(api, [rule(proto=6)], tag="v1").acl_index
    other = add(api, [rule()]).acl_index
    a, b = vhost(api, "/a"), vhost(api, "/b")
    assert set_lists(api, a, inputs=[index], outputs=[other]) == 0
    assert set_lists(api, b, outputs=[index]) == 0
    reply = add(api, [rule(proto=17), rule(is_permit=0)], index=index, tag="v2")
    assert (reply.retval, reply.acl_index) == (0, index)
    (d,) = api.acl_dump(acl_index=index)
    assert (d.tag, d.count, [r.proto for r in d.r]) == ("v2", 2, [17, 0])
    assert lists(api, a) == ([index], [other]) and lists(api, b) == ([], [index])


def test_acl_del_refuses_an_acl_in_use(api):
    index = add(api, [rule()]).acl_index
    assert api.acl_del(acl_index=index + 1).retval == e.NO_SUCH_ENTRY
    assert set_lists(api, UPLINK, inputs=[index], outputs=[index]) == 0
    assert api.acl_del(acl_index=index).retval == e.ACL_IN_USE_INBOUND  # input first
    assert set_lists(api, UPLINK, outputs=[index]) == 0
    assert api.acl_del(acl_index=index).retval == e.ACL_IN_USE_OUTBOUND
    assert set_lists(api, UPLINK) == 0
    assert api.acl_del(acl_index=index).retval == 0
    assert api.acl_del(acl_index=index).retval == e.NO_SUCH_ENTRY


# --- binding ACLs to interfaces ---
def test_set_acl_list_splits_input_and_output(api):
    acl = [add(api, [rule()]).acl_index for _ in range(4)]
    assert set_lists(api, UPLINK, inputs=[acl[2], acl[0]], outputs=[acl[3], acl[1]]) == 0
    (d,) = api.acl_interface_list_dump(sw_if_index=UPLINK)
    assert (d.sw_if_index, d.count, d.n_input, list(d.acls)) == (UPLINK, 4, 2, [2, 0, 3, 1])
    # n_input above count: all of them are input ACLs.
    reply = api.acl_interface_set_acl_list(sw_if_index=UPLINK, count=1, n_input=5, acls=[acl[1]])
    assert reply.retval == 0 and lists(api, UPLINK) == ([acl[1]], [])
    assert set_lists(api, UPLINK) == 0 and lists(api, UPLINK) == ([], [])


def test_set_acl_list_errors_change_nothing(api):
    a, b = add(api, [rule()]).acl_index, add(api, [rule()]).acl_index
    assert set_lists(api, 99, inputs=[a]) == e.INVALID_SW_IF_INDEX
    assert set_lists(api, UPLINK, inputs=[a], outputs=[b]) == 0
    assert set_lists(api, UPLINK, inputs=[b], outputs=[a, 42]) == e.NO_SUCH_ENTRY
    assert lists(api, UPLINK) == ([a], [b])
    reply = api.acl_interface_set_acl_list(sw_if_index=UPLINK, count=3, n_input=3, acls=[])
    assert reply.retval == e.INVALID_VALUE
    assert lists(api, UPLINK) == ([a], [b])


def test_an_acl_listed_twice_answers_1_as_vpp_s_rv_or_does(api):
    a, b = add(api, [rule()]).acl_index, add(api, [rule()]).acl_index
    assert set_lists(api, UPLINK, inputs=[a], outputs=[b]) == 0
    # Twice in the output list: output (set first) fails, the input is not touched.
    assert set_lists(api, UPLINK, inputs=[b], outputs=[a, a]) == 1
    assert lists(api, UPLINK) == ([a], [b])
    # Twice in the input list: the output is set, the input is not.
    assert set_lists(api, UPLINK, inputs=[b, b], outputs=[a]) == 1
    assert lists(api, UPLINK) == ([a], [a])
    # The same ACL in both directions is fine.
    assert set_lists(api, UPLINK, inputs=[a], outputs=[a]) == 0


def test_acl_interface_add_del(api):
    a, b, c = (add(api, [rule()]).acl_index for _ in range(3))

    def add_del(acl, is_input=True, is_add=True, sw=UPLINK):
        return api.acl_interface_add_del(
            is_add=is_add, is_input=is_input, sw_if_index=sw, acl_index=acl
        ).retval

    assert add_del(a, sw=99) == e.INVALID_SW_IF_INDEX
    assert add_del(a) == 0 and add_del(b) == 0 and add_del(c) == 0
    assert add_del(a) == e.ACL_IN_USE_INBOUND
    assert add_del(c, is_input=False) == 0
    assert add_del(c, is_input=False) == e.ACL_IN_USE_OUTBOUND
    assert add_del(42) == e.NO_SUCH_ENTRY
    assert lists(api, UPLINK) == ([a, b, c], [c])
    # Deleting moves the last ACL of the list into the hole (vec_del1).
    assert add_del(a, is_add=False) == 0
    assert lists(api, UPLINK) == ([c, b], [c])
    assert add_del(a, is_add=False) == e.NO_SUCH_ENTRY
    assert add_del(a, is_add=False, is_input=False, sw=0) == e.NO_SUCH_ENTRY
    # is_add defaults to true.
    assert api.acl_interface_add_del(is_input=True, sw_if_index=0, acl_index=a).retval == 0
    assert lists(api, 0) == ([a], [])


def test_acl_interface_list_dump(api):
    a = add(api, [rule()]).acl_index
    sw = vhost(api, "/a")
    assert set_lists(api, sw, outputs=[a]) == 0
    everything = api.acl_interface_list_dump()  # sw_if_index defaults to ~0
    assert [(d.sw_if_index, d.count, d.n_input, list(d.acls)) for d in everything] == [
        (0, 0, 0, []),
        (UPLINK, 0, 0, []),
        (sw, 1, 0, [a]),
    ]
    assert api.acl_interface_list_dump(sw_if_index=99) == []


def test_deleting_an_interface_drops_its_acls_and_macip(api):
    a = add(api, [rule()]).acl_index
    m = macip_add(api, [macip_rule()]).acl_index
    sw = vhost(api, "/a")
    assert set_lists(api, sw, inputs=[a], outputs=[a]) == 0
    assert api.macip_acl_interface_add_del(sw_if_index=sw, acl_index=m).retval == 0
    assert api.delete_vhost_user_if(sw_if_index=sw).retval == 0
    assert api.acl_del(acl_index=a).retval == 0
    assert list(api.macip_acl_interface_get().acls) == [NO_INDEX, NO_INDEX, NO_INDEX]
    assert [d.sw_if_index for d in api.acl_interface_list_dump()] == [0, UPLINK]


def test_a_restart_wipes_the_acl_plugin(vpp, vpp_api, api):
    add(api, [rule()])
    macip_add(api, [macip_rule()])
    set_lists(api, UPLINK, inputs=[0])
    vpp.restart()
    api = vpp_api.connect("again").api
    assert api.acl_dump(acl_index=NO_INDEX) == [] and api.macip_acl_dump() == []
    assert api.macip_acl_interface_get().count == 0
    assert lists(api, UPLINK) == ([], [])
    assert add(api, [rule()]).acl_index == 0


# --- MACIP ---
def test_macip_add_replace_dump_and_del(api):
    rules = [
        macip_rule(),
        macip_rule(mac=b"\xfa\x16\x3e\x00\x00\x02", ip="2001:db8::5/128"),
        macip_rule(mac=MACAddress("fa:16:3e:00:00:03"), mask="ff:ff:ff:00:00:00", action=0),
    ]
    first = macip_add(api, rules, tag="net-vpp.port:p1")
    assert (first.retval, first.acl_index) == (0, 0)
    created = api.macip_acl_add_replace(count=1, r=[macip_rule(ip="10.0.0.7/24")])  # ~0: new
    assert (created.retval, created.acl_index) == (0, 1)
    (d,) = api.macip_acl_dump(acl_index=0)
    assert (d.acl_index, d.tag, d.count) == (0, "net-vpp.port:p1", 3)
    assert [str(r.src_mac) for r in d.r] == [
        "fa:16:3e:00:00:01",
        "fa:16:3e:00:00:02",
        "fa:16:3e:00:00:03",
    ]
    assert d.r[2].src_mac_mask == "ff:ff:ff:00:00:00" and d.r[2].is_permit == 0
    assert d.r[1].src_prefix == ipaddress.ip_network("2001:db8::5/128")
    # No rule checks for MACIP: host bits are accepted (the classifier masks them).
    (d1,) = api.macip_acl_dump(acl_index=1)
    assert d1.r[0].src_prefix == ipaddress.ip_network("10.0.0.0/24")
    assert [x.acl_index for x in api.macip_acl_dump()] == [0, 1]  # ~0 by default
    assert api.macip_acl_dump(acl_index=5) == []
    replaced = api.macip_acl_add_replace(acl_index=0, tag="v2", count=0, r=[])
    assert (replaced.retval, replaced.acl_index) == (0, 0)
    assert api.macip_acl_dump(acl_index=0)[0].tag == "v2"
    missing = api.macip_acl_add_replace(acl_index=9, count=1, r=[macip_rule()])
    assert (missing.retval, missing.acl_index) == (e.NO_SUCH_ENTRY, 9)
    assert api.macip_acl_add(count=1, r=[]).retval == e.INVALID_VALUE
    assert api.macip_acl_del(acl_index=9).retval == e.NO_SUCH_ENTRY
    assert api.macip_acl_del(acl_index=0).retval == 0
    assert macip_add(api, [macip_rule()]).acl_index == 0


def test_macip_on_interfaces(api):
    m0 = macip_add(api, [macip_rule()]).acl_index
    m1 = macip_add(api, [macip_rule(mac="fa:16:3e:00:00:09")]).acl_index
    sw = vhost(api, "/a")  # sw_if_index 2

    def add_del(acl, sw, is_add=True):
        return api.macip_acl_interface_add_del(is_add=is_add, sw_if_index=sw, acl_index=acl).retval

    assert add_del(m0, 99) == e.INVALID_SW_IF_INDEX
    assert add_del(7, sw) == e.NO_SUCH_ENTRY
    assert api.macip_acl_interface_get().count == 0
    assert add_del(m0, sw) == 0
    assert list(api.macip_acl_interface_get().acls) == [NO_INDEX, NO_INDEX, m0]
    assert add_del(m1, sw) == 0  # replaces the one applied
    assert add_del(m0, UPLINK) == 0
    assert list(api.macip_acl_interface_get().acls) == [NO_INDEX, m0, m1]
    everything = api.macip_acl_interface_list_dump(sw_if_index=NO_INDEX)
    assert [(d.sw_if_index, d.count, list(d.acls)) for d in everything] == [
        (UPLINK, 1, [m0]),
        (sw, 1, [m1]),
    ]
    # An index within VPP's vector answers even without a MACIP ACL.
    (local0,) = api.macip_acl_interface_list_dump(sw_if_index=0)
    assert (local0.sw_if_index, list(local0.acls)) == (0, [NO_INDEX])
    assert api.macip_acl_interface_list_dump(sw_if_index=3) == []
    # Delete ignores the acl_index: whatever is applied goes.
    assert add_del(12345, sw, is_add=False) == 0
    assert add_del(m1, sw, is_add=False) == e.NO_SUCH_ENTRY
    # Deleting an applied MACIP ACL unapplies it first.
    assert api.macip_acl_del(acl_index=m0).retval == 0
    assert list(api.macip_acl_interface_get().acls) == [NO_INDEX, NO_INDEX, NO_INDEX]


def test_many_acl_operations_are_cheap(vpp, api):
    import time

    ports = [vhost(api, f"/p{i}") for i in range(20)]
    rules = [rule(is_permit=2, src_prefix=f"10.{i}.0.0/16", proto=6) for i in range(20)]
    start = time.perf_counter()
    for i in range(300):
        index = add(api, rules, tag=f"sg{i}").acl_index
        set_lists(api, ports[i % 20], inputs=[index], outputs=[])
        add(api, rules[:10], index=index)
    elapsed = time.perf_counter() - start
    assert len(api.acl_dump(acl_index=NO_INDEX)) == 300
    assert elapsed < 5.0, f"900 ACL calls of 10-20 rules took {elapsed:.2f}s"
