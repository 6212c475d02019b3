"""The VPP emulator's behaviour through its API socket and vpp_papi: allocation,
names, errors, dumps, events, test hooks and restarts (as VPP 26.10 behaves)."""

from __future__ import annotations

import time

import pytest

from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp import errors as e

NO_INDEX = 0xFFFFFFFF
UPLINK = 1  # the vpp fixture's GigabitEthernet0/8/0


@pytest.fixture
def api(vpp_api):
    return vpp_api.connect("test").api


def vhost(api, sock="/run/vpp/s1", **kw):
    kw.setdefault("is_server", True)
    return api.create_vhost_user_if_v2(sock_filename=sock, **kw)


def names(api):
    return {d.sw_if_index: d.interface_name for d in api.sw_interface_dump()}


def test_a_refused_call_answers_its_retval(api):
    r = api.sw_interface_set_flags(sw_if_index=99, flags=1)
    assert type(r).__name__ == "sw_interface_set_flags_reply"
    assert r.retval == e.INVALID_SW_IF_INDEX


def test_show_version_and_ping(vpp, api):
    v = api.show_version()
    assert (v.retval, v.program, v.version) == (0, "vpe", "26.10-release")
    assert api.control_ping().vpe_pid == vpp.vpe_pid


# --- interfaces: allocation, names, details ---
def test_local0_and_the_nic(api):
    rows = {d.sw_if_index: d for d in api.sw_interface_dump()}
    assert rows[0].interface_name == "local0" and rows[0].interface_dev_type == "local"
    assert (rows[0].link_mtu, rows[0].mtu) == (0, [0, 0, 0, 0])
    nic = rows[UPLINK]
    assert nic.interface_name == "GigabitEthernet0/8/0" and nic.interface_dev_type == "dpdk"
    assert str(nic.l2_address) == "52:54:00:00:08:00"
    assert nic.flags == 2  # link up, admin down
    assert (nic.link_mtu, nic.mtu, nic.type, nic.sup_sw_if_index) == (9000, [9000, 0, 0, 0], 0, 1)
    assert (nic.link_speed, nic.link_duplex) == (10_000_000, 2)


def test_sw_if_index_reuses_the_last_freed_index(api):
    a, b, c = (vhost(api, f"/s{i}").sw_if_index for i in range(3))
    assert (a, b, c) == (2, 3, 4)
    api.delete_vhost_user_if(sw_if_index=b)
    api.delete_vhost_user_if(sw_if_index=a)
    assert vhost(api, "/s3").sw_if_index == a  # vppinfra pool: LIFO free list
    assert vhost(api, "/s4").sw_if_index == b
    assert vhost(api, "/s5").sw_if_index == 5


def test_dump_filters(api):
    sub = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=100).sw_if_index
    assert [d.sw_if_index for d in api.sw_interface_dump(sw_if_index=sub)] == [sub]
    assert api.sw_interface_dump(sw_if_index=77) == []
    assert len(api.sw_interface_dump(sw_if_index=0)) == 3  # 0 means all, as ~0
    found = api.sw_interface_dump(name_filter_valid=True, name_filter="gigabitETHERNET")
    assert sorted(d.sw_if_index for d in found) == [UPLINK, sub]
    # With a valid name filter, the index is ignored.
    assert len(api.sw_interface_dump(sw_if_index=sub, name_filter_valid=True, name_filter="")) == 3


