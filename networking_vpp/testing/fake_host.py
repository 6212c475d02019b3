"""A fake compute host: an emulated VPP, the real vpp-agent, and VMs that plug in.

One process per host of the dev cloud. It builds a
:class:`~networking_vpp.testing.vpp.VppEmulator` with one uplink NIC per
physnet (with the dev cloud's agents, each cabled to its physnet's bridge:
``devcloud/wire.py``), serves its API socket (``socket_server.py``), runs the real
:class:`~networking_vpp.agent.agent.Agent` against it through vpp_papi (the
adapter ``vpp-agent`` makes, on that socket), and stands in for QEMU: the
emulator's ``auto_connect_vms`` connects a "VM" to every vhost-user socket as
soon as VPP creates it, so the agent sees the link come up and reports the
port, as it would on a real host once QEMU has attached.

A read-only JSON endpoint on 127.0.0.1 shows the host to tests and the tour::

    GET /health   {"host", "ready"}           ready: the agent's first load and resync are done
    GET /vpp      {"interfaces", "bridge_domains", "vhost_user"}   VPP's own dumps
    GET /acls     {"acls", "interface_acls", "macips", "interface_macips"}   ACL plugin dumps
    POST /passes  {"ingress", "egress", "frame"} -> {"passes"}: does the frame get from
                  one port to the other? (ports by id or interface name; ``frame`` holds
                  :class:`~networking_vpp.testing.vpp.Frame` fields). A probe through the
                  emulated dataplane: it learns MACs and makes ACL sessions as the real
                  frame would, and changes no configuration.

Run: ``python -m networking_vpp.testing.fake_host --host compute-1 --etcd
http://127.0.0.1:2379 --http-port 8701 --physnet physnet1:GigabitEthernet0/8/0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import signal
import tempfile
import threading
import zlib
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.vpp import types as vpp_types
from networking_vpp.agent.vpp.adapter import VppError
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.cli.etcd_setup import read_identity
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.testing.devcloud.web import JsonHandler
from networking_vpp.testing.vpp import Frame, VppEmulator
from networking_vpp.testing.vpp.kernel import NetlinkLinks
from networking_vpp.testing.vpp.socket_server import serve

LOG = logging.getLogger("fake_host")


def uplink_mac(host: str, index: int) -> str:
    """A stable, host-unique locally administered MAC for uplink ``index``."""
    h = zlib.crc32(host.encode()) & 0xFFFFFF
    return f"52:54:{h >> 16:02x}:{(h >> 8) & 0xFF:02x}:{h & 0xFF:02x}:{index:02x}"


class FakeHost:
    """The emulator, the agent and the JSON endpoint of one host."""

    def __init__(
        self,
        host: str,
        etcd_endpoints: list[str],
        physnets: dict[str, str],
        http_port: int,
        real_kernel: bool = False,
        vhostuser_socket_dir: str | None = None,
        nic_wires: dict[str, str] | None = None,
        etcd_identity: tuple[str, str] | None = None,
    ) -> None:
        """``nic_wires``: uplink NIC -> the real device that is its cable (real_kernel only).

        ``etcd_identity``: the host's etcd user and password (``networking-vpp etcd-setup``).
        """
        self.host = host
        # real_kernel: af_packet attaches to this machine's real devices (the veths of
        # Neutron's agents, made by the vpp interface driver, and of namespace VMs), and
        # the agent watches netlink for them, as on a real host.
        self.emulator = VppEmulator(kernel=NetlinkLinks() if real_kernel else None)
        self.emulator.auto_connect_vms = True  # QEMU attaches as soon as VPP makes the socket
        for index, uplink in enumerate(sorted(set(physnets.values()))):
            wire = (nic_wires or {}).get(uplink)
            self.emulator.add_hardware_interface(uplink, uplink_mac(host, index), wire=wire)
        # VPP's API socket and the .api.json files, in a directory of this process's
        self.server = serve(self.emulator, tempfile.mkdtemp(prefix=f"vpp-{host}-"))
        username, password = etcd_identity or (None, None)
        self.etcd = EtcdClient(EtcdSettings(etcd_endpoints, username=username, password=password))
        self.agent = Agent(
            AgentSettings(
                host=host,
                physnets=dict(physnets),
                watch_tap_devices=real_kernel,
                # The server's [ml2_vpp] vhostuser_socket_dir: bindings' sockets lie there
                # (None: no vhost-user port is taken). The dev cloud makes it.
                vhostuser_socket_dir=vhostuser_socket_dir,
                make_vhostuser_socket_dir=False,
            ),
            self.etcd,
            vpp_adapter(self.server.path, self.server.api_dir),
        )
        self._inspector = vpp_adapter(self.server.path, self.server.api_dir, "fake-host-http")
        self._inspect_lock = threading.Lock()
        self.ready = threading.Event()
        self.http = ThreadingHTTPServer(("127.0.0.1", http_port), _handler_for(self))
        self.http.daemon_threads = True

    def start(self) -> None:
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        self.agent.start()
        threading.Thread(target=self._await_convergence, name="ready", daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.agent.stop()  # revokes the liveness lease: the server sees the host go
        self._inspector.disconnect()
        self.server.close()
        shutil.rmtree(Path(self.server.path).parent, ignore_errors=True)
        self.etcd.close()

    def _await_convergence(self) -> None:
        while not self.agent.wait_converged(5.0):
            LOG.info("agent of %s not converged yet", self.host)
        LOG.info("agent of %s converged", self.host)
        self.ready.set()

    def vpp_objects(self) -> dict[str, Any]:
        """VPP's interfaces, bridge domains and vhost-user interfaces, as dicts."""
        with self._inspect_lock:
            if not self._inspector.connected:
                self._inspector.connect()
            return {
                "interfaces": [_plain(i) for i in self._inspector.dump_interfaces()],
                "bridge_domains": [_plain(b) for b in self._inspector.dump_bridge_domains()],
                "vhost_user": [_plain(v) for v in self._inspector.dump_vhost_user()],
            }

    def acl_objects(self) -> dict[str, Any]:
        """The ACL plugin's ACLs, MACIP ACLs and which interface uses which."""
        with self._inspect_lock:
            if not self._inspector.connected:
                self._inspector.connect()
            lists = self._inspector.dump_interface_acls()
            return {
                "acls": [_plain(a) for a in self._inspector.dump_acls()],
                "interface_acls": {
                    str(i): {"input": list(ins), "output": list(outs)}
                    for i, (ins, outs) in lists.items()
                },
                "macips": [_plain(m) for m in self._inspector.dump_macips()],
                "interface_macips": {
                    str(i): a for i, a in self._inspector.dump_interface_macips().items()
                },
            }

    def passes(self, ingress: str, egress: str, frame: dict[str, Any]) -> bool:
        """Does ``frame`` get from port ``ingress`` to port ``egress`` (ids or names)?"""
        return self.emulator.passes(
            Frame(**frame), self._interface_name(ingress), self._interface_name(egress)
        )

    def _interface_name(self, port: str) -> str:
        body = vpp_types.PORT_TAG + port
        for itf in self.vpp_objects()["interfaces"]:
            if (vpp_types.parse_tag(itf.get("tag") or "") or ("",))[0] == body:
                return str(itf["name"])
        return port  # an interface name already


