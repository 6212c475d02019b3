"""Namespaces as VMs that really talk (issue 13 item 5), on the session's dev cloud.

Two VMs on the tap host (compute-3: Nova plugs tap vifs there) on one VLAN
network: each gets its address from Neutron's DHCP agent on compute-1 (their
frames cross compute-3's VPP, the wire and compute-1's VPP), they ping each
other, TCP is dropped by their security group until a rule lets it in, and the
metadata service answers a VM through the DHCP namespace (isolated metadata,
the route from DHCP option 121) with the VM's own instance id, as the fake
Nova checked the metadata agent's signature.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from networking_vpp.testing.devcloud.layout import TAP_HOST
from networking_vpp.testing.devcloud.vms import METADATA_URL, VM, udhcpc
from tests.system.conftest import dhcp_ready

pytestmark = pytest.mark.skipif(udhcpc() is None, reason="needs udhcpc (Debian udhcpc)")

TCP_PORT = 8080


@pytest.fixture(scope="module")
def net(client):  # noqa: ANN001, ANN201
    network = client.neutron.network.create_network(
        name="sys-vms", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    client.neutron.network.create_subnet(network_id=network.id, cidr="10.70.0.0/24", ip_version=4)
    dhcp_ready(client, network.id)
    yield network
    for port in client.neutron.network.ports(network_id=network.id, device_owner="compute:nova"):
        client.neutron.network.delete_port(port.id)
    client.neutron.network.delete_network(network.id)


@pytest.fixture(scope="module")
def group(client):  # noqa: ANN001, ANN201
    """Egress (Neutron's defaults) and ICMP in: no TCP in."""
    sg = client.neutron.network.create_security_group(name="sys-vms")
    client.neutron.network.create_security_group_rule(
        security_group_id=sg.id, direction="ingress", ethertype="IPv4", protocol="icmp"
    )
    yield sg
    client.neutron.network.delete_security_group(sg.id)


@pytest.fixture(scope="module")
def vms(client, net, group) -> Iterator[tuple[VM, VM]]:  # noqa: ANN001
    made: list[VM] = []
    try:
        for name in ("vm1", "vm2"):
            vm = VM(client.neutron.network, net.id, name, security_groups=[group.id])
            made.append(vm)
            vm.dhcp(timeout=90)
        yield made[0], made[1]
    finally:
        for vm in made:
            vm.close()


def test_each_vm_leases_its_port_address_from_the_dhcp_agent(client, vms) -> None:  # noqa: ANN001
    for vm in vms:
        port = client.neutron.network.get_port(vm.port.id)
        assert port.binding_host_id == TAP_HOST and port.binding_vif_type == "tap"
        assert vm.ip == port.fixed_ips[0]["ip_address"]
        # The lease can come before the state watcher's completion reaches Neutron.
        client.wait_port(vm.port.id, "ACTIVE", timeout=30)
        # Option 121 carried the isolated metadata route, via the DHCP port.
        assert "169.254.169.254 via 10.70.0." in vm.routes()


def test_the_vms_ping_each_other(vms) -> None:  # noqa: ANN001
    vm1, vm2 = vms
    assert vm1.ping(vm2.ip)
    assert vm2.ping(vm1.ip)


def test_tcp_is_dropped_until_a_rule_lets_it_in(client, vms, group) -> None:  # noqa: ANN001
    vm1, vm2 = vms
    listener = vm2.listen(TCP_PORT)
    try:
        assert vm1.connect(vm2.ip, TCP_PORT, timeout=2) == "no answer"
        rule = client.neutron.network.create_security_group_rule(
            security_group_id=group.id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=TCP_PORT,
            port_range_max=TCP_PORT,
        )
        try:
            # The agents apply the rule within moments: try until it lets us in.
            results = []
            for _ in range(20):
                results.append(vm1.connect(vm2.ip, TCP_PORT, timeout=1))
                if results[-1] == "accepted":
                    break
            assert results[-1] == "accepted", results
            assert vm1.ip in listener.wait_peers()
        finally:
            client.neutron.network.delete_security_group_rule(rule.id)
    finally:
        listener.close()


def test_the_metadata_service_answers_a_vm_with_its_instance_id(vms) -> None:  # noqa: ANN001
    vm1, _ = vms
    assert vm1.get(METADATA_URL) == (200, "latest")
    status, body = vm1.get(METADATA_URL + "latest/meta-data/instance-id")
    assert (status, body) == (200, vm1.server_id)


def test_a_closed_vm_leaves_no_namespace_tap_or_port(client, net, group) -> None:  # noqa: ANN001
    vm = VM(client.neutron.network, net.id, "vm-gone", security_groups=[group.id])
    tap, netns, port_id = vm.tap, vm.netns, vm.port.id
    vm.close()
    assert tap not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert netns not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    assert client.neutron.network.find_port(port_id) is None
