"""Network namespaces as VMs on the dev cloud, and a gateway for its external network.

A :class:`VM` is what Nova makes of a server with one port on a host whose vifs
are taps (the dev cloud's ``compute-3``, in ``[ml2_vpp] tap_hosts``): it binds
the port (``binding:host_id``, a ``compute:nova`` owner, a server UUID), then
plugs the vif as Nova's libvirt driver does for vif_type ``tap``: a kernel
device named ``tap<port_id[:11]>`` (here the root end of a veth pair), which
the host's vpp-agent attaches with af_packet. The other end is the VM's
``eth0`` in its own namespace, with the port's MAC.

The VM's address comes from Neutron's DHCP agent: BusyBox ``udhcpc`` (Debian
``udhcpc``) asks for it, with the classless static routes option (121) that
carries the isolated metadata route (169.254.169.254 via the DHCP port). Its
event script only writes the lease down; the VM applies it (address, routes
from option 121, else the default route) as a client's script would, without
touching the machine's ``/etc/resolv.conf`` as Debian's default script does.

A :class:`Gateway` is a namespace on a physnet's wire (:mod:`.wire`): the
outside world of an external network, which the L3 agent's router SNATs to.

Everything is deleted by ``close()`` (the namespace takes the veth with it,
the port is deleted); both are context managers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from networking_vpp.common.portnames import tap_ifname
from networking_vpp.testing.devcloud import wire
from networking_vpp.testing.devcloud.layout import TAP_HOST
from networking_vpp.testing.netns import Namespaces, ping
from networking_vpp.testing.vpp.frameio import in_netns

METADATA_URL = "http://169.254.169.254/"
RETRY = 2  # seconds udhcpc waits for an answer before it asks again

# udhcpc's event script: the lease's variables into a file, one per line.
_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    {
      echo "ip=$ip"; echo "subnet=$subnet"; echo "router=$router"
      echo "staticroutes=$staticroutes"; echo "mtu=$mtu"; echo "serverid=$serverid"
    } > "$LEASE_FILE.tmp" && mv "$LEASE_FILE.tmp" "$LEASE_FILE" ;;
esac
exit 0
"""


def udhcpc() -> str | None:
    """BusyBox's DHCP client (Debian ``udhcpc``), or None."""
    return shutil.which("udhcpc", path=os.pathsep.join(["/usr/sbin", "/sbin", "/usr/bin"]))


def prefix_len(netmask: str) -> int:
    """255.255.255.0 -> 24."""
    return sum(bin(int(octet)).count("1") for octet in netmask.split("."))


def parse_lease(text: str) -> dict[str, str]:
    """The script's ``key=value`` lines."""
    lease = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            lease[key.strip()] = value.strip()
    return lease


def routes(lease: dict[str, str]) -> list[tuple[str, str]]:
    """(destination, gateway) pairs the lease asks for: option 121's (0.0.0.0: on-link)
    when present, which replaces the router option (RFC 3442), else a default route."""
    words = lease.get("staticroutes", "").split()
    if words:
        return list(zip(words[::2], words[1::2], strict=False))
    router = lease.get("router", "").split()
    return [("0.0.0.0/0", router[0])] if router else []