def _plain(obj: Any) -> dict[str, Any]:
    data = dataclasses.asdict(obj)
    return {k: sorted(v) if isinstance(v, frozenset | set) else v for k, v in data.items()}


def _handler_for(host: FakeHost) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            try:
                if path == "/health":
                    body: Any = {"host": host.host, "ready": host.ready.is_set()}
                elif path == "/vpp":
                    body = host.vpp_objects()
                elif path == "/acls":
                    body = host.acl_objects()
                else:
                    self.reply(404, {"error": f"no {path}"})
                    return
            except VppError as exc:
                self.reply(503, {"error": str(exc)})
                return
            self.reply(200, body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            if path != "/passes":
                self.reply(404, {"error": f"no {path}"})
                return
            try:
                query = self.read_json()
                body = {"passes": host.passes(query["ingress"], query["egress"], query["frame"])}
            except (KeyError, TypeError, ValueError) as exc:
                self.reply(400, {"error": f"bad query: {exc!r}"})
                return
            except VppError as exc:
                self.reply(503, {"error": str(exc)})
                return
            self.reply(200, body)

    return Handler


def _physnet(text: str) -> tuple[str, str]:
    name, sep, interface = text.partition(":")
    if not sep or not name or not interface:
        raise argparse.ArgumentTypeError(f"{text!r}: want physnet:interface")
    return name, interface


def _nic_wire(text: str) -> tuple[str, str]:
    nic, sep, device = text.partition("=")
    if not sep or not nic or not device:
        raise argparse.ArgumentTypeError(f"{text!r}: want NIC=device")
    return nic, device


def main(argv: list[str] | None = None) -> int:
    """Run one fake host until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="fake_host", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--etcd", action="append", required=True, help="etcd client URL")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--physnet", action="append", type=_physnet, default=[])
    parser.add_argument(
        "--real-kernel",
        action="store_true",
        help="tap ports attach to this machine's real devices (netlink), not in-memory ones",
    )
    parser.add_argument(
        "--vhostuser-socket-dir", help="the server's vhostuser_socket_dir (none: tap ports only)"
    )
    parser.add_argument(
        "--nic-wire",
        action="append",
        type=_nic_wire,
        default=[],
        help="NIC=device: the real device (a veth end) that is the uplink NIC's cable",
    )
    parser.add_argument(
        "--etcd-identity",
        help="the host's [etcd] snippet from 'networking-vpp etcd-setup' (user, password)",
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    host = FakeHost(
        args.host,
        args.etcd,
        dict(args.physnet),
        args.http_port,
        real_kernel=args.real_kernel,
        vhostuser_socket_dir=args.vhostuser_socket_dir,
        nic_wires=dict(args.nic_wire),
        etcd_identity=read_identity(args.etcd_identity) if args.etcd_identity else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    host.start()
    LOG.info("fake host %s up; JSON on 127.0.0.1:%d", args.host, args.http_port)
    stop.wait()
    host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