def test_vlan_subif_details_and_errors(api):
    r = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=100)
    assert r.retval == 0
    d = api.sw_interface_dump(sw_if_index=r.sw_if_index)[0]
    assert d.interface_name == "GigabitEthernet0/8/0.100"
    assert (d.sup_sw_if_index, d.sub_id, d.sub_outer_vlan_id) == (UPLINK, 100, 100)
    assert (d.sub_number_of_tags, int(d.sub_if_flags), d.type) == (1, 2 | 16, 1)
    assert str(d.l2_address) == "00:00:00:00:00:00"  # only main interfaces report one
    assert (d.mtu, d.link_mtu, d.interface_dev_type) == ([0, 0, 0, 0], 9000, "dpdk")
    assert d.flags == 2  # admin down; the port's link
    dup = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=100)
    assert (dup.retval, dup.sw_if_index) == (e.VLAN_ALREADY_EXISTS, NO_INDEX)
    # A sub-interface as parent means its port: a sibling is made.
    sib = api.create_vlan_subif(sw_if_index=r.sw_if_index, vlan_id=101)
    assert api.sw_interface_dump(sw_if_index=sib.sw_if_index)[0].sup_sw_if_index == UPLINK
    assert api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=0).retval == e.INVALID_VLAN
    assert api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=4096).retval == e.INVALID_VLAN
    bad = api.create_vlan_subif(sw_if_index=50, vlan_id=5)
    assert (bad.retval, bad.sw_if_index) == (e.INVALID_SW_IF_INDEX, NO_INDEX)
    assert api.delete_subif(sw_if_index=UPLINK).retval == e.INVALID_SUB_SW_IF_INDEX
    assert api.delete_subif(sw_if_index=50).retval == e.INVALID_SW_IF_INDEX
    assert api.delete_subif(sw_if_index=r.sw_if_index).retval == 0
    assert r.sw_if_index not in names(api)


def test_admin_state_rules(api):
    sub = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=7).sw_if_index
    # A sub-interface cannot come up while its port is down (VPP: rv -1).
    assert api.sw_interface_set_flags(sw_if_index=sub, flags=1).retval == e.UNSPECIFIED
    assert api.sw_interface_set_flags(sw_if_index=UPLINK, flags=1).retval == 0
    assert api.sw_interface_set_flags(sw_if_index=sub, flags=1).retval == 0
    assert api.sw_interface_dump(sw_if_index=sub)[0].flags == 3
    # Admin down implies link down on a hardware interface; up brings the link back.
    api.sw_interface_set_flags(sw_if_index=UPLINK, flags=0)
    assert api.sw_interface_dump(sw_if_index=UPLINK)[0].flags == 0
    api.sw_interface_set_flags(sw_if_index=UPLINK, flags=1)
    assert api.sw_interface_dump(sw_if_index=UPLINK)[0].flags == 3
    assert api.sw_interface_set_flags(sw_if_index=99, flags=1).retval == e.INVALID_SW_IF_INDEX


def test_tags_and_mtu(api):
    assert api.sw_interface_tag_add_del(is_add=True, sw_if_index=UPLINK, tag="").retval == -7
    api.sw_interface_tag_add_del(is_add=True, sw_if_index=UPLINK, tag="net-vpp.x")
    assert api.sw_interface_dump(sw_if_index=UPLINK)[0].tag == "net-vpp.x"
    api.sw_interface_tag_add_del(is_add=False, sw_if_index=UPLINK)
    assert api.sw_interface_dump(sw_if_index=UPLINK)[0].tag == ""
    assert api.sw_interface_set_mtu(sw_if_index=UPLINK, mtu=[1500, 0, 1400, 0]).retval == 0
    assert api.sw_interface_dump(sw_if_index=UPLINK)[0].mtu == [1500, 0, 1400, 0]
    assert api.sw_interface_set_mtu(sw_if_index=42, mtu=[1500] * 4).retval == -2


# --- vhost-user ---
def test_vhost_user_create_names_macs_and_errors(vpp, api):
    r = vhost(api, use_custom_mac=True, mac_address="FA:16:3E:00:00:01", tag="net-vpp.port:p1")
    d = api.sw_interface_dump(sw_if_index=r.sw_if_index)[0]
    assert d.interface_name == "VirtualEthernet0/0/0" and d.interface_dev_type == "vhost-user"
    assert (str(d.l2_address), d.tag, d.mtu, d.flags) == (
        "fa:16:3e:00:00:01",
        "net-vpp.port:p1",
        [9000, 0, 0, 0],
        0,
    )
    other = vhost(api, "/run/vpp/s2")
    assert str(api.sw_interface_dump(sw_if_index=other.sw_if_index)[0].l2_address)[:5] == "02:fe"
    dup = vhost(api)  # same socket
    assert (dup.retval, dup.sw_if_index) == (e.IF_ALREADY_EXISTS, r.sw_if_index)
    empty = vhost(api, "")
    assert (empty.retval, empty.sw_if_index) == (e.INVALID_ARGUMENT, NO_INDEX)
    renumbered = vhost(api, "/run/vpp/s3", renumber=True, custom_dev_instance=77)
    assert names(api)[renumbered.sw_if_index] == "VirtualEthernet0/0/77"
    assert api.delete_vhost_user_if(sw_if_index=UPLINK).retval == e.INVALID_SW_IF_INDEX
    assert api.delete_vhost_user_if(sw_if_index=r.sw_if_index).retval == 0
    assert vhost(api, "/run/vpp/s4").sw_if_index == r.sw_if_index
    assert names(api)[r.sw_if_index] == "VirtualEthernet0/0/0"  # instance 0 reused


