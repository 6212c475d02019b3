"""Frames per second through the emulator between two namespaces (issue 13's figure).

    sudo python benchmarks/frame_io.py [--seconds 1] [--size 64] [--flags 3]

Two namespaces stand in for VMs on tap ports of the emulated VPP (the
emulator's devices in a third namespace, af_packet_create_v3 with ``--flags``,
both ports in one bridge domain). A sender process in the first blasts UDP
datagrams of ``--size`` payload bytes at the second for ``--seconds``; a
receiver process there counts what arrives. Prints what was sent, what the
emulator read and wrote, and the frames per second that got through. Sender
and receiver run as their own processes so that they do not share the
emulator's interpreter.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from networking_vpp.testing.netns import Namespaces, ping
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.kernel import NetlinkLinks
from networking_vpp.testing.vpp.socket_server import serve

IP_A, IP_B, PORT = "10.9.0.1", "10.9.0.2", 9999
BD = 1

RECEIVER = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(float(sys.argv[3]))
n, first, last = 0, None, None
while True:
    try:
        s.recv(65536)
    except TimeoutError:
        if n:
            break  # quiet after the blast
        continue
    last = time.monotonic()
    first = first or last
    n += 1
print(json.dumps({"received": n, "seconds": (last - first) if n > 1 else 0}), flush=True)
"""

SENDER = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * int(sys.argv[3])
end = time.monotonic() + float(sys.argv[4])
n = 0
while time.monotonic() < end:
    try:
        s.sendto(payload, (sys.argv[1], int(sys.argv[2])))
        n += 1
    except OSError:
        pass  # the device queue is full: the blast goes on
print(json.dumps({"sent": n}), flush=True)
"""


def netns_python(ns: str, code: str, *args: object) -> subprocess.Popen[str]:
    """A Python process inside ``ns``."""
    argv = ["ip", "netns", "exec", ns, sys.executable, "-c", code, *map(str, args)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def measure(seconds: float, size: int, flags: int) -> dict[str, object]:
    """One blast; what was sent, read, written and received."""
    with Namespaces("fiob") as ns:
        host, a, b = ns.add("host"), ns.add("a"), ns.add("b")
        for vm, ip, tap in ((a, IP_A, "tapa"), (b, IP_B, "tapb")):
            ns.veth(host, tap, vm, "eth0")
            ns.ip(vm, "addr", "add", f"{ip}/24", "dev", "eth0")
        vpp = VppEmulator(kernel=NetlinkLinks(netns=host))
        server = serve(vpp)  # programmed as the agent would: through VPP's API socket
        client = server.connect("bench")
        ports = []
        try:
            for tap in ("tapa", "tapb"):
                sw = client.api.af_packet_create_v3(
                    mode=1, host_if_name=tap, use_random_hw_addr=True, flags=flags
                ).sw_if_index
                client.api.sw_interface_set_flags(sw_if_index=sw, flags=1)
                client.api.sw_interface_set_l2_bridge(rx_sw_if_index=sw, bd_id=BD)
                ports.append(sw)
            if not ping(a, IP_B):  # ARP done, MACs learnt: the blast is unicast
                raise RuntimeError("the namespaces cannot reach each other")
            receiver = netns_python(b, RECEIVER, IP_B, PORT, 1.0)
            assert receiver.stdout is not None
            if receiver.stdout.readline().strip() != "ready":
                raise RuntimeError("the receiver did not start")
            started = time.monotonic()
            sender = netns_python(a, SENDER, IP_B, PORT, size, seconds)
            sent, _ = sender.communicate(timeout=seconds + 30)
            got, _ = receiver.communicate(timeout=seconds + 30)
            wall = time.monotonic() - started
            assert vpp.frames is not None
            with vpp.lock:
                rx = vpp.frames.counters(ports[0])
                tx = vpp.frames.counters(ports[1])
        finally:
            server.close()
            vpp.close()
    received = json.loads(got)
    n, span = int(received["received"]), float(received["seconds"])
    return {
        "sent": json.loads(sent)["sent"],
        "emulator_read": rx.rx,
        "emulator_written": tx.tx,
        "received": n,
        "receiving_seconds": round(span, 2),
        "wall_seconds": round(wall, 2),
        "frames_per_second": round(n / span) if span else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=64, help="UDP payload bytes")
    parser.add_argument("--flags", type=int, default=3, help="af_packet_create_v3 flags")
    args = parser.parse_args()
    result = measure(args.seconds, args.size, args.flags)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
