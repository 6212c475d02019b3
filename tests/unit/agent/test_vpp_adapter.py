"""The agent's VPP adapter against the VPP emulator's API socket (made as
``vpp-agent`` makes it): operations, dumps, errors."""

from __future__ import annotations

import pytest

from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import (
    VppAdapter,
    VppApiError,
    VppBatchError,
    VppConnectionError,
)
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.testing.vpp import errors as e

UPLINK = 1
MAC = "fa:16:3e:00:00:01"


def adapter_of(server) -> VppAdapter:
    return vpp_adapter(server.path, server.api_dir, "test")


@pytest.fixture
def adapter(vpp_api):
    a = adapter_of(vpp_api)
    a.connect()
    yield a
    a.disconnect()


def test_dump_interfaces_and_get_interface(vpp, adapter):
    rows = {i.sw_if_index: i for i in adapter.dump_interfaces()}
    assert set(rows) == {0, UPLINK}
    nic = rows[UPLINK]
    assert (nic.name, nic.dev_type, nic.mac_address) == (
        "GigabitEthernet0/8/0",
        "dpdk",
        "52:54:00:00:08:00",
    )
    assert (nic.admin_up, nic.link_up, nic.mtu, nic.link_mtu) == (False, True, 9000, 9000)
    assert (nic.sup_sw_if_index, nic.sub_id, nic.vlan, nic.vtr_op, nic.tag) == (UPLINK, 0, 0, 0, "")
    assert adapter.get_interface(UPLINK) == nic
    assert adapter.get_interface(99) is None


def test_vhost_user_port(vpp, adapter):
    sw = adapter.create_vhost_user("/run/vpp/vhu1", True, MAC, t.PORT_TAG + "p1")
    adapter.set_mtu(sw, 1450)
    adapter.set_admin_up(sw, True)
    itf = adapter.get_interface(sw)
    assert (itf.name, itf.dev_type, itf.mac_address) == ("VirtualEthernet0/0/0", "vhost-user", MAC)
    assert (itf.tag, itf.mtu, itf.admin_up, itf.link_up) == (t.PORT_TAG + "p1", 1450, True, False)
    [vu] = adapter.dump_vhost_user()
    assert vu == t.VhostUser(sw, "VirtualEthernet0/0/0", "/run/vpp/vhu1", True, 0, 0)
    vpp.vm_connect("/run/vpp/vhu1")
    assert adapter.get_interface(sw).link_up
    assert adapter.dump_vhost_user()[0].num_regions > 0
    with pytest.raises(VppApiError) as err:
        adapter.create_vhost_user("/run/vpp/vhu1", True, MAC, "again")
    assert err.value.retval == e.IF_ALREADY_EXISTS
    assert err.value.message == "create_vhost_user_if_v2"
    adapter.delete_vhost_user(sw)
    assert adapter.dump_vhost_user() == []
    with pytest.raises(VppApiError) as err:
        adapter.delete_vhost_user(sw)
    assert err.value.retval == e.INVALID_SW_IF_INDEX


def test_af_packet_port(vpp, adapter):
    with pytest.raises(VppApiError) as err:
        adapter.create_af_packet("tapabc", t.PORT_TAG + "p2")
    assert err.value.retval == e.INVALID_INTERFACE
    vpp.add_kernel_interface("tapabc")
    sw = adapter.create_af_packet("tapabc", t.PORT_TAG + "p2")
    itf = adapter.get_interface(sw)
    assert (itf.name, itf.dev_type, itf.tag, itf.link_up) == (
        "host-tapabc",
        "af-packet",
        t.PORT_TAG + "p2",
        True,
    )
    assert itf.mac_address.startswith("02:fe:")
    assert adapter.dump_af_packet() == [t.AfPacket(sw, "tapabc")]
    adapter.delete_af_packet("tapabc")
    assert adapter.dump_af_packet() == []
    with pytest.raises(VppApiError) as err:
        adapter.delete_af_packet("tapabc")
    assert err.value.retval == e.SYSCALL_ERROR_1


def test_uplink_sub_interface(adapter):
    sub = adapter.create_vlan_subif(UPLINK, 100, t.UPLINK_TAG + "physnet1.100")
    adapter.set_vlan_pop1(sub)
    with pytest.raises(VppApiError) as err:
        adapter.set_admin_up(sub, True)  # the port is still down
    assert err.value.retval == e.UNSPECIFIED
    adapter.set_admin_up(UPLINK, True)
    adapter.set_admin_up(sub, True)
    itf = adapter.get_interface(sub)
    assert (itf.name, itf.sup_sw_if_index, itf.sub_id, itf.vlan, itf.vtr_op) == (
        "GigabitEthernet0/8/0.100",
        UPLINK,
        100,
        100,
        3,
    )
    assert (itf.tag, itf.admin_up, itf.link_up, itf.dev_type) == (
        t.UPLINK_TAG + "physnet1.100",
        True,
        True,
        "dpdk",
    )
    with pytest.raises(VppApiError) as err:
        adapter.create_vlan_subif(UPLINK, 100, "dup")
    assert err.value.retval == e.VLAN_ALREADY_EXISTS
    with pytest.raises(VppApiError) as err:
        adapter.set_vlan_pop1(UPLINK)  # an untagged port has no tag to pop
    assert err.value.retval == e.INVALID_VLAN_TAG_COUNT
    adapter.delete_subif(sub)
    assert adapter.get_interface(sub) is None
    with pytest.raises(VppApiError) as err:
        adapter.delete_subif(UPLINK)
    assert err.value.retval == e.INVALID_SUB_SW_IF_INDEX


