"""The agent against a real etcd and the VPP emulator: ports end to end."""

from __future__ import annotations

import grp
import os
import stat

import pytest

from networking_vpp.agent.vpp import types as t
from networking_vpp.common import model
from networking_vpp.testing.vpp import Frame
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, UPLINK1, UPLINK2, binding, mark

MAC_A = "fa:16:3e:00:00:0a"
MAC_B = "fa:16:3e:00:00:0b"
MAC_C = "fa:16:3e:00:00:0c"


@pytest.fixture
def look(rig):
    """A second API client that reads VPP's state the way an operator would."""
    return rig.look


def by_tag(look, tag):
    return {i.tag: i for i in look.dump_interfaces() if i.tag}.get(tag)


def bd_of(look, sw_if_index):
    for bd in look.dump_bridge_domains():
        if sw_if_index in bd.members:
            return bd
    return None


def test_vlan_vhostuser_port_programmed_then_reported_after_vm_connects(rig, look):
    agent = rig.start_agent()
    rig.put(binding("p1", mac_address=MAC_A, mtu=1450))
    wait_for(lambda: by_tag(look, mark(t.PORT_TAG + "p1")), what="vhost-user interface")
    assert agent.wait_converged(10)
    # as converged (seen at creation, it had VPP's MTU)
    port = by_tag(look, mark(t.PORT_TAG + "p1"))
    # Exact objects: the vhost-user interface...
    vhost = {v.sw_if_index: v for v in look.dump_vhost_user()}[port.sw_if_index]
    assert vhost.sock_filename == "/run/vpp/vhup1"
    assert not vhost.is_server  # QEMU serves the socket (the default role); VPP connects
    assert port.mac_address == MAC_A
    assert port.mtu == 1450
    assert port.admin_up
    # ... the VLAN sub-interface that pops tag 100 ...
    sub = by_tag(look, mark(t.UPLINK_TAG + "100" + t.EFP_MARK))
    assert sub.name == f"{UPLINK1}.100"
    assert sub.vlan == 100
    assert sub.vtr_op == 3  # pop-1
    assert sub.admin_up
    # ... and one bridge domain for the network holding both.
    bd = bd_of(look, port.sw_if_index)
    assert bd.tag == mark(t.NETWORK_TAG + "net-a")
    assert bd.members == {port.sw_if_index, sub.sw_if_index}
    assert bd.learn and bd.flood and bd.forward
    # Nova must not hear "plugged" before the VM is there: the port is down.
    down = rig.state("p1")
    assert (down.status, down.reason) == ("down", "VM not connected")
    assert down.programmed.sw_if_index == port.sw_if_index
    rig.vpp.vm_connect("/run/vpp/vhup1")
    state = rig.wait_state("p1")
    assert state.binding_id == "bind-p1"
    assert state.programmed.sw_if_index == port.sw_if_index
    assert state.programmed.bridge_domain == bd.bd_id
    assert state.programmed.vlan == 100
    assert state.programmed.uplink == UPLINK1


def test_a_waiting_vm_is_reported_active_in_one_pass(rig, look):
    # QEMU waits on the socket, so the link comes up at admin-up, in the middle
    # of the port's own reconcile: the read-back after it sees the link, and
    # VPP's event about it (delivered before admin-up's reply) asks no second
    # pass. Then the VM leaves, and the event alone reports the port down.
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.put(binding("p1", mac_address=MAC_A))
    state = rig.wait_state("p1")
    assert state.programmed.interface.startswith("VirtualEthernet")
    assert agent.wait_converged(10)
    assert agent.ports.passes == 1
    rig.vpp.vm_disconnect("/run/vpp/vhup1")
    assert rig.wait_state("p1", "down").reason == "VM not connected"
    assert agent.ports.passes == 2
    rig.vpp.vm_connect("/run/vpp/vhup1")  # the VM is back: so is the port
    rig.wait_state("p1")


