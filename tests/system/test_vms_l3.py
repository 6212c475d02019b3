"""Routers of Neutron's L3 agent on VPP (issue 13 item 5, ``up.sh --l3``).

A cloud of its own, with the L3 agent on compute-1 (legacy routers: SNAT and
floating IPs in its qrouter- namespace, whose qr-/qg- devices our interface
driver makes and compute-1's VPP attaches). The external network is flat on
physnet3, whose wire has a gateway namespace (203.0.113.1): a VM on compute-3
reaches it through SNAT (the gateway sees the router's external address), and
a floating IP reaches the VM from it. Everything goes with the cloud.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from networking_vpp.testing.devcloud.cloud import DevCloud, missing_prerequisites
from networking_vpp.testing.devcloud.procs import wait_until
from networking_vpp.testing.devcloud.vms import VM, Gateway, external_network, udhcpc
from tests.system.conftest import dhcp_ready

EXT_CIDR, EXT_GATEWAY = "203.0.113.0/24", "203.0.113.1"
TCP_PORT = 8080


@pytest.fixture(scope="module")
def l3_client(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A cloud of this module's with the L3 agent (``up.sh --l3``)."""
    missing = missing_prerequisites(with_agents=True)
    if os.geteuid() != 0:
        missing.append("root (Neutron's agents make namespaces and veths)")
    if udhcpc() is None:
        missing.append("udhcpc (Debian udhcpc)")
    if missing:
        pytest.skip("the L3 dev cloud needs " + ", ".join(missing))
    from networking_vpp.testing.devcloud.client import CloudClient

    cloud = DevCloud(tmp_path_factory.mktemp("l3cloud"), tied=True, l3=True)
    try:
        cloud.up()
        client = CloudClient(cloud)
        yield client
        client.close()
    finally:
        cloud.down()
        for data in (cloud.layout.mariadb_data, cloud.layout.etcd_data):
            shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def routed(l3_client) -> Iterator[tuple[VM, Gateway, str]]:  # noqa: ANN001
    """A VM behind a router to the external network, and the gateway namespace."""
    neutron = l3_client.neutron.network
    net = neutron.create_network(
        name="l3-vms", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    subnet = neutron.create_subnet(network_id=net.id, cidr="10.90.0.0/24", ip_version=4)
    dhcp_ready(l3_client, net.id)
    ext = external_network(neutron, "l3-ext", EXT_CIDR, EXT_GATEWAY)
    sg = neutron.create_security_group(name="l3-vms")
    for protocol, ports in (("icmp", {}), ("tcp", {"port_range_min": TCP_PORT})):
        if ports:
            ports["port_range_max"] = TCP_PORT
        neutron.create_security_group_rule(
            security_group_id=sg.id,
            direction="ingress",
            ethertype="IPv4",
            protocol=protocol,
            **ports,
        )
    router = neutron.create_router(name="l3", external_gateway_info={"network_id": ext.id})
    neutron.add_interface_to_router(router, subnet_id=subnet.id)
    external_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]

    def router_ports_active() -> bool:
        ports = list(neutron.ports(device_id=router.id))
        return len(ports) == 2 and all(p.status == "ACTIVE" for p in ports)

    gateway = Gateway(l3_client.cloud.layout.base, "physnet3", f"{EXT_GATEWAY}/24", "l3")
    vm = VM(neutron, net.id, "l3vm", security_groups=[sg.id])
    try:
        wait_until(router_ports_active, 120.0, "the router's ports to go ACTIVE", interval=0.5)
        vm.dhcp(timeout=90)
        yield vm, gateway, external_ip
    finally:
        vm.close()
        gateway.close()


def test_a_vm_reaches_the_gateway_through_snat(routed) -> None:  # noqa: ANN001
    vm, gateway, external_ip = routed
    listener = gateway.listen(TCP_PORT)
    try:
        results = []
        for _ in range(15):
            results.append(vm.connect(EXT_GATEWAY, TCP_PORT, timeout=2))
            if results[-1] == "accepted":
                break
        assert results[-1] == "accepted", results
        peers = listener.wait_peers()
        assert peers and set(peers) == {external_ip}
    finally:
        listener.close()


def test_a_floating_ip_reaches_the_vm_from_the_gateway(l3_client, routed) -> None:  # noqa: ANN001
    vm, gateway, _ = routed
    neutron = l3_client.neutron.network
    ext = neutron.find_network("l3-ext")
    fip = neutron.create_ip(floating_network_id=ext.id, port_id=vm.port.id)
    listener = vm.listen(TCP_PORT)
    try:
        results = []
        for _ in range(15):
            results.append(gateway.connect(fip.floating_ip_address, TCP_PORT, timeout=2))
            if results[-1] == "accepted":
                break
        assert results[-1] == "accepted", results
        assert EXT_GATEWAY in listener.wait_peers()
        assert gateway.ping(fip.floating_ip_address)
    finally:
        listener.close()
        neutron.delete_ip(fip.id)
