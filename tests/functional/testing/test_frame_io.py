"""The emulator carries real frames on af_packet interfaces (issue 13 item 4).

Namespaces stand in for VMs: each has a veth whose other end, in the
emulator's own "host" namespace, is attached by af_packet as the agent
attaches a tap port. The frames they send are read by the emulator, walked
(learning, flooding, VLAN tags, ACLs with sessions) and written out where the
walk says, with the checksum behaviour of a real VPP (real-vpp-facts #1).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from networking_vpp.testing.netns import Namespaces, checksum, ping
from networking_vpp.testing.vpp import VppEmulator, frameio, rawframe
from networking_vpp.testing.vpp.frameio import Counters
from networking_vpp.testing.vpp.kernel import NetlinkLinks
from networking_vpp.testing.vpp.socket_server import serve

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes namespaces")

QDISC_BYPASS_CKSUM_GSO = 3  # as the agent creates tap ports
IP_A, IP_B, IP_WIRE = "10.9.0.1", "10.9.0.2", "10.9.0.3"
BD = 5
NO_INDEX = 0xFFFFFFFF


def wait_for(check: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def reader_ended(vpp: VppEmulator) -> bool:
    assert vpp.frames is not None
    return not vpp.frames.running


class Cloud:
    """Two VMs (namespaces a and b) on tap ports of an emulated VPP."""

    def __init__(self, ns: Namespaces) -> None:
        self.ns = ns
        self.host = ns.add("host")
        self.vm = {"a": ns.add("a"), "b": ns.add("b")}
        for name, ip in (("a", IP_A), ("b", IP_B)):
            ns.veth(self.host, f"tap{name}", self.vm[name], "eth0")
            ns.ip(self.vm[name], "addr", "add", f"{ip}/24", "dev", "eth0")
        self.vpp = VppEmulator(kernel=NetlinkLinks(netns=self.host))
        self.server = serve(self.vpp)
        self.api = self.server.connect("test").api
        self.port: dict[str, int] = {}

    def attach(self, name: str, flags: int = QDISC_BYPASS_CKSUM_GSO) -> int:
        """af_packet on host device ``tap<name>`` (or ``name``), admin up, in the bridge domain."""
        host = f"tap{name}" if name in self.vm else name
        reply = self.api.af_packet_create_v3(
            mode=1, host_if_name=host, use_random_hw_addr=True, flags=flags
        )
        assert reply.retval == 0
        sw = int(reply.sw_if_index)
        assert self.api.sw_interface_set_flags(sw_if_index=sw, flags=1).retval == 0
        self.port[name] = sw
        return sw

    def bridge(self, *sw_if_indices: int) -> None:
        for sw in sw_if_indices:
            assert self.api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=BD).retval == 0

    def counters(self, name: str) -> Counters:
        assert self.vpp.frames is not None
        with self.vpp.lock:
            return self.vpp.frames.counters(self.port[name])

    def fib(self) -> dict[str, int]:
        with self.vpp.lock:
            return dict(self.vpp.state.bds[BD].fib)

    def close(self) -> None:
        self.server.close()
        self.vpp.close()


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with Namespaces("fio") as ns:
        c = Cloud(ns)
        try:
            yield c
        finally:
            c.close()
    assert reader_ended(c.vpp)  # close() joined it


# --- TCP in the namespaces: sockets opened inside them, used from here --------------
class Server:
    """A TCP server in a namespace: answers each connection with the number of
    bytes it received once the client has finished sending."""

    def __init__(self, ns: str, ip: str, port: int) -> None:
        self.listener = Namespaces.call(ns, lambda: socket.create_server((ip, port)))
        self.thread = threading.Thread(target=self._serve, name=f"server-{port}")
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(10)
                n = 0
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(65536):
                        n += len(chunk)
                    conn.sendall(str(n).encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.thread.join()


@contextlib.contextmanager
def server(ns: str, ip: str, port: int) -> Iterator[Server]:
    s = Server(ns, ip, port)
    try:
        yield s
    finally:
        s.close()


def send_tcp(ns: str, ip: str, port: int, size: int = 1000, timeout: float = 3.0) -> int | None:
    """Connect from ``ns``, send ``size`` bytes: how many the server says it got
    (None: no connection, or no answer)."""
    try:
        conn = Namespaces.call(ns, lambda: socket.create_connection((ip, port), timeout=timeout))
    except OSError:
        return None
    with conn:
        try:
            conn.sendall(os.urandom(size))
            conn.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := conn.recv(100):
                answer += chunk
        except OSError:
            return None
    return int(answer) if answer else None


# --- the tests -------------------------------------------------------------------------
def test_ping_between_vms_and_the_bridge_learns_them(cloud):
    cloud.bridge(cloud.attach("a"), cloud.attach("b"))
    assert ping(cloud.vm["a"], IP_B)
    assert ping(cloud.vm["b"], IP_A)
    mac_a, mac_b = (cloud.ns.mac(cloud.vm[n], "eth0") for n in "ab")
    assert {mac_a: cloud.port["a"], mac_b: cloud.port["b"]}.items() <= cloud.fib().items()


def test_a_flooded_frame_reaches_the_other_vm_once_and_is_not_read_back(cloud):
    cloud.bridge(cloud.attach("a"), cloud.attach("b"))
    etype = 0x88B5  # local experimental
    rx = Namespaces.call(cloud.vm["b"], lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    tx = Namespaces.call(cloud.vm["a"], lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    with rx, tx:
        rx.bind(("eth0", etype))
        rx.settimeout(5)
        tx.bind(("eth0", etype))
        src = bytes.fromhex(cloud.ns.mac(cloud.vm["a"], "eth0").replace(":", ""))
        tx.send(b"\xff" * 6 + src + etype.to_bytes(2, "big") + b"flood me".ljust(46, b"\0"))
        got = rx.recv(2048)
        assert got[12:14] == etype.to_bytes(2, "big") and got[14:22] == b"flood me"
    assert wait_for(lambda: cloud.counters("b").tx == 1)
    a, b = cloud.counters("a"), cloud.counters("b")
    assert (a.rx, a.tx, b.rx, b.tx) == (1, 0, 0, 1)  # what went out on b never came in


def test_tcp_passes_with_cksum_gso_including_gso_super_frames(cloud):
    cloud.bridge(cloud.attach("a"), cloud.attach("b"))
    with server(cloud.vm["b"], IP_B, 8080):
        assert send_tcp(cloud.vm["a"], IP_B, 8080) == 1000
        assert send_tcp(cloud.vm["a"], IP_B, 8080, size=1 << 20) == 1 << 20  # TSO on the veth
    assert cloud.counters("a").csum_fixed > 0


def test_tcp_fails_without_cksum_gso_while_icmp_passes(cloud):
    # af_packet_create_v3(flags=0): the kernel's partial checksums leave VPP unfixed
    cloud.bridge(cloud.attach("a", flags=0), cloud.attach("b", flags=0))
    assert ping(cloud.vm["a"], IP_B)
    with server(cloud.vm["b"], IP_B, 8080):
        assert send_tcp(cloud.vm["a"], IP_B, 8080, timeout=2) is None
    a = cloud.counters("a")
    assert a.csum_partial > 0 and a.csum_fixed == 0


class VlanHost:
    """A host on the wire's VLAN ``vlan`` (this kernel has no 802.1Q devices):
    a packet socket that answers ARP requests and ICMP echo requests for ``ip``
    arriving with that tag, tagged the same. It notes every frame's tags."""

    MAC = bytes.fromhex("020000000103")

    def __init__(self, ns: str, dev: str, vlan: int, ip: str) -> None:
        self.vlan, self.ip = vlan, socket.inet_aton(ip)
        self.sock = Namespaces.call(
            ns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        )
        self.sock.bind((dev, 3))
        self.sock.setsockopt(frameio.SOL_PACKET, frameio.PACKETAUXDATA, 1)
        self.sock.settimeout(0.1)  # a packet socket's recv cannot be woken: look at stop
        self.stop = threading.Event()
        self.seen: list[tuple[int, ...]] = []  # VLAN ids of each frame read
        self.thread = threading.Thread(target=self._serve, name="vlan-host")
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, anc, _, addr = self.sock.recvmsg(4096, 64)
            except TimeoutError:
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            for level, kind, value in anc:
                if (level, kind) == (frameio.SOL_PACKET, frameio.PACKETAUXDATA):
                    status, _, _, _, _, tci, tpid = frameio.AUXDATA.unpack_from(value)
                    if status & frameio.TP_STATUS_VLAN_VALID:
                        data = rawframe.insert_tag(data, tpid or 0x8100, tci)
            frame, raw = rawframe.parse(data)
            self.seen.append(frame.vlans)
            if frame.vlans != (self.vlan,):
                continue
            answer = self._answer(raw)
            if answer is not None:
                self.sock.send(answer)

    def _answer(self, raw: rawframe.Raw) -> bytes | None:
        tag = struct.pack("!HH", 0x8100, self.vlan)
        l3 = raw.l3
        if raw.etype == 0x0806 and l3[6:8] == b"\0\1" and l3[24:28] == self.ip:
            arp = l3[:6] + b"\0\2" + self.MAC + self.ip + l3[8:14] + l3[14:18]
            return raw.src + self.MAC + tag + b"\x08\x06" + arp
        if raw.etype == 0x0800 and l3[16:20] == self.ip and l3[9] == 1 and l3[20] == 8:
            ihl = (l3[0] & 0x0F) * 4
            header = bytearray(l3[:ihl])
            header[12:20] = l3[16:20] + l3[12:16]
            header[10:12] = b"\0\0"
            struct.pack_into("!H", header, 10, checksum(bytes(header)))
            icmp = bytearray(l3[ihl:])
            icmp[0], icmp[2:4] = 0, b"\0\0"
            struct.pack_into("!H", icmp, 2, checksum(bytes(icmp)))
            return raw.src + self.MAC + tag + b"\x08\x00" + bytes(header) + bytes(icmp)
        return None

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def test_vlan_tags_are_pushed_on_the_uplink_and_popped_from_it(cloud):
    wire = cloud.ns.add("wire")
    cloud.ns.veth(cloud.host, "upl", wire, "eth0")
    uplink = cloud.attach("upl")
    sub = int(cloud.api.create_vlan_subif(sw_if_index=uplink, vlan_id=100).sw_if_index)
    # pop-1 on input, as the agent sets a VLAN network's sub-interface
    cloud.api.l2_interface_vlan_tag_rewrite(sw_if_index=sub, vtr_op=3, push_dot1q=1)
    assert cloud.api.sw_interface_set_flags(sw_if_index=sub, flags=1).retval == 0
    cloud.bridge(cloud.attach("a"), sub)
    host = VlanHost(wire, "eth0", 100, IP_WIRE)
    try:
        # VM a knows no VLAN: only untagged replies would reach its ping.
        assert ping(cloud.vm["a"], IP_WIRE)
    finally:
        host.close()
    assert host.seen and set(host.seen) == {(100,)}  # everything left the uplink tagged
    assert cloud.fib()[VlanHost.MAC.hex(":")] == sub  # the tagged replies came in on the sub
    assert cloud.counters("upl").tx > 0 and cloud.counters("upl").rx > 0