def test_vhost_user_dump_and_link_follows_admin_and_vm(vpp, api):
    sw = vhost(api).sw_if_index
    rows = api.sw_interface_vhost_user_dump()
    assert [(v.sw_if_index, v.sock_filename, v.is_server, v.num_regions) for v in rows] == [
        (sw, "/run/vpp/s1", True, 0)
    ]
    assert api.sw_interface_vhost_user_dump(sw_if_index=UPLINK) == []
    assert api.sw_interface_vhost_user_dump(sw_if_index=99) == []
    flags = lambda: api.sw_interface_dump(sw_if_index=sw)[0].flags  # noqa: E731
    vpp.vm_connect("/run/vpp/s1")
    assert flags() == 0  # a VM but admin down: link down
    assert api.sw_interface_vhost_user_dump(sw_if_index=sw)[0].num_regions == 1
    api.sw_interface_set_flags(sw_if_index=sw, flags=1)
    assert flags() == 3
    vpp.vm_disconnect("/run/vpp/s1")
    assert flags() == 1
    vpp.vm_connect("/run/vpp/s1", num_regions=2)
    assert flags() == 3 and api.sw_interface_vhost_user_dump()[0].virtio_net_hdr_sz == 12


def test_a_vm_waiting_for_its_socket_connects_when_vpp_creates_it(vpp, api):
    vpp.vm_connect("/run/vpp/early")
    sw = vhost(api, "/run/vpp/early").sw_if_index
    assert api.sw_interface_vhost_user_dump(sw_if_index=sw)[0].num_regions == 1
    vpp.auto_connect_vms = True
    sw2 = vhost(api, "/run/vpp/any").sw_if_index
    assert api.sw_interface_vhost_user_dump(sw_if_index=sw2)[0].num_regions == 1


def _vm_connected_after_restart(vpp, vpp_api, is_server: bool) -> int:
    """Regions of the VM on /run/vpp/q once VPP restarted and the socket was recreated."""
    client = vpp_api.connect("before")
    vhost(client.api, "/run/vpp/q", is_server=is_server)
    vpp.vm_connect("/run/vpp/q")
    vpp.restart()
    client = vpp_api.connect("after")
    sw = vhost(client.api, "/run/vpp/q", is_server=is_server).sw_if_index
    return client.api.sw_interface_vhost_user_dump(sw_if_index=sw)[0].num_regions


def test_with_qemu_as_server_vpp_reconnects_to_the_vm_after_a_restart(vpp, vpp_api):
    assert _vm_connected_after_restart(vpp, vpp_api, is_server=False) == 1


def test_with_vpp_as_server_a_restart_leaves_the_vm_cut_off_until_it_reboots(vpp, vpp_api):
    vpp.auto_connect_vms = True  # even where every new socket finds a VM
    assert _vm_connected_after_restart(vpp, vpp_api, is_server=True) == 0
    vpp.vm_connect("/run/vpp/q")  # Nova reboots the guest: QEMU connects again
    itf = vpp.interface("VirtualEthernet0/0/0")
    assert itf is not None and itf.vhost is not None and itf.vhost.num_regions == 1


