"""af_packet and L4 checksums: what a real VPP 26.06 did with veth offloads on.

The kernel hands a frame from a veth whose TX checksum offload is on (its
default) with a partial TCP/UDP checksum. Only an af_packet interface created
with CKSUM_GSO asks the kernel for the virtio-net header that says so, and
has the checksum completed on the way out; without it the frame reaches the
far end with a bad checksum and the receiver drops it. ICMP's checksum is
always computed by the kernel.
"""

from __future__ import annotations

import pytest

from networking_vpp.testing.vpp import Frame

QDISC_BYPASS, CKSUM_GSO = 1, 2
MAC_A, MAC_B, MAC_V = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b", "fa:16:3e:00:00:0c"
TCP_SYN = dict(proto=6, src_port=40000, dst_port=22, tcp_flags=0x02)
UDP_DHCP = dict(proto=17, src_port=67, dst_port=68)
ICMP_ECHO = dict(proto=1, icmp_type=8, icmp_code=0)


class Host:
    """Taps ``a`` and ``b`` (af_packet) and a VM ``v`` (vhost-user) in one bridge domain."""

    def __init__(self, server, flags: int, offloads: bool = True) -> None:
        self.vpp = vpp = server.emulator
        client = server.connect("wiring")
        api = client.api
        self.port = {}
        for name in ("a", "b"):
            vpp.add_kernel_interface(f"tap{name}", tx_checksum_offload=offloads)
            reply = api.af_packet_create_v3(
                mode=1, host_if_name=f"tap{name}", use_random_hw_addr=True, flags=flags
            )
            assert reply.retval == 0
            self.port[name] = reply.sw_if_index
        self.port["v"] = api.create_vhost_user_if_v2(sock_filename="/v").sw_if_index
        vpp.vm_connect("/v")
        for sw in self.port.values():
            assert api.sw_interface_set_flags(sw_if_index=sw, flags=1).retval == 0
            api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=1)

    def send(self, src: str, dst: str, **l4: object):
        mac = {"a": MAC_A, "b": MAC_B, "v": MAC_V}
        frame = Frame(
            src_mac=mac[src], dst_mac=mac[dst], src_ip="10.0.0.1", dst_ip="10.0.0.2", **l4
        )
        return frame, self.vpp.walk(frame, ingress=self.port[src])


@pytest.mark.parametrize("l4", [TCP_SYN, UDP_DHCP], ids=["tcp", "udp"])
def test_without_cksum_gso_tcp_and_udp_arrive_with_a_bad_checksum(vpp, vpp_api, l4):
    host = Host(vpp_api, flags=QDISC_BYPASS)
    frame, out = host.send("a", "b", **l4)
    assert [e.sw_if_index for e in out] == [host.port["b"], host.port["v"]]  # VPP sends it
    assert not any(e.checksum_ok for e in out)  # ... with the kernel's partial checksum
    # Delivered means accepted by the receiver: it drops the frame.
    assert not vpp.passes(frame, host.port["a"], host.port["b"])
    assert not vpp.passes(frame, host.port["a"], host.port["v"])


def test_without_cksum_gso_icmp_is_fine(vpp, vpp_api):
    host = Host(vpp_api, flags=0)
    frame, out = host.send("a", "b", **ICMP_ECHO)
    assert out and all(e.checksum_ok for e in out)
    assert vpp.passes(frame, host.port["a"], host.port["b"])


@pytest.mark.parametrize("l4", [TCP_SYN, UDP_DHCP, ICMP_ECHO], ids=["tcp", "udp", "icmp"])
def test_with_cksum_gso_every_frame_arrives_with_a_good_checksum(vpp, vpp_api, l4):
    host = Host(vpp_api, flags=QDISC_BYPASS | CKSUM_GSO)
    frame, out = host.send("a", "b", **l4)
    assert len(out) == 2 and all(e.checksum_ok for e in out)
    assert vpp.passes(frame, host.port["a"], host.port["b"])
    assert vpp.interface(host.port["a"]).afp_flags == QDISC_BYPASS | CKSUM_GSO


def test_offloads_off_in_the_vm_makes_full_checksums(vpp, vpp_api):
    host = Host(vpp_api, flags=0, offloads=False)
    frame, out = host.send("a", "b", **TCP_SYN)
    assert out and all(e.checksum_ok for e in out)


def test_frames_from_a_vhost_user_vm_are_not_the_kernels_concern(vpp, vpp_api):
    host = Host(vpp_api, flags=0)
    frame, out = host.send("v", "a", **TCP_SYN)
    assert out and all(e.checksum_ok for e in out)
    assert vpp.passes(frame, host.port["v"], host.port["a"])


def test_the_kernels_offloads_can_change_under_an_attached_interface(vpp, vpp_api):
    host = Host(vpp_api, flags=0)
    vpp.add_kernel_interface("tapa", tx_checksum_offload=False)  # ethtool -K tapa tx off
    frame, out = host.send("a", "b", **UDP_DHCP)
    assert out and all(e.checksum_ok for e in out)
