"""The dev cloud's physical networks: one bridge per physnet, in a namespace.

With Neutron's agents (real devices), every fake host's uplink NIC gets a
cable: a veth whose root end (``w<cloud><host><physnet>``) the host's emulated
VPP reads and writes as the NIC's wire (``add_hardware_interface(wire=...)``),
and whose other end is a port of the physnet's bridge in this cloud's wire
namespace (``nvw-<cloud>``). So a VM on one host reaches the DHCP agent's port
on compute-1, VLAN networks travel tagged between hosts as on a real switch,
and a gateway namespace plugged into a physnet's bridge (:mod:`.vms`) stands
for the outside world of an external network.

The names derive from the cloud's directory, so two clouds (a developer's and
the system tests') never share a wire. Deleting the namespace takes every
cable with it (a veth goes with either end).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def cloud_tag(base: Path) -> str:
    """Six hex digits naming a cloud's devices (from its directory)."""
    return hashlib.sha1(str(Path(base).resolve()).encode()).hexdigest()[:6]


def namespace(base: Path) -> str:
    """The wire namespace of the cloud living in ``base``."""
    return f"nvw-{cloud_tag(base)}"


def bridge(physnet: str) -> str:
    """The bridge of ``physnet`` inside the wire namespace."""
    return f"br-{physnet}"[:15]


def cable(base: Path, host_index: int, physnet_index: int) -> str:
    """The root end of host ``host_index``'s cable on physnet ``physnet_index``."""
    return f"w{cloud_tag(base)}{host_index}{physnet_index}"


def exists(base: Path) -> bool:
    """Whether the cloud's wire namespace exists."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    return any(line.split(" ")[0] == namespace(base) for line in listed)


def build(base: Path, hosts: Sequence[str], physnets: Sequence[str]) -> dict[tuple[str, str], str]:
    """Make the namespace, its bridges and every host's cables (anything left from
    before is deleted first). Returns (host, physnet) -> the cable's root end."""
    remove(base)
    ns = namespace(base)
    _ip("netns", "add", ns)
    cables = {}
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        for p, physnet in enumerate(physnets, 1):
            _ip("-n", ns, "link", "add", bridge(physnet), "type", "bridge")
            # Frames are forwarded at once (no STP learning delay), MACs age as on a switch.
            _ip("-n", ns, "link", "set", bridge(physnet), "type", "bridge", "forward_delay", "0")
            _ip("-n", ns, "link", "set", bridge(physnet), "up")
            for h, host in enumerate(hosts, 1):
                root, port = cable(base, h, p), f"h{h}p{p}"
                _ip("link", "add", root, "type", "veth", "peer", "name", port, "netns", ns)
                _ip("-n", ns, "link", "set", port, "master", bridge(physnet))
                _ip("-n", ns, "link", "set", port, "up")
                _ip("link", "set", root, "up")
                # As a NIC: no IPv6 of the host's on it (no router solicitations, MLD).
                subprocess.run(
                    ["sysctl", "-qw", f"net.ipv6.conf.{root}.disable_ipv6=1"],
                    check=False,
                    capture_output=True,
                )
                cables[(host, physnet)] = root
    except BaseException:
        remove(base)
        raise
    return cables


def remove(base: Path) -> bool:
    """Delete the cloud's wire (and so every cable); False if there was none."""
    if not exists(base):
        return False
    _ip("netns", "delete", namespace(base), check=False)
    return True