def test_deleting_a_served_socket_cuts_its_vm_off_but_not_a_client_ones(vpp, api):
    for sock, is_server in (("/run/vpp/srv", True), ("/run/vpp/cli", False)):
        vpp.vm_connect(sock)
        sw = vhost(api, sock, is_server=is_server).sw_if_index
        assert api.delete_vhost_user_if(sw_if_index=sw).retval == 0
    rows = {
        sock: api.sw_interface_vhost_user_dump(sw_if_index=vhost(api, sock).sw_if_index)
        for sock in ("/run/vpp/srv", "/run/vpp/cli")
    }
    assert rows["/run/vpp/srv"][0].num_regions == 0
    assert rows["/run/vpp/cli"][0].num_regions == 1


def test_deleting_a_port_deletes_its_sub_interfaces_and_bridge_membership(api):
    sw = vhost(api).sw_if_index
    sub = api.create_vlan_subif(sw_if_index=sw, vlan_id=10).sw_if_index
    api.sw_interface_set_l2_bridge(rx_sw_if_index=sub, bd_id=5)
    api.delete_vhost_user_if(sw_if_index=sw)
    assert sub not in names(api) and sw not in names(api)
    assert api.bridge_domain_dump()[0].n_sw_ifs == 0


# --- af_packet ---
def test_af_packet(vpp, api):
    missing = api.af_packet_create_v3(mode=1, host_if_name="tap0", use_random_hw_addr=True)
    assert (missing.retval, missing.sw_if_index) == (e.INVALID_INTERFACE, 0)
    bad_mode = api.af_packet_create_v3(host_if_name="tap0")  # mode 0
    assert (bad_mode.retval, bad_mode.sw_if_index) == (e.INVALID_VALUE, NO_INDEX)
    vpp.add_kernel_interface("tap0")
    r = api.af_packet_create_v3(mode=1, host_if_name="tap0", hw_addr="02:00:00:00:00:07")
    d = api.sw_interface_dump(sw_if_index=r.sw_if_index)[0]
    assert (d.interface_name, d.interface_dev_type, d.flags) == ("host-tap0", "af-packet", 2)
    assert str(d.l2_address) == "02:00:00:00:00:07"
    dup = api.af_packet_create_v3(mode=1, host_if_name="tap0")
    assert (dup.retval, dup.sw_if_index) == (e.IF_ALREADY_EXISTS, r.sw_if_index)
    assert [(a.sw_if_index, a.host_if_name) for a in api.af_packet_dump()] == [
        (r.sw_if_index, "tap0")
    ]
    vpp.remove_kernel_interface("tap0")  # VPP does not notice: still link-up (and dead)
    assert api.sw_interface_dump(sw_if_index=r.sw_if_index)[0].flags == 2
    assert api.af_packet_delete(host_if_name="tap0").retval == 0
    assert api.af_packet_delete(host_if_name="tap0").retval == e.SYSCALL_ERROR_1
    assert api.af_packet_dump() == []


# --- bridge domains ---
def add_bd(api, bd_id=NO_INDEX, **kw):
    args = dict(flood=True, uu_flood=True, forward=True, learn=True, bd_tag="t")
    args.update(kw)
    return api.bridge_domain_add_del_v2(bd_id=bd_id, **args)


def test_bridge_domain_allocation_and_errors(api):
    assert [add_bd(api).bd_id for _ in range(3)] == [1, 2, 3]
    assert api.bridge_domain_add_del_v2(bd_id=2, is_add=False).retval == 0
    assert add_bd(api).bd_id == 2  # the lowest unused id
    assert add_bd(api, 10).bd_id == 10
    assert add_bd(api).bd_id == 4
    dup = add_bd(api, 10)
    assert (dup.retval, dup.bd_id) == (e.BD_ALREADY_EXISTS, 10)
    assert add_bd(api, 0).retval == e.BD_ALREADY_EXISTS
    assert add_bd(api, 1 << 24).retval == e.BD_ID_EXCEED_MAX
    assert api.bridge_domain_add_del_v2(bd_id=77, is_add=False).retval == e.NO_SUCH_ENTRY
    assert api.bridge_domain_add_del_v2(bd_id=0, is_add=False).retval == e.BD_NOT_MODIFIABLE
    api.sw_interface_set_l2_bridge(rx_sw_if_index=UPLINK, bd_id=10)
    assert api.bridge_domain_add_del_v2(bd_id=10, is_add=False).retval == e.BD_IN_USE
    # The v1 message: the caller picks the id, the reply has none.
    r = api.bridge_domain_add_del(bd_id=500, flood=True)
    assert (r.retval, type(r).__name__) == (0, "bridge_domain_add_del_reply")
    assert api.bridge_domain_add_del(bd_id=500, is_add=False).retval == 0