def test_a_lost_link_event_heals_at_the_next_link_refresh(rig, look):
    agent = rig.start_agent(link_refresh_interval=0.3)
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.put(binding("p1", mac_address=MAC_A))
    rig.wait_state("p1")
    # The VM leaves while the agent hears nothing of it (an event lost).
    agent.vpp.on_interface_event(lambda event: None)
    rig.vpp.vm_disconnect("/run/vpp/vhup1")
    agent.vpp.ping()  # its reply comes after the event
    agent.vpp.on_interface_event(agent.on_vpp_event)
    assert rig.wait_state("p1", "down").reason == "VM not connected"  # by the link refresh


@pytest.mark.parametrize("kind", ["vhostuser", "tap"])
def test_an_admin_down_port_is_reported_down_and_active_again_once_up(rig, look, kind):
    # The port stays programmed (and its report says how), admin down in VPP.
    if kind == "tap":
        rig.vpp.add_kernel_interface("tapp1")
        port = binding("p1", binding_type="tap", tap=None)
    else:
        rig.vpp.vm_connect("/run/vpp/vhup1")
        port = binding("p1")
    rig.start_agent()
    rig.put(port)
    active = rig.wait_state("p1")
    rig.put(model.replace(port, admin_state_up=False))
    down = rig.wait_state("p1", "down")
    assert down.reason == "admin down"
    assert down.programmed == active.programmed
    assert not by_tag(look, mark(t.PORT_TAG + "p1")).admin_up
    rig.put(port)
    assert rig.wait_state("p1").programmed == active.programmed
    assert by_tag(look, mark(t.PORT_TAG + "p1")).admin_up


def test_port_delete_removes_everything(rig, look):
    rig.start_agent()
    rig.put(binding("p1"))
    wait_for(lambda: by_tag(look, mark(t.PORT_TAG + "p1")))
    before = {i.sw_if_index for i in look.dump_interfaces()}
    rig.delete("p1")
    wait_for(lambda: by_tag(look, mark(t.PORT_TAG + "p1")) is None, what="port removal")
    wait_for(lambda: not look.dump_bridge_domains(), what="bridge domain collected")
    assert by_tag(look, mark(t.UPLINK_TAG + "100" + t.EFP_MARK)) is None
    remaining = {i.name for i in look.dump_interfaces()}
    assert remaining == {"local0", UPLINK1, UPLINK2}
    # local0, the uplinks, the VLAN sub-interface, the port, and the guards of
    # the port and of the uplink in use (default sub-interfaces: isolation.py)
    assert len(before) == 7
    assert look.dump_vhost_user() == []
    assert rig.state("p1") is None