class TcpListener:
    """A TCP server inside a namespace that accepts connections and remembers their peers."""

    def __init__(self, ns: str, port: int) -> None:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(8)
            return sock

        self.port = port
        self.sock = in_netns(ns, make)
        self.peers: list[str] = []
        self._thread = threading.Thread(target=self._serve, name=f"listen-{ns}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, (peer, _) = self.sock.accept()
            except OSError:
                return  # closed
            self.peers.append(peer)
            with conn:
                with contextlib.suppress(OSError):
                    conn.sendall(b"hello from the VM\n")

    def wait_peers(self, timeout: float = 5.0) -> list[str]:
        """The peers accepted so far, once there is one (empty: none within ``timeout``;
        a client's connect returns before the accept here runs)."""
        return list(wait_for(lambda: list(self.peers), timeout, 0.02) or [])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


def tcp_connect(ns: str, address: str, port: int, timeout: float = 3.0) -> str:
    """Connect from ``ns``: 'accepted', 'refused' (a RST), or 'no answer' (dropped)."""

    def attempt() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect((address, port))
            except ConnectionRefusedError:
                return "refused"
            except (TimeoutError, OSError):
                return "no answer"
            return "accepted"

    return in_netns(ns, attempt)


def http_get(ns: str, url: str, timeout: float = 10.0) -> tuple[int, str]:
    """GET ``url`` from inside ``ns`` (as ``curl`` would): status and body."""

    def get() -> tuple[int, str]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=timeout) as reply:
                return int(reply.status), reply.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")

    return in_netns(ns, get)


class _Host:
    """What a test does from inside a namespace: ping, listen, connect."""

    netns: str

    def ping(self, address: str, timeout: float = 10.0) -> bool:
        return ping(self.netns, address, timeout)

    def listen(self, port: int) -> TcpListener:
        return TcpListener(self.netns, port)

    def connect(self, address: str, port: int, timeout: float = 3.0) -> str:
        return tcp_connect(self.netns, address, port, timeout)


