"""The system-test rig: one dev cloud for the whole session (real Neutron, MariaDB, etcd,
RabbitMQ, and Neutron's own DHCP and metadata agents on compute-1).

Started with the same code as ``tools/devcloud/up.sh`` in a temporary directory on
free loopback ports, so it never touches a developer's own ``.devcloud/``; stopped
at the end of the session even when tests fail (the agents' namespaces and daemons
too). Skips only when the machine lacks mariadbd, etcd, uwsgi, rabbitmq-server,
dnsmasq or haproxy (CI installs them through ``.ci/run``), or when not root (the
agents make namespaces and veths).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from networking_vpp.testing.devcloud.cloud import DevCloud, missing_prerequisites
from networking_vpp.testing.devcloud.procs import wait_until


@pytest.fixture(scope="session")
def devcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCloud]:
    missing = missing_prerequisites(with_agents=True)
    if os.geteuid() != 0:
        missing.append("root (Neutron's agents make namespaces and veths)")
    if missing:
        pytest.skip("the dev cloud needs " + ", ".join(missing))
    cloud = DevCloud(tmp_path_factory.mktemp("devcloud"), tied=True, neutron_agents=True)
    try:
        cloud.up()
        yield cloud
    finally:
        cloud.down()
        # Keep the logs for a post-mortem; the databases are big and worthless.
        for data in (cloud.layout.mariadb_data, cloud.layout.etcd_data):
            shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def client(devcloud: DevCloud):  # noqa: ANN201
    from networking_vpp.testing.devcloud.client import CloudClient  # needs openstacksdk

    c = CloudClient(devcloud)
    yield c
    c.close()


def dhcp_ready(client, network_id: str, timeout: float = 90.0):  # noqa: ANN001, ANN201
    """Wait until the DHCP agent serves the network: its port is ACTIVE.

    A VM's port on a network with DHCP goes ACTIVE only once the DHCP agent has
    its address (a provisioning block). The agent's first network also starts
    its privileged helpers, some seconds on a loaded machine: tests that time a
    port's way to ACTIVE take networks that are ready, as a cloud user would.
    """

    def port():  # noqa: ANN202
        found = list(
            client.neutron.network.ports(network_id=network_id, device_owner="network:dhcp")
        )
        return found[0] if found else None

    dhcp = wait_until(port, timeout, f"a DHCP port on {network_id}", interval=0.2)
    return client.wait_port(dhcp.id, "ACTIVE", timeout=timeout)


@pytest.fixture(scope="session")
def vlan_net(client):  # noqa: ANN001, ANN201
    """A VLAN network on physnet1 with a subnet, served by the DHCP agent."""
    net = client.neutron.network.create_network(
        name="sys-vlan", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    client.neutron.network.create_subnet(network_id=net.id, cidr="10.30.0.0/24", ip_version=4)
    dhcp_ready(client, net.id)
    return net


@pytest.fixture(scope="session")
def flat_net(client):  # noqa: ANN001, ANN201
    """A flat network on physnet2 with a subnet, served by the DHCP agent."""
    net = client.neutron.network.create_network(
        name="sys-flat", provider_network_type="flat", provider_physical_network="physnet2"
    )
    client.neutron.network.create_subnet(network_id=net.id, cidr="10.40.0.0/24", ip_version=4)
    dhcp_ready(client, net.id)
    return net


@pytest.fixture
def make_port(client):  # noqa: ANN001, ANN201
    """Create ports the way Nova binds them (host, compute owner, a server UUID).

    Whatever a test leaves is deleted afterwards, so tests do not see each other's ports.
    """
    made = []

    def make(network, host: str, **extra):  # noqa: ANN001, ANN202
        port = client.neutron.network.create_port(
            network_id=network.id,
            binding_host_id=host,
            device_owner="compute:nova",
            device_id=str(uuid.uuid4()),
            **extra,
        )
        made.append(port.id)
        return port

    yield make
    for port_id in made:
        client.neutron.network.delete_port(port_id, ignore_missing=True)