def test_bridge_domains(adapter):
    bd = adapter.create_bridge_domain(t.NETWORK_TAG + "n1")
    assert bd == 1
    sw = adapter.create_vhost_user("/run/vpp/vhu1", True, MAC, t.PORT_TAG + "p1")
    adapter.set_bridge(UPLINK, bd)
    adapter.set_bridge(sw, bd)
    assert adapter.dump_bridge_domains() == [
        t.BridgeDomain(
            bd, t.NETWORK_TAG + "n1", True, True, True, True, False, frozenset({UPLINK, sw})
        )
    ]
    with pytest.raises(VppApiError) as err:
        adapter.delete_bridge_domain(bd)
    assert err.value.retval == e.BD_IN_USE
    adapter.unset_bridge(sw)
    adapter.unset_bridge(UPLINK)
    adapter.delete_bridge_domain(bd)
    assert adapter.dump_bridge_domains() == []
    with pytest.raises(VppApiError) as err:
        adapter.delete_bridge_domain(bd)
    assert err.value.retval == e.NO_SUCH_ENTRY
    with pytest.raises(VppApiError) as err:
        adapter.set_bridge(99, 5)
    assert err.value.retval == e.INVALID_SW_IF_INDEX


def test_tags_and_mutation_counter(adapter):
    before = adapter.mutations
    adapter.set_tag(UPLINK, "net-vpp.x")
    adapter.dump_interfaces()
    adapter.ping()
    assert adapter.mutations == before + 1
    with pytest.raises(VppApiError) as err:
        adapter.set_tag(UPLINK, "")
    assert err.value.retval == e.INVALID_VALUE


def test_interface_events_reach_the_callback(vpp, vpp_api):
    events = []
    a = adapter_of(vpp_api)
    a.on_interface_event(events.append)
    a.connect()
    sw = a.create_vhost_user("/run/vpp/vhu1", True, MAC, "p")
    a.set_admin_up(sw, True)
    vpp.vm_connect("/run/vpp/vhu1")
    a.delete_vhost_user(sw)
    a.ping()  # its reply comes after the events
    assert events == [
        t.InterfaceEvent(sw, admin_up=False, link_up=False, deleted=False),
        t.InterfaceEvent(sw, admin_up=True, link_up=False, deleted=False),
        t.InterfaceEvent(sw, admin_up=False, link_up=True, deleted=False),
        t.InterfaceEvent(sw, admin_up=False, link_up=False, deleted=True),
    ]


def test_restart_is_a_connection_error_then_reconnect_works(vpp, adapter):
    adapter.create_vhost_user("/run/vpp/vhu1", True, MAC, "p")
    vpp.restart()
    with pytest.raises(VppConnectionError):
        adapter.ping()
    assert not adapter.connected
    with pytest.raises(VppConnectionError):
        adapter.dump_interfaces()
    adapter.connect()
    assert adapter.dump_vhost_user() == []
    assert [i.name for i in adapter.dump_interfaces()] == ["local0", "GigabitEthernet0/8/0"]


def test_connect_to_a_stopped_vpp_and_injected_faults(vpp, vpp_api):
    a = adapter_of(vpp_api)
    vpp.stop()
    with pytest.raises(VppConnectionError):
        a.connect()
    vpp.start()
    a.connect()
    vpp.fail_next(1)
    with pytest.raises(VppConnectionError):
        a.ping()
    a.connect()
    vpp.fail_next(1, retval=e.UNSPECIFIED, message="bridge_domain_add_del_v2")
    with pytest.raises(VppApiError) as err:
        a.create_bridge_domain("x")
    assert err.value.retval == -1
    assert a.create_bridge_domain("x") == 1


def test_a_batch_goes_on_past_a_failure_and_reports_it_at_the_end(vpp, adapter):
    # The calls are pipelined on the socket; VPP answers each, so a failure is
    # said at the batch's end, after the calls behind it ran.
    done: list[str] = []
    with pytest.raises(VppBatchError) as err:
        with adapter.batch():
            adapter.set_admin_up(99, True)
            adapter.set_mtu(UPLINK, 1400, then=lambda: done.append("mtu"))
            adapter.set_admin_up(UPLINK, True, then=lambda: done.append("up"))
    assert (err.value.message, err.value.name) == ("sw_interface_set_flags", "INVALID_SW_IF_INDEX")
    assert done == ["mtu", "up"]
    assert vpp.interface(UPLINK).admin_up
