"""The emulator's packet walk: classification, L2 forwarding, tag rewrite, drops."""

from __future__ import annotations

import pytest

from networking_vpp.testing.vpp import Frame, L2Features

UPLINK = 1
BCAST = "ff:ff:ff:ff:ff:ff"
MAC_A, MAC_B, MAC_C = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b", "fa:16:3e:00:00:0c"
WIRE = "52:54:00:99:99:99"


class Net:
    """A compute host wired by hand: VLAN 100 network (A, B, uplink.100), flat network (C)."""

    def __init__(self, server) -> None:
        self.vpp = vpp = server.emulator
        c = server.connect("wiring")
        self.api = api = c.api
        self.port = {}
        for name, sock in (("a", "/a"), ("b", "/b"), ("c", "/c")):
            sw = api.create_vhost_user_if_v2(is_server=True, sock_filename=sock).sw_if_index
            self.port[name] = sw
            vpp.vm_connect(sock)
        self.sub = api.create_vlan_subif(sw_if_index=UPLINK, vlan_id=100).sw_if_index
        api.l2_interface_vlan_tag_rewrite(sw_if_index=self.sub, vtr_op=3, push_dot1q=1)
        for sw in (UPLINK, self.sub, *self.port.values()):
            assert api.sw_interface_set_flags(sw_if_index=sw, flags=1).retval == 0
        for sw in (self.port["a"], self.port["b"], self.sub):
            api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=1)
        for sw in (self.port["c"], UPLINK):
            api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=2)

    def walk(self, src, dst, ingress, vlans=()):
        return self.vpp.walk(Frame(src_mac=src, dst_mac=dst, vlans=vlans), ingress=ingress)

    def names(self, out):
        return sorted(e.name for e in out)


@pytest.fixture
def net(vpp_api):
    return Net(vpp_api)


def test_broadcast_floods_its_bridge_domain_only_and_leaves_tagged(net):
    out = net.walk(MAC_A, BCAST, net.port["a"])
    by_port = {e.sw_if_index: e for e in out}
    assert set(by_port) == {net.port["b"], UPLINK}
    assert by_port[UPLINK].vlans == (100,)  # pushed back by the pop-1 sub-interface
    assert by_port[UPLINK].via == net.sub and by_port[UPLINK].name == "GigabitEthernet0/8/0"
    assert by_port[net.port["b"]].vlans == ()


def test_learning_then_unicast(net):
    # Unknown unicast floods (uu_flood); then both ends are learnt.
    assert len(net.walk(MAC_A, MAC_B, net.port["a"])) == 2
    out = net.walk(MAC_B, MAC_A, net.port["b"])
    assert [e.sw_if_index for e in out] == [net.port["a"]]
    out = net.walk(MAC_A, MAC_B, net.port["a"])
    assert [e.sw_if_index for e in out] == [net.port["b"]]
    # A frame for a MAC learnt on the ingress itself goes nowhere.
    assert net.walk(MAC_B, MAC_A, net.port["a"]) == []


def test_tagged_frames_from_the_wire_are_classified(net):
    out = net.walk(WIRE, BCAST, UPLINK, vlans=(100,))
    assert net.names(out) == ["VirtualEthernet0/0/0", "VirtualEthernet0/0/1"]
    assert all(e.vlans == () for e in out)  # popped on input
    # Untagged goes to the main interface, which is in the flat network.
    assert [e.sw_if_index for e in net.walk(WIRE, BCAST, UPLINK)] == [net.port["c"]]
    # A tag without a sub-interface: an L2 port takes it as is (VPP's L2 port matches any tags).
    out = net.walk(WIRE, BCAST, UPLINK, vlans=(300,))
    assert [(e.sw_if_index, e.vlans) for e in out] == [(net.port["c"], (300,))]
    # Two tags do not match a one-tag exact-match sub-interface.
    out = net.walk(WIRE, BCAST, UPLINK, vlans=(100, 5))
    assert [e.sw_if_index for e in out] == [net.port["c"]]


def test_a_tagged_frame_on_an_l3_port_without_a_sub_interface_is_dropped(net):
    net.api.sw_interface_set_l2_bridge(rx_sw_if_index=UPLINK, bd_id=0, enable=False)
    assert net.walk(WIRE, BCAST, UPLINK, vlans=(300,)) == []
    assert net.walk(WIRE, BCAST, UPLINK) == []  # untagged on an L3 port: not L2 forwarded