def test_bridge_domain_dump(api):
    add_bd(api, 7, bd_tag="seven", learn=False, mac_age=5)
    add_bd(api, 3)
    rows = api.bridge_domain_dump()
    assert [b.bd_id for b in rows] == [7, 3]  # bd_index order, not bd_id order
    seven = rows[0]
    assert (seven.bd_tag, seven.learn, seven.flood, seven.mac_age) == ("seven", False, True, 5)
    assert (seven.bvi_sw_if_index, seven.uu_fwd_sw_if_index, seven.n_sw_ifs) == (NO_INDEX,) * 2 + (
        0,
    )
    assert [b.bd_id for b in api.bridge_domain_dump(bd_id=3)] == [3]
    assert api.bridge_domain_dump(bd_id=0) == []
    assert api.bridge_domain_dump(bd_id=99) == []
    assert api.bridge_domain_dump(sw_if_index=UPLINK) == []  # unimplemented filter in VPP


def test_l2_bridge_membership(api):
    a, b = vhost(api, "/a").sw_if_index, vhost(api, "/b").sw_if_index
    for itf in (UPLINK, a, b):
        assert api.sw_interface_set_l2_bridge(rx_sw_if_index=itf, bd_id=9, shg=0).retval == 0
    bd = api.bridge_domain_dump(bd_id=9)[0]  # created on demand, with VPP's defaults
    assert (bd.flood, bd.uu_flood, bd.forward, bd.learn, bd.arp_term, bd.arp_ufwd) == (
        True,
        True,
        True,
        True,
        False,
        True,
    )
    assert [m.sw_if_index for m in bd.sw_if_details] == [UPLINK, a, b]
    assert type(bd.sw_if_details[0]).__name__ == "vl_api_bridge_domain_sw_if_t"
    api.sw_interface_set_l2_bridge(rx_sw_if_index=a, bd_id=0, enable=False)
    assert [m.sw_if_index for m in api.bridge_domain_dump(bd_id=9)[0].sw_if_details] == [UPLINK, b]
    api.sw_interface_set_l2_bridge(rx_sw_if_index=b, bd_id=11, shg=2)  # moves
    assert [m.shg for m in api.bridge_domain_dump(bd_id=11)[0].sw_if_details] == [2]
    assert api.bridge_domain_dump(bd_id=9)[0].n_sw_ifs == 1
    assert api.sw_interface_set_l2_bridge(rx_sw_if_index=0, bd_id=9).retval == e.NON_ETHERNET
    assert api.sw_interface_set_l2_bridge(rx_sw_if_index=a, bd_id=9, port_type=7).retval == -7
    assert api.sw_interface_set_l2_bridge(rx_sw_if_index=a, bd_id=1 << 24).retval == -122
    assert api.sw_interface_set_l2_bridge(rx_sw_if_index=88, bd_id=9).retval == -2


def test_vlan_tag_rewrite(api):
    sub = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=100).sw_if_index
    pop = dict(vtr_op=3, push_dot1q=1)
    assert api.l2_interface_vlan_tag_rewrite(sw_if_index=UPLINK, **pop).retval == -72
    assert api.l2_interface_vlan_tag_rewrite(sw_if_index=sub, vtr_op=9).retval == -7
    assert api.l2_interface_vlan_tag_rewrite(sw_if_index=77, **pop).retval == -2
    assert api.l2_interface_vlan_tag_rewrite(sw_if_index=sub, **pop).retval == 0
    d = api.sw_interface_dump(sw_if_index=sub)[0]
    assert (d.vtr_op, d.vtr_push_dot1q, d.vtr_tag1) == (3, 0, 0)  # pop pushes nothing
    api.l2_interface_vlan_tag_rewrite(sw_if_index=UPLINK, vtr_op=1, push_dot1q=1, tag1=55)
    d = api.sw_interface_dump(sw_if_index=UPLINK)[0]
    assert (d.vtr_op, d.vtr_push_dot1q, d.vtr_tag1) == (1, 1, 55)


