"""Receive queues and their modes, as VPP 26.10 keeps them (interface_api.c,
interface_cli.c set_hw_interface_change_rx_mode, plugins/vhost).

A vhost-user interface has no receive queue until its VM starts one (the
guest's first kick registers it, in polling mode); ``sw_interface_set_rx_mode``
for all queues of an interface without any succeeds and keeps nothing. The
queue and its mode outlive the VM's disconnection; without a VM (no kick file)
the interrupt modes are refused. af_packet queues start in interrupt mode,
NICs' in polling.
"""

from __future__ import annotations

import pytest

from networking_vpp.testing.vpp import errors as e

NO_INDEX = 0xFFFFFFFF
UPLINK = 1  # the vpp fixture's GigabitEthernet0/8/0
POLLING, INTERRUPT, ADAPTIVE, DEFAULT = 1, 2, 3, 4
SOCK = "/run/vpp/s1"


@pytest.fixture
def api(vpp_api):
    return vpp_api.connect("test").api


def placement(api, sw_if_index=NO_INDEX):
    return [
        (d.sw_if_index, d.queue_id, d.worker_id, int(d.mode))
        for d in api.sw_interface_rx_placement_dump(sw_if_index=sw_if_index)
    ]


def set_mode(api, sw_if_index, mode, queue=None):
    return api.sw_interface_set_rx_mode(
        sw_if_index=sw_if_index,
        queue_id_valid=queue is not None,
        queue_id=queue or 0,
        mode=mode,
    ).retval


def test_a_vhost_user_queue_exists_once_its_vm_connected_and_keeps_its_mode(vpp, vpp_api, api):
    sw = api.create_vhost_user_if_v2(sock_filename=SOCK, is_server=False).sw_if_index
    assert placement(api, sw) == []
    assert set_mode(api, sw, ADAPTIVE) == 0  # no queue to set: accepted, nothing kept
    assert set_mode(api, sw, ADAPTIVE, queue=0) == e.UNIMPLEMENTED  # "unknown queue 0"
    vpp.vm_connect(SOCK)
    assert placement(api, sw) == [(sw, 0, 0, POLLING)]  # the vring's default
    assert set_mode(api, sw, ADAPTIVE) == 0
    assert placement(api, sw) == [(sw, 0, 0, ADAPTIVE)]
    vpp.vm_disconnect(SOCK)
    assert placement(api, sw) == [(sw, 0, 0, ADAPTIVE)]  # kept without the VM
    assert set_mode(api, sw, ADAPTIVE) == 0  # unchanged: nothing asked of the driver
    assert set_mode(api, sw, INTERRUPT) == e.UNIMPLEMENTED  # no kick file, no interrupts
    assert set_mode(api, sw, POLLING) == 0
    vpp.vm_connect(SOCK)
    assert placement(api, sw) == [(sw, 0, 0, POLLING)]  # the VM's return changes nothing
    assert set_mode(api, sw, DEFAULT) == 0  # the interface's default: polling
    assert set_mode(api, sw, INTERRUPT, queue=0) == 0
    assert placement(api, sw) == [(sw, 0, 0, INTERRUPT)]
    assert set_mode(api, sw, 0) == e.UNIMPLEMENTED  # UNKNOWN: the driver refuses it
    vpp.restart()  # a new VPP: queues anew
    assert placement(vpp_api.connect("after").api) == [(UPLINK, 0, 0, POLLING)]


def test_nics_poll_af_packet_waits_for_interrupts_and_the_rest_is_refused(vpp, api):
    vpp.add_kernel_interface("tap0")
    afp = api.af_packet_create_v3(mode=1, host_if_name="tap0").sw_if_index
    sub = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=10).sw_if_index
    assert placement(api) == [(UPLINK, 0, 0, POLLING), (afp, 0, 0, INTERRUPT)]
    assert placement(api, 0) == []  # local0 has no input queue
    assert placement(api, sub) == []  # sub-interfaces are not dumped
    assert placement(api, 77) == []
    assert set_mode(api, sub, ADAPTIVE) == e.INVALID_VALUE
    assert set_mode(api, 77, ADAPTIVE) == e.INVALID_SW_IF_INDEX
    assert set_mode(api, UPLINK, ADAPTIVE) == 0
    assert placement(api, UPLINK) == [(UPLINK, 0, 0, ADAPTIVE)]
    assert vpp.calls["sw_interface_set_rx_mode"] == 3