def test_admin_down_and_link_down_drop(net, vpp):
    api = net.api
    api.sw_interface_set_flags(sw_if_index=net.port["b"], flags=0)
    assert [e.sw_if_index for e in net.walk(MAC_A, BCAST, net.port["a"])] == [UPLINK]
    api.sw_interface_set_flags(sw_if_index=net.port["b"], flags=1)
    vpp.vm_disconnect("/b")  # no VM: the vhost-user link is down
    assert [e.sw_if_index for e in net.walk(MAC_A, BCAST, net.port["a"])] == [UPLINK]
    assert net.walk(MAC_B, BCAST, net.port["b"]) == []  # nothing arrives on it either
    api.sw_interface_set_flags(sw_if_index=net.sub, flags=0)
    assert net.walk(MAC_A, BCAST, net.port["a"]) == []
    assert net.walk(WIRE, BCAST, UPLINK, vlans=(100,)) == []  # the sub-interface is down
    api.sw_interface_set_flags(sw_if_index=UPLINK, flags=0)
    assert net.walk(WIRE, BCAST, UPLINK) == []


def test_bridge_domain_flags(net):
    api = net.api
    api.bridge_domain_add_del_v2(bd_id=7, flood=False, uu_flood=False, forward=True, learn=True)
    for name in ("a", "b"):
        api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port[name], bd_id=7)
    assert net.walk(MAC_A, BCAST, net.port["a"]) == []  # no flooding
    assert net.walk(MAC_A, MAC_B, net.port["a"]) == []  # unknown unicast dropped
    net.walk(MAC_B, BCAST, net.port["b"])  # learnt, though dropped
    assert [e.sw_if_index for e in net.walk(MAC_A, MAC_B, net.port["a"])] == [net.port["b"]]
    api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port["b"], bd_id=0, enable=False)
    assert net.walk(MAC_A, MAC_B, net.port["a"]) == []  # it left: the MAC is forgotten


def test_no_learning_means_floods(net):
    api = net.api
    api.bridge_domain_add_del_v2(bd_id=8, flood=True, uu_flood=True, forward=True, learn=False)
    for name in ("a", "b", "c"):
        api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port[name], bd_id=8)
    net.walk(MAC_B, BCAST, net.port["b"])
    assert len(net.walk(MAC_A, MAC_B, net.port["a"])) == 2


def test_split_horizon_group(net):
    api = net.api
    api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port["a"], bd_id=1, shg=1)
    api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port["b"], bd_id=1, shg=1)
    assert [e.sw_if_index for e in net.walk(MAC_A, BCAST, net.port["a"])] == [UPLINK]


def test_l3_interfaces_forward_nothing_yet(net):
    api = net.api
    api.sw_interface_set_l2_bridge(rx_sw_if_index=net.port["a"], bd_id=0, enable=False)
    assert net.walk(MAC_A, BCAST, net.port["a"]) == []
    assert net.port["a"] not in {e.sw_if_index for e in net.walk(MAC_B, BCAST, net.port["b"])}


def test_acl_hooks_see_the_frame_at_input_and_output(net, vpp):
    seen = []

    class DenyToB(L2Features):
        def input(self, itf, frame):
            seen.append(("in", itf.sw_if_index, frame.vlans))
            return True

        def output(self, itf, frame):
            seen.append(("out", itf.sw_if_index, frame.vlans))
            return itf.sw_if_index != net.port["b"]

    vpp.features = DenyToB()
    out = net.walk(WIRE, BCAST, UPLINK, vlans=(100,))
    assert [e.sw_if_index for e in out] == [net.port["a"]]
    assert seen[0] == ("in", net.sub, ())  # after the input tag rewrite
    assert ("out", net.port["b"], ()) in seen


def test_ingress_must_be_a_port(net):
    with pytest.raises(ValueError):
        net.walk(MAC_A, BCAST, net.sub)
    with pytest.raises(ValueError):
        net.walk(MAC_A, BCAST, "nope")
    assert net.walk(MAC_A, BCAST, "VirtualEthernet0/0/0")  # by name


def test_push_and_translate_rewrites(net):
    api = net.api
    # A flat port pushing tag 42 on input; output pops it again.
    api.l2_interface_vlan_tag_rewrite(sw_if_index=net.port["c"], vtr_op=1, push_dot1q=1, tag1=42)
    out = net.walk(MAC_C, BCAST, net.port["c"])
    assert [(e.sw_if_index, e.vlans) for e in out] == [(UPLINK, (42,))]
    out = net.walk(WIRE, BCAST, UPLINK, vlans=(42,))
    assert [(e.sw_if_index, e.vlans) for e in out] == [(net.port["c"], ())]
    # translate 1:1 on the VLAN 100 sub-interface: 100 <-> 555 inside the bridge domain
    api.l2_interface_vlan_tag_rewrite(sw_if_index=net.sub, vtr_op=5, push_dot1q=1, tag1=555)
    out = net.walk(WIRE, BCAST, UPLINK, vlans=(100,))
    assert {e.vlans for e in out} == {(555,)}
    out = net.walk(MAC_A, BCAST, net.port["a"], vlans=())
    assert [e.vlans for e in out if e.sw_if_index == UPLINK] == []  # untagged: nothing to pop
    out = net.walk(MAC_A, BCAST, net.port["a"], vlans=(555,))
    assert [e.vlans for e in out if e.sw_if_index == UPLINK] == [(100,)]
