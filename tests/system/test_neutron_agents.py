"""Neutron's own agents on the dev cloud: DHCP and metadata over RabbitMQ, on VPP.

The DHCP agent runs as compute-1 with ``interface_driver = vpp``: its port on a
network is bound by our driver as ``tap`` on compute-1, its device is a veth made
by the interface driver, compute-1's vpp-agent attaches the root end with
af_packet, and the port goes ACTIVE. The metadata agent answers through the
fake Nova's metadata API, which checks the agent's signature.
"""

from __future__ import annotations

import http.client
import socket
import uuid

from networking_vpp.testing.devcloud import neutron_agents, procs
from networking_vpp.testing.devcloud.cloud import DevCloud

HOST = neutron_agents.HOST


def _agents(client) -> dict[str, object]:  # noqa: ANN001
    return {(a.binary, a.host): a for a in client.neutron.network.agents()}


def test_neutron_lists_the_dhcp_and_metadata_agents_alive(client) -> None:  # noqa: ANN001
    agents = _agents(client)
    dhcp = agents[("neutron-dhcp-agent", HOST)]
    metadata = agents[("neutron-metadata-agent", HOST)]
    assert dhcp.agent_type == "DHCP agent" and dhcp.is_alive
    assert metadata.agent_type == "Metadata agent" and metadata.is_alive
    # Ours, from etcd (networking_vpp/server/agents.py), beside them.
    assert agents[("vpp-agent", "compute-1")].is_alive
    assert agents[("vpp-agent", "compute-2")].is_alive


def _dhcp_port(client, network_id: str):  # noqa: ANN001, ANN202
    ports = list(client.neutron.network.ports(network_id=network_id, device_owner="network:dhcp"))
    return ports[0] if ports else None


def test_a_dhcp_port_is_bound_as_tap_on_compute_1_and_goes_active(client) -> None:  # noqa: ANN001
    net = client.neutron.network.create_network(
        name="sys-dhcp", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    try:
        client.neutron.network.create_subnet(
            network_id=net.id, cidr="10.60.0.0/24", ip_version=4, enable_dhcp=True
        )
        port = procs.wait_until(
            lambda: _dhcp_port(client, net.id), 60.0, "the DHCP agent's port", interval=0.2
        )
        port = client.wait_port(port.id, "ACTIVE", timeout=60)
        assert port.binding_host_id == HOST
        assert port.binding_vif_type == "tap"
        # The agent attached the real device, the veth root end the interface driver made.
        tap = f"tap{port.id[:11]}"
        assert socket.if_nametoindex(tap) > 0
        assert any(name.endswith(tap) for name in client.tagged(HOST, port.id))
        state = client.port_state(HOST, port.id)
        assert state is not None and state.status == "active"
        # dnsmasq serves the network in its namespace, on the port's address.
        assert f"qdhcp-{net.id}" in neutron_agents.ours(client.cloud.layout, [net.id])
    finally:
        for p in client.neutron.network.ports(network_id=net.id):
            client.neutron.network.delete_port(p, ignore_missing=True)
        client.neutron.network.delete_network(net, ignore_missing=True)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("169.254.169.254", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


def _metadata(cloud: DevCloud, network_id: str, address: str, path: str) -> tuple[int, str]:
    """What a VM at ``address`` on the network gets for ``path``, asked as the DHCP
    namespace's haproxy asks the metadata agent (its socket, the network's id)."""
    conn = _UnixHTTPConnection(str(neutron_agents.state_path(cloud.layout) / "metadata_proxy"))
    try:
        conn.request(
            "GET",
            path,
            headers={"X-Neutron-Network-ID": network_id, "X-Forwarded-For": address},
        )
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_the_metadata_agent_answers_through_the_fake_nova(client, vlan_net) -> None:  # noqa: ANN001
    instance = str(uuid.uuid4())
    port = client.neutron.network.create_port(
        network_id=vlan_net.id, device_owner="compute:nova", device_id=instance
    )
    try:
        address = port.fixed_ips[0]["ip_address"]
        # Signed by the metadata agent with the shared secret; the fake Nova checks it.
        assert _metadata(client.cloud, vlan_net.id, address, "/latest/meta-data/instance-id") == (
            200,
            instance,
        )
        code, body = _metadata(client.cloud, vlan_net.id, address, "/latest/meta-data/local-ipv4")
        assert (code, body) == (200, address)
        # No port has that address: the agent refuses, Nova is not asked.
        assert _metadata(client.cloud, vlan_net.id, "10.30.0.250", "/")[0] == 404
    finally:
        client.neutron.network.delete_port(port, ignore_missing=True)