def test_flat_and_vlan_networks_share_an_uplink_and_isolate(rig, look):
    agent = rig.start_agent()
    rig.put(binding("a", mac_address=MAC_A, network_id="net-v", segmentation_id=200))
    rig.put(binding("b", mac_address=MAC_B, network_id="net-v", segmentation_id=200))
    rig.put(
        binding(
            "c", mac_address=MAC_C, network_id="net-f", network_type="flat", segmentation_id=None
        )
    )
    rig.put(binding("d", mac_address="fa:16:3e:00:00:0d", network_id="net-w", segmentation_id=201))
    for p in "abcd":
        wait_for(lambda p=p: by_tag(look, mark(t.PORT_TAG + p)), what=f"port {p}")
    assert agent.wait_converged(10)
    bds = {bd.tag: bd for bd in look.dump_bridge_domains()}
    assert set(bds) == {mark(t.NETWORK_TAG + n) for n in ("net-v", "net-f", "net-w")}
    a, b, c, d = (by_tag(look, mark(t.PORT_TAG + p)) for p in "abcd")
    uplink = {i.name: i for i in look.dump_interfaces()}[UPLINK1]
    assert bds[mark(t.NETWORK_TAG + "net-v")].members == {
        a.sw_if_index,
        b.sw_if_index,
        by_tag(look, mark(t.UPLINK_TAG + "200" + t.EFP_MARK)).sw_if_index,
    }
    assert bds[mark(t.NETWORK_TAG + "net-f")].members == {c.sw_if_index, uplink.sw_if_index}
    for p in "abcd":
        rig.vpp.vm_connect(f"/run/vpp/vhu{p}")
    # Packet walk: A reaches B on its network, never C or D on others.
    out = rig.vpp.walk(Frame(src_mac=MAC_A, dst_mac="ff:ff:ff:ff:ff:ff"), ingress=a.sw_if_index)
    names = {e.name: e for e in out}
    assert b.name in names and c.name not in names and d.name not in names
    # Leaving by the uplink, the frame carries network net-v's VLAN tag.
    assert names[UPLINK1].vlans == (200,)
    # B's reply to A (now learnt) goes only to A.
    out = rig.vpp.walk(Frame(src_mac=MAC_B, dst_mac=MAC_A), ingress=b.sw_if_index)
    assert [e.name for e in out] == [a.name]
    # A frame from the wire tagged 201 reaches D only; untagged reaches the flat net.
    out = rig.vpp.walk(
        Frame(src_mac="52:54:00:99:99:99", dst_mac="ff:ff:ff:ff:ff:ff", vlans=(201,)),
        ingress=UPLINK1,
    )
    assert [e.name for e in out] == [d.name]
    out = rig.vpp.walk(
        Frame(src_mac="52:54:00:99:99:98", dst_mac="ff:ff:ff:ff:ff:ff"), ingress=UPLINK1
    )
    assert [e.name for e in out] == [c.name]


def test_tap_port_attaches_with_af_packet_and_reports_at_once(rig, look):
    rig.vpp.add_kernel_interface("tapt1")
    rig.start_agent()
    rig.put(binding("t1", binding_type="tap", tap=None))
    state = rig.wait_state("t1")
    itf = by_tag(look, mark(t.PORT_TAG + "t1"))
    assert itf.name == "host-tapt1"
    assert {a.host_if_name for a in look.dump_af_packet()} == {"tapt1"}
    assert state.programmed.interface == "host-tapt1"
    assert bd_of(look, itf.sw_if_index).tag == mark(t.NETWORK_TAG + "net-a")
    rig.delete("t1")
    wait_for(lambda: not look.dump_af_packet(), what="af_packet removed")
    wait_for(lambda: rig.state("t1") is None, what="report withdrawn")


@pytest.mark.parametrize(
    "l4",
    [dict(proto=6, src_port=40000, dst_port=22, tcp_flags=0x02), dict(proto=17, src_port=67)],
    ids=["tcp-syn", "udp-dhcp"],
)
def test_tap_ports_carry_tcp_and_udp_from_kernels_with_checksum_offload(rig, l4):
    # Veths at the kernel's defaults (TX checksum offload on) hand VPP partial
    # checksums: only af_packet's CKSUM_GSO gets them completed on the way.
    for name in ("tapt1", "tapt2"):
        rig.vpp.add_kernel_interface(name, tx_checksum_offload=True)
    rig.start_agent()
    rig.put(binding("t1", binding_type="tap", mac_address=MAC_A))
    rig.put(binding("t2", binding_type="tap", mac_address=MAC_B))
    one, two = rig.wait_state("t1").programmed, rig.wait_state("t2").programmed
    frame = Frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip="10.0.0.1", dst_ip="10.0.0.2", **l4)
    out = rig.vpp.walk(frame, ingress=one.sw_if_index)
    assert two.sw_if_index in {e.sw_if_index for e in out}
    assert all(e.checksum_ok for e in out), "a partial checksum reached the far end"
    assert rig.vpp.passes(frame.reply(), ingress=two.sw_if_index, egress=one.sw_if_index)
    # Created as VPP's own CLI creates host interfaces.
    assert rig.vpp.interface(one.sw_if_index).afp_flags == 1 | 2  # QDISC_BYPASS | CKSUM_GSO