class VM(_Host):
    """A namespace VM with one port on ``network_id``, bound as Nova binds a tap vif."""

    def __init__(
        self,
        neutron: Any,
        network_id: str,
        name: str,
        host: str = TAP_HOST,
        **port_args: Any,
    ) -> None:
        """``neutron``: openstacksdk's network proxy (``CloudClient.neutron.network``)."""
        self.neutron = neutron
        self.name = name
        self.server_id = str(uuid.uuid4())
        self.ns = Namespaces(f"vm-{name}")
        self.lease: dict[str, str] = {}
        self.port: Any = None
        #: monotonic times of the port's creation and of the lease (None before)
        self.created_at = 0.0
        self.leased_at: float | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"vm-{name}-"))
        self._closed = False
        try:
            self.created_at = time.monotonic()
            self.port = neutron.create_port(
                network_id=network_id,
                name=name,
                binding_host_id=host,
                device_owner="compute:nova",
                device_id=self.server_id,
                **port_args,
            )
            self.netns = self.ns.add("ns")
            self._plug()
        except BaseException:
            self.close()
            raise

    # --- Nova's part ----------------------------------------------------------------
    @property
    def tap(self) -> str:
        return tap_ifname(self.port.id)

    def _plug(self) -> None:
        """The tap device: a veth's root end; eth0 in the namespace with the port's MAC."""
        subprocess.run(
            ["ip", "link", "add", self.tap, "type", "veth", "peer", "name", "eth0", "netns"]
            + [self.netns],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sysctl", "-qw", f"net.ipv6.conf.{self.tap}.disable_ipv6=1"],
            check=False,
            capture_output=True,
        )
        # The guest's side first: the tap then comes up with its carrier.
        self.ns.ip(self.netns, "link", "set", "eth0", "address", self.port.mac_address)
        self.ns.ip(self.netns, "link", "set", "eth0", "up")
        subprocess.run(["ip", "link", "set", self.tap, "up"], check=True, capture_output=True)

    # --- the guest's part ---------------------------------------------------------------
    def dhcp(self, timeout: float = 60.0) -> dict[str, str]:
        """Ask Neutron's DHCP agent for an address and configure eth0 with the lease.

        udhcpc waits ``RETRY`` seconds for each answer before it asks again (with a
        new transaction id, so a slower answer is lost: on a loaded machine an
        exchange through two emulated VPPs and dnsmasq can take over a second).
        Raises TimeoutError if no lease comes within ``timeout``."""
        client = udhcpc()
        if client is None:
            raise RuntimeError("udhcpc is missing (Debian package udhcpc)")
        script = self._dir / "udhcpc.script"
        script.write_text(_SCRIPT)
        script.chmod(0o755)
        lease_file = self._dir / "lease"
        tries = max(1, int(timeout / RETRY))
        argv = ["ip", "netns", "exec", self.netns, client, "-i", "eth0", "-f", "-q", "-n"]
        argv += ["-t", str(tries), "-T", str(RETRY), "-A", "1", "-O", "staticroutes", "-O", "mtu"]
        argv += ["-s", str(script)]
        env = dict(os.environ, LEASE_FILE=str(lease_file))
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout + 10, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"{self.name}: no DHCP lease within {timeout:.0f}s") from exc
        if done.returncode != 0 or not lease_file.exists():
            raise TimeoutError(
                f"{self.name}: no DHCP lease within {timeout:.0f}s: {done.stderr.strip()[-300:]}"
            )
        self.leased_at = time.monotonic()
        self.lease = parse_lease(lease_file.read_text())
        self._apply()
        return self.lease

    def _apply(self) -> None:
        lease = self.lease
        self.ns.ip(
            self.netns,
            "addr",
            "add",
            f"{lease['ip']}/{prefix_len(lease['subnet'])}",
            "dev",
            "eth0",
        )
        if lease.get("mtu"):
            self.ns.ip(self.netns, "link", "set", "eth0", "mtu", lease["mtu"])
        for dest, gateway in routes(lease):
            if gateway == "0.0.0.0":
                self.ns.ip(self.netns, "route", "replace", dest, "dev", "eth0")
            else:
                self.ns.ip(self.netns, "route", "replace", dest, "via", gateway, "dev", "eth0")

    @property
    def ip(self) -> str:
        """The leased address."""
        return self.lease["ip"]

    def routes(self) -> str:
        """``ip route`` inside the VM."""
        return self.ns.ip(self.netns, "route")

    def get(self, url: str = METADATA_URL, timeout: float = 10.0) -> tuple[int, str]:
        return http_get(self.netns, url, timeout)

    def close(self) -> None:
        """Delete the namespace (and so the tap), then the port."""
        if self._closed:
            return
        self._closed = True
        self.ns.close()
        if self.port is not None:
            with contextlib.suppress(Exception):
                self.neutron.delete_port(self.port.id, ignore_missing=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> VM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Gateway(_Host):
    """A namespace on a physnet's wire with ``address`` (a CIDR): an external
    network's upstream router, as far as the cloud can tell."""

    def __init__(self, base: Path, physnet: str, address: str, name: str = "gw") -> None:
        self.ns = Namespaces(f"gw-{name}")
        self.address = address.split("/")[0]
        self._port = f"g{self.ns.prefix[-6:]}"  # its end in the wire namespace
        try:
            self.netns = self.ns.add("ns")
            wire_ns = wire.namespace(base)
            self.ns.veth(self.netns, "eth0", wire_ns, self._port)
            self.ns.ip(wire_ns, "link", "set", self._port, "master", wire.bridge(physnet))
            self.ns.ip(self.netns, "addr", "add", address, "dev", "eth0")
            self.ns.ip(self.netns, "link", "set", "eth0", "up")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Delete the namespace (its veth goes, and the end on the wire with it)."""
        self.ns.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """``check()``'s first true value within ``timeout`` seconds (None: never)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def external_network(neutron: Any, name: str, cidr: str, gateway_ip: str) -> Any:
    """A flat external network on physnet3 (the wire a :class:`Gateway` joins),
    its IPv4 subnet routed by ``gateway_ip`` and without DHCP; deleted again if
    the subnet cannot be made."""
    ext = neutron.create_network(
        name=name,
        provider_network_type="flat",
        provider_physical_network="physnet3",
        is_router_external=True,
    )
    try:
        neutron.create_subnet(
            network_id=ext.id, cidr=cidr, ip_version=4, gateway_ip=gateway_ip, is_dhcp_enabled=False
        )
    except BaseException:
        neutron.delete_network(ext)
        raise
    return ext