def test_random_bridge_domain_ids(serve_vpp):
    emu = VppEmulator(random_bd_ids=True, seed=3)
    c = serve_vpp(emu).connect("x")
    ids = {add_bd(c.api).bd_id for _ in range(20)}
    assert len(ids) == 20 and all(1 <= i < 1 << 24 for i in ids) and ids != set(range(1, 21))


# --- events ---
def subscribe(vpp_api, pid=77):
    got = []
    client = vpp_api.connect("listener")
    client.register_event_callback(lambda name, msg: got.append((name, msg)))
    assert client.api.want_interface_events(enable_disable=1, pid=pid).retval == 0
    return client, got


def heard(client, got):
    """The events ``client`` was sent so far: its control_ping's reply comes after them."""
    client.api.control_ping()
    return got


def test_interface_events_carry_the_event_bits(vpp, vpp_api, api):
    client, got = subscribe(vpp_api)
    sw = vhost(api).sw_if_index
    api.sw_interface_set_flags(sw_if_index=sw, flags=1)
    vpp.vm_connect("/run/vpp/s1")
    api.sw_interface_set_flags(sw_if_index=sw, flags=0)
    api.delete_vhost_user_if(sw_if_index=sw)
    seen = [(m.sw_if_index, int(m.flags), m.deleted) for _, m in heard(client, got)]
    assert seen == [
        (sw, 0, False),  # created
        (sw, 1, False),  # admin up (the event says only that)
        (sw, 2, False),  # the VM connected: link up
        (sw, 0, False),  # admin down (and link down, in the same batch)
        (sw, 0, True),  # deleted
    ]
    name, msg = got[0]
    assert name == "sw_interface_event" and type(msg).__name__ == name
    assert (msg.pid, msg.client_index) == (77, client.transport.socket_index)


def test_one_event_per_interface_per_call(vpp, vpp_api, api):
    sw = vhost(api).sw_if_index
    api.sw_interface_set_flags(sw_if_index=sw, flags=1)
    vpp.vm_connect("/run/vpp/s1")
    client, got = subscribe(vpp_api)
    api.delete_vhost_user_if(sw_if_index=sw)  # admin down + link down + deleted
    assert [(m.sw_if_index, int(m.flags), m.deleted) for _, m in heard(client, got)] == [
        (sw, 0, True)
    ]


def test_subscriptions(vpp_api, api):
    client, got = subscribe(vpp_api)
    again = client.api.want_interface_events(enable_disable=1, pid=1)
    assert again.retval == e.INVALID_REGISTRATION
    assert client.api.want_interface_events(enable_disable=0, pid=1).retval == 0
    assert client.api.want_interface_events(enable_disable=0, pid=1).retval == -31
    vhost(api)
    assert heard(client, got) == []  # unsubscribed; and `api`'s own client never subscribed


def test_a_reply_comes_after_the_events_before_it(vpp_api):
    # vpp_papi's reader thread reads the socket in order and runs the callback
    # of each event before it hands a later reply over: so the events a call
    # caused are written before its reply. Many calls, so that a race would show.
    client = vpp_api.connect("agent")
    seen: list[int] = []
    client.register_event_callback(lambda name, msg: seen.append(msg.sw_if_index))
    client.api.want_interface_events(enable_disable=1, pid=1)
    for i in range(200):
        idx = client.api.create_vhost_user_if_v2(sock_filename=f"/s{i}").sw_if_index
        assert seen[-1:] == [idx]  # its creation's event, delivered already
        client.api.sw_interface_set_flags(sw_if_index=idx, flags=1)
        assert len(seen) == 2 * i + 2 and seen[-1] == idx


# --- restarts, faults, counters ---
def test_restart_wipes_state_but_not_the_nics_and_drops_connections(vpp, vpp_api, api):
    pid = api.control_ping().vpe_pid
    vhost(api)
    add_bd(api)
    vpp.restart()
    with pytest.raises(OSError):
        api.control_ping()
    client = vpp_api.connect("again")
    assert names(client.api) == {0: "local0", UPLINK: "GigabitEthernet0/8/0"}
    assert client.api.bridge_domain_dump() == []
    assert client.api.control_ping().vpe_pid != pid
    assert client.api.sw_interface_dump(sw_if_index=UPLINK)[0].flags == 2  # rediscovered


