"""Network namespaces standing in for VMs and wires, for tests and benchmarks.

Everything a :class:`Namespaces` makes is its own: namespaces named with a
random suffix, veth pairs inside them. ``close()`` deletes the namespaces,
which takes their devices along. Sockets a test opens in a namespace
(``call``) belong to that namespace for their whole life, whatever thread uses
them later.

    with Namespaces() as ns:
        host, vm = ns.add("host"), ns.add("vm")
        ns.veth(host, "tap1", vm, "eth0")
        ns.ip(vm, "addr", "add", "10.0.0.1/24", "dev", "eth0")
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from networking_vpp.testing.vpp.frameio import in_netns

T = TypeVar("T")


class Namespaces:
    """Namespaces this object made, deleted by ``close()``."""

    def __init__(self, prefix: str = "nvpp") -> None:
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []

    def __enter__(self) -> Namespaces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, role: str, ipv6: bool = False) -> str:
        """A new namespace with loopback up (and IPv6 off unless asked: no
        router solicitations or MLD reports in the way)."""
        name = f"{self.prefix}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        self.ip(name, "link", "set", "lo", "up")
        if not ipv6:
            self.sysctl(name, "net.ipv6.conf.all.disable_ipv6", 1)
            self.sysctl(name, "net.ipv6.conf.default.disable_ipv6", 1)
        return name

    @staticmethod
    def ip(ns: str, *args: str) -> str:
        """``ip -n <ns> <args>``: its output."""
        done = subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True)
        return done.stdout

    @staticmethod
    def sysctl(ns: str, key: str, value: object) -> None:
        """Set a sysctl inside ``ns``."""
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"], check=True)

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, up: bool = True) -> None:
        """A veth pair: ``name_a`` in ``ns_a``, ``name_b`` in ``ns_b``; the
        ``ns_b`` end up (the other end is for the emulator to bring up)."""
        self.ip(ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)
        if up:
            self.ip(ns_b, "link", "set", name_b, "up")

    def mac(self, ns: str, dev: str) -> str:
        """The device's MAC address."""
        return self.ip(ns, "-o", "link", "show", dev).split("link/ether ")[1].split()[0]

    @staticmethod
    def call(ns: str, fn: Callable[[], T]) -> T:
        """``fn()`` inside ``ns`` (sockets it opens stay there)."""
        return in_netns(ns, fn)

    def close(self) -> None:
        """Delete every namespace made here (and so their devices)."""
        while self.names:
            subprocess.run(["ip", "netns", "del", self.names.pop()], check=False)


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data`` (RFC 1071)."""
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[: len(data) // 2 * 2]))
    if len(data) % 2:
        total += data[-1] << 8
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping(ns: str, dst: str, timeout: float = 5.0) -> bool:
    """One ICMP echo from ``ns`` to ``dst`` answered within ``timeout`` (re-sent
    each second: the first may wait for ARP)."""
    sock = in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + timeout
    try:
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            payload = b"networking-vpp"
            header = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq)
            sock.sendto(header + payload, (dst, 0))
            resend = min(deadline, time.monotonic() + 1.0)
            while (left := resend - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    reply, (src, _) = sock.recvfrom(2048)
                except TimeoutError:
                    break
                icmp = reply[(reply[0] & 0x0F) * 4 :]
                if src == dst and icmp[0] == 0 and struct.unpack_from("!H", icmp, 4)[0] == ident:
                    return True
        return False
    finally:
        sock.close()