def acl(cloud: Cloud, rules: list[dict[str, object]]) -> int:
    reply = cloud.api.acl_add_replace(acl_index=NO_INDEX, tag="", count=len(rules), r=rules)
    assert reply.retval == 0
    return int(reply.acl_index)


def rule(is_permit: int, proto: int = 0, port: int | None = None) -> dict[str, object]:
    lo, hi = (0, 65535) if port is None else (port, port)
    return {
        "is_permit": is_permit,
        "src_prefix": "0.0.0.0/0",
        "dst_prefix": "0.0.0.0/0",
        "proto": proto,
        "srcport_or_icmptype_first": 0,
        "srcport_or_icmptype_last": 65535,
        "dstport_or_icmpcode_first": lo,
        "dstport_or_icmpcode_last": hi,
    }


def test_acls_decide_with_sessions_for_the_replies(cloud):
    a, b = cloud.attach("a"), cloud.attach("b")
    cloud.bridge(a, b)
    # From VM a: no TCP to 22, the rest permitted with a session (reflect). To VM a:
    # nothing but the replies of its own sessions.
    egress = acl(cloud, [rule(0, proto=6, port=22), rule(2)])
    ingress = acl(cloud, [])
    reply = cloud.api.acl_interface_set_acl_list(
        sw_if_index=a, count=2, n_input=1, acls=[egress, ingress]
    )
    assert reply.retval == 0
    assert ping(cloud.vm["a"], IP_B)
    with server(cloud.vm["b"], IP_B, 22), server(cloud.vm["b"], IP_B, 8080):
        assert send_tcp(cloud.vm["a"], IP_B, 22, timeout=2) is None
        assert send_tcp(cloud.vm["a"], IP_B, 8080) == 1000
    assert not ping(cloud.vm["b"], IP_A, timeout=2)  # no session: VM a's output denies
    assert len(cloud.vpp.sessions) > 0


