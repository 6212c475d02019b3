"""The tour's second part: namespaces as VMs that really talk (tour.py runs it).

On a cloud with Neutron's agents: two VMs on compute-3 (Nova plugs tap vifs
there) on a VLAN network get their addresses from the DHCP agent, ping each
other, are refused a TCP connection by their security group until a rule lets
it in, and read the metadata service. With ``--l3``: a router to an external
network whose upstream is a namespace on physnet3's wire: a VM reaches it
through SNAT, and a floating IP reaches the VM from it. Everything made here
is deleted at the end (the VMs' namespaces would outlive the cloud otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.client import CloudClient
from networking_vpp.testing.devcloud.vms import (
    METADATA_URL,
    VM,
    Gateway,
    external_network,
    udhcpc,
)

NAME = "tour-vms"
CIDR = "10.80.0.0/24"
EXT_CIDR, EXT_GATEWAY = "203.0.113.0/24", "203.0.113.1"
TCP_PORT = 8080


def say(text: str) -> None:
    print(f"  {text}")


def run(client: CloudClient, step: Callable[[str], None]) -> None:
    """The VM part of the tour (skipped, with the reason, where it cannot run)."""
    cloud = client.cloud
    if not cloud.ports.neutron_agents:
        return
    step("VMs that really talk (namespaces on compute-3, tap vifs)")
    if udhcpc() is None:
        say("skipped: the VMs' DHCP client is missing (Debian package udhcpc)")
        return
    neutron = client.neutron.network
    made: list[Any] = []  # deleted in reverse order
    vms: list[VM] = []
    gateway: Gateway | None = None
    try:
        net = neutron.create_network(
            name=NAME, provider_network_type="vlan", provider_physical_network="physnet1"
        )
        made.append(("network", net.id))
        subnet = neutron.create_subnet(network_id=net.id, cidr=CIDR, ip_version=4)
        say(f"network {NAME}: VLAN {net.provider_segmentation_id} on physnet1, subnet {CIDR}")
        wait_dhcp(client, net.id)
        sg = neutron.create_security_group(name=NAME, description="ICMP in, nothing else in")
        made.append(("security_group", sg.id))
        neutron.create_security_group_rule(
            security_group_id=sg.id, direction="ingress", ethertype="IPv4", protocol="icmp"
        )
        for name in ("vm1", "vm2"):
            vm = VM(neutron, net.id, f"{NAME}-{name}", security_groups=[sg.id])
            vms.append(vm)
            vm.dhcp(timeout=90)
            assert vm.leased_at is not None
            say(
                f"{name}: port {vm.port.id[:8]} bound on compute-3 as tap ({vm.tap}); "
                f"udhcpc got {vm.ip}/{vm.lease['subnet']} from {vm.lease['serverid']} "
                f"{vm.leased_at - vm.created_at:.1f} s after the port was created"
            )
        vm1, vm2 = vms
        say("vm1's routes (DHCP option 121: metadata via the DHCP port):")
        for line in vm1.routes().splitlines():
            say(f"    {line}")
        say(f"vm1 pings vm2 ({vm2.ip}): {answer(vm1.ping(vm2.ip))}")
        say(f"vm2 pings vm1 ({vm1.ip}): {answer(vm2.ping(vm1.ip))}")
        listener = vm2.listen(TCP_PORT)
        try:
            result = vm1.connect(vm2.ip, TCP_PORT, timeout=2)
            say(f"vm1 -> vm2 TCP {TCP_PORT} (group {NAME} lets ICMP in only): {result}")
            neutron.create_security_group_rule(
                security_group_id=sg.id,
                direction="ingress",
                ethertype="IPv4",
                protocol="tcp",
                port_range_min=TCP_PORT,
                port_range_max=TCP_PORT,
            )
            started = time.monotonic()
            result = retry(lambda: vm1.connect(vm2.ip, TCP_PORT, timeout=1), "accepted")
            later = time.monotonic() - started
            peers = ", ".join(listener.wait_peers()) or "nobody"
            say(
                f"rule added (ingress tcp {TCP_PORT}); vm1 -> vm2 TCP {TCP_PORT}: {result} "
                f"{later:.2f} s later; vm2 saw {peers}"
            )
        finally:
            listener.close()
        status, body = vm1.get(METADATA_URL)
        say(f"vm1: GET {METADATA_URL} -> {status} {body!r}")
        url = METADATA_URL + "latest/meta-data/instance-id"
        status, body = vm1.get(url)
        say(f"vm1: GET {url} -> {status} {body!r} (vm1's server id: {vm1.server_id})")
        if cloud.ports.l3:
            gateway = l3_part(client, net.id, subnet.id, vm1, made)
    finally:
        for vm in vms:
            vm.close()
        if gateway is not None:
            gateway.close()
        undo(client, made)
    say("(the VMs, their namespaces and what this part made are deleted again)")


def l3_part(client: CloudClient, net_id: str, subnet_id: str, vm: VM, made: list[Any]) -> Gateway:
    """A router to an external network whose upstream is a namespace: SNAT and a floating IP."""
    neutron = client.neutron.network
    ext = external_network(neutron, f"{NAME}-ext", EXT_CIDR, EXT_GATEWAY)
    made.append(("network", ext.id))
    gateway = Gateway(client.cloud.layout.base, "physnet3", f"{EXT_GATEWAY}/24", "tour")
    say(f"external network {NAME}-ext: flat on physnet3, {EXT_CIDR}; its upstream is a")
    say(f"namespace on physnet3's wire with {EXT_GATEWAY}")
    router = neutron.create_router(name=NAME, external_gateway_info={"network_id": ext.id})
    made.append(("router", router.id))
    neutron.add_interface_to_router(router, subnet_id=subnet_id)
    made.append(("router_interface", (router.id, subnet_id)))
    external_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    say(f"router {NAME}: gateway {external_ip} (L3 agent on compute-1, qrouter- namespace)")
    wait_router_ports(client, router.id)
    listener = gateway.listen(TCP_PORT)
    try:
        result = retry(lambda: vm.connect(EXT_GATEWAY, TCP_PORT, timeout=2), "accepted", 30)
        peers = ", ".join(listener.wait_peers()) or "nobody"
        say(f"vm1 -> {EXT_GATEWAY}:{TCP_PORT}: {result}; the gateway saw {peers} (SNAT)")
    finally:
        listener.close()
    fip = neutron.create_ip(floating_network_id=ext.id, port_id=vm.port.id)
    made.append(("ip", fip.id))
    address = fip.floating_ip_address
    listener = vm.listen(TCP_PORT)
    try:
        result = retry(lambda: gateway.connect(address, TCP_PORT, timeout=2), "accepted", 30)
        peers = ", ".join(listener.wait_peers()) or "nobody"
        say(f"floating IP {address} -> vm1 ({vm.ip}); gateway -> {address}:{TCP_PORT}: {result};")
        say(f"vm1 saw {peers}")
        say(f"gateway pings {address}: {answer(gateway.ping(address))}")
    finally:
        listener.close()
    return gateway


def wait_dhcp(client: CloudClient, network_id: str, timeout: float = 90.0) -> None:
    """The DHCP agent serves the network: its port is ACTIVE."""

    def port() -> Any:
        found = list(
            client.neutron.network.ports(network_id=network_id, device_owner="network:dhcp")
        )
        return found[0] if found else None

    dhcp = procs.wait_until(port, timeout, "the DHCP agent's port", interval=0.2)
    client.wait_port(dhcp.id, "ACTIVE", timeout=timeout)


def wait_router_ports(client: CloudClient, router_id: str, timeout: float = 90.0) -> None:
    """Every port of the router is ACTIVE (the L3 agent plugged it, VPP attached it)."""

    def active() -> bool:
        ports = list(client.neutron.network.ports(device_id=router_id))
        return bool(ports) and all(p.status == "ACTIVE" for p in ports)

    procs.wait_until(active, timeout, f"router {router_id}'s ports to go ACTIVE", interval=0.2)


def retry(attempt: Callable[[], str], want: str, tries: int = 20) -> str:
    """``attempt()`` until it gives ``want`` (each try waits for its own timeout)."""
    result = ""
    for _ in range(tries):
        result = attempt()
        if result == want:
            break
    return result


def answer(ok: bool) -> str:
    return "answered" if ok else "NO ANSWER"


def undo(client: CloudClient, made: list[Any]) -> None:
    neutron = client.neutron.network
    for kind, ident in reversed(made):
        try:
            if kind == "router_interface":
                neutron.remove_interface_from_router(ident[0], subnet_id=ident[1])
            elif kind == "ip":
                neutron.delete_ip(ident, ignore_missing=True)
            elif kind == "router":
                neutron.update_router(ident, external_gateway_info={})
                neutron.delete_router(ident, ignore_missing=True)
            elif kind == "security_group":
                neutron.delete_security_group(ident, ignore_missing=True)
            elif kind == "network":
                for port in neutron.ports(network_id=ident, device_owner="compute:nova"):
                    neutron.delete_port(port.id, ignore_missing=True)
                neutron.delete_network(ident, ignore_missing=True)
        except Exception as exc:  # noqa: BLE001 - clean what can be cleaned
            say(f"could not delete {kind} {ident}: {exc}")