def test_stop_start_and_dropped_connections(vpp, vpp_api, api):
    vhost(api)
    vpp.drop_connections()
    with pytest.raises(OSError):
        api.control_ping()
    client = vpp_api.connect("c")
    assert len(client.api.sw_interface_vhost_user_dump()) == 1  # VPP kept its state
    vpp.stop()
    with pytest.raises(OSError):
        vpp_api.connect("d")  # refused
    vpp.start()
    fresh = vpp_api.connect("e")
    assert fresh.api.sw_interface_vhost_user_dump() == []


def test_fail_next(vpp, vpp_api):
    vpp.fail_next(2)
    for _ in range(2):
        with pytest.raises(OSError):  # the connection breaks
            vpp_api.connect("failing").api.control_ping()
    api = vpp_api.connect("test").api
    assert api.control_ping().retval == 0
    vpp.fail_next(1, retval=-9, message="create_vlan_subif")
    assert api.control_ping().retval == 0  # not the message that fails
    assert api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=5).retval == -9
    assert len(names(api)) == 2  # no effect
    vpp.fail_next(1, retval=-9)
    assert api.sw_interface_dump() == []  # a failing dump has no details


def test_counters(vpp, api):
    vpp.reset_counters()
    api.sw_interface_dump()
    api.control_ping()
    api.sw_interface_set_flags(sw_if_index=UPLINK, flags=1)
    api.sw_interface_set_flags(sw_if_index=99, flags=1)  # refused, but it was a mutation call
    assert vpp.calls["sw_interface_set_flags"] == 2 and vpp.calls["sw_interface_dump"] == 1
    assert vpp.mutations == 2


def test_many_ports_are_cheap(vpp, api):
    """The agent benchmark's shape: 500 ports of ~6 calls each, through vpp_papi
    (whose own share, about 0.3 ms a call here, is most of it)."""
    api.sw_interface_set_flags(sw_if_index=UPLINK, flags=1)
    start = time.perf_counter()
    for i in range(500):
        sw = vhost(api, f"/run/vpp/p{i}", use_custom_mac=True, mac_address="fa:16:3e:00:00:01")
        sw = sw.sw_if_index
        api.sw_interface_tag_add_del(is_add=True, sw_if_index=sw, tag=f"net-vpp.port:{i}")
        api.sw_interface_set_mtu(sw_if_index=sw, mtu=[1500] * 4)
        api.sw_interface_set_flags(sw_if_index=sw, flags=1)
        api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=1 + i // 50)
        api.sw_interface_dump(sw_if_index=sw)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"{elapsed:.2f}s for 3,000 calls"


# --- the declaration language and new-style streams ---
def test_services_parse_as_vppapigen_derives_them():
    from networking_vpp.testing.vpp.apidef import parse

    mod = parse(
        """
        define thing_get { u32 client_index; u32 context; u32 cursor; };
        define thing_get_reply { u32 context; i32 retval; u32 cursor; };
        define thing_details { u32 context; u32 id; };
        service { rpc thing_get returns thing_get_reply stream thing_details; };
        define widget_dump { u32 client_index; u32 context; };
        define widget_details { u32 context; string name[]; };
        autoreply define widget_poke { u32 client_index; u32 context; bool hard [default=true]; };
        """,
        "test",
    )
    assert mod.services["thing_get"].as_json() == {
        "reply": "thing_get_reply",
        "stream": True,
        "stream_msg": "thing_details",
    }
    assert mod.services["widget_dump"].as_json() == {"reply": "widget_details", "stream": True}
    assert mod.services["widget_poke"].as_json() == {"reply": "widget_poke_reply"}
    poke = [f.as_json() for f in mod.messages["widget_poke"].fields]
    assert poke[0] == ["u16", "_vl_msg_id"] and poke[-1] == ["bool", "hard", {"default": "true"}]
    assert [f.name for f in mod.messages["widget_poke_reply"].fields] == [
        "_vl_msg_id",
        "context",
        "retval",
    ]