def test_deleting_the_interfaces_stops_the_reader(cloud):
    cloud.bridge(cloud.attach("a"), cloud.attach("b"))
    assert ping(cloud.vm["a"], IP_B)
    for host in ("tapa", "tapb"):
        assert cloud.api.af_packet_delete(host_if_name=host).retval == 0
    assert wait_for(lambda: reader_ended(cloud.vpp))
    assert not ping(cloud.vm["a"], IP_B, timeout=1)


def test_a_restart_closes_the_sockets(cloud):
    cloud.bridge(cloud.attach("a"), cloud.attach("b"))
    assert ping(cloud.vm["a"], IP_B)
    cloud.vpp.restart()
    assert wait_for(lambda: reader_ended(cloud.vpp))
    assert not ping(cloud.vm["a"], IP_B, timeout=1)


def test_a_device_made_again_under_the_same_name_stays_black_holed(cloud):
    # real-vpp-facts #3, on real frames: the old socket is dead, the kernel says so
    cloud.bridge(cloud.attach("a"), cloud.attach("b"))
    assert ping(cloud.vm["a"], IP_B)
    mac_b = cloud.ns.mac(cloud.vm["b"], "eth0")
    cloud.ns.ip(cloud.host, "link", "del", "tapb")
    cloud.ns.veth(cloud.host, "tapb", cloud.vm["b"], "eth0")  # the port's MAC, as Neutron's
    cloud.ns.ip(cloud.vm["b"], "link", "set", "eth0", "address", mac_b)
    cloud.ns.ip(cloud.vm["b"], "addr", "add", f"{IP_B}/24", "dev", "eth0")
    cloud.ns.ip(cloud.host, "link", "set", "tapb", "up")
    assert not ping(cloud.vm["a"], IP_B, timeout=2)
    # Re-attaching heals it, as on VPP.
    assert cloud.api.af_packet_delete(host_if_name="tapb").retval == 0
    cloud.bridge(cloud.attach("b"))
    assert ping(cloud.vm["a"], IP_B)


def test_an_admin_down_port_passes_nothing(cloud):
    a, b = cloud.attach("a"), cloud.attach("b")
    cloud.bridge(a, b)
    assert ping(cloud.vm["a"], IP_B)
    assert cloud.api.sw_interface_set_flags(sw_if_index=b, flags=0).retval == 0
    assert not ping(cloud.vm["a"], IP_B, timeout=1)
    assert cloud.api.sw_interface_set_flags(sw_if_index=b, flags=1).retval == 0
    assert ping(cloud.vm["a"], IP_B)