def test_tap_port_waits_for_its_kernel_interface(rig, look):
    agent = rig.start_agent()
    rig.put(binding("t2", binding_type="tap", tap=None))
    wait_for(lambda: agent.queue.failures(("port", "t2")) >= 1, what="a failed attempt")
    assert rig.state("t2") is None
    rig.vpp.add_kernel_interface("tapt2")  # Nova made it: the retry succeeds
    rig.wait_state("t2", timeout=15)


def test_unmapped_physnet_is_reported_as_error_and_not_programmed(rig, look):
    agent = rig.start_agent()
    rig.put(binding("x", physnet="physnet9"))
    state = rig.wait_state("x", status="error")
    assert "physnet9" in state.reason and "not mapped" in state.reason
    assert agent.wait_converged(10)
    assert by_tag(look, mark(t.PORT_TAG + "x")) is None
    assert look.dump_bridge_domains() == []
    # The agent's own account says so too (what `networking-vpp status` reads).
    kv = wait_for(lambda: rig.etcd.get(KEYS.summary(rig.host)), what="summary")
    summary = model.decode(model.HostSummary, kv.key, kv.value)
    assert (summary.desired, summary.programmed, summary.errors) == (1, 0, ("x",))


def test_rebinding_to_another_network_moves_and_collects(rig, look):
    agent = rig.start_agent()
    rig.put(binding("p1", network_id="n1", segmentation_id=300))
    wait_for(lambda: by_tag(look, mark(t.UPLINK_TAG + "300" + t.EFP_MARK)))
    rig.put(binding("p1", network_id="n2", segmentation_id=301, physnet="physnet2"))
    wait_for(lambda: by_tag(look, mark(t.UPLINK_TAG + "301" + t.EFP_MARK)))
    assert agent.wait_converged(10)
    assert by_tag(look, mark(t.UPLINK_TAG + "300" + t.EFP_MARK)) is None
    assert [bd.tag for bd in look.dump_bridge_domains()] == [mark(t.NETWORK_TAG + "n2")]
    assert by_tag(look, mark(t.UPLINK_TAG + "301" + t.EFP_MARK)).name == f"{UPLINK2}.301"


def test_the_agent_makes_the_socket_directory_for_qemu(rig, tmp_path):
    # QEMU (not root) creates its socket there: the directory is its group's.
    group = grp.getgrgid(os.getegid()).gr_name
    path = tmp_path / "run" / "vhostuser"
    rig.start_agent(
        vhostuser_socket_dir=str(path), vhostuser_socket_group=group, vhostuser_socket_mode=0o2770
    )
    rig.put(binding("p1", vhostuser=model.VhostUser(str(path / "vhup1"))))
    rig.vpp.vm_connect(str(path / "vhup1"))
    rig.wait_state("p1")
    made = path.stat()
    assert (stat.S_IMODE(made.st_mode), made.st_gid) == (0o2770, os.getegid())


def test_a_socket_directory_it_cannot_make_is_an_error_on_vhostuser_ports(rig, tmp_path):
    (tmp_path / "run").write_text("")  # a file where the directory's parent should be
    rig.vpp.add_kernel_interface("tapt1")
    path = tmp_path / "run" / "vhostuser"
    agent = rig.start_agent(vhostuser_socket_dir=str(path))
    rig.put(binding("p1", vhostuser=model.VhostUser(str(path / "vhup1"))))
    rig.put(binding("t1", binding_type="tap", network_id="n-t", segmentation_id=101))
    state = rig.wait_state("p1", status="error")
    assert "vhost-user socket directory" in state.reason
    rig.wait_state("t1")  # the rest of the host goes on
    assert agent.wait_converged(10)
    assert "p1" not in agent.inventory.ports
