"""The spine on a real Neutron: bind -> journal -> etcd -> agent -> VPP -> state -> ACTIVE -> Nova.

Runs on the session's dev cloud (tests/system/conftest.py): Neutron under uWSGI
with the ``vpp`` driver, MariaDB, etcd, a fake Nova, and two fake hosts running the
real agent on emulated VPPs.
"""

from __future__ import annotations

import pytest

from networking_vpp.testing.devcloud.client import VIF_PLUGGED
from networking_vpp.testing.devcloud.procs import wait_until

pytestmark = [
    pytest.mark.timeout(120),
    # openstacksdk warns (PendingDeprecationWarning) about its own internals on every call.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.mark.parametrize(
    ("net", "host"), [("vlan_net", "compute-1"), ("flat_net", "compute-2")], ids=["vlan", "flat"]
)
def test_bound_port_goes_active_and_nova_hears_after_the_agent(
    request, client, make_port, net, host
):
    network = request.getfixturevalue(net)
    other = "compute-2" if host == "compute-1" else "compute-1"

    port = make_port(network, host)
    assert port.binding_vif_type == "vhostuser"
    active = client.wait_port(port.id, "ACTIVE", timeout=30)

    # The journal's desired state, and the agent's report on it.
    binding = client.binding(host, port.id)
    assert binding is not None and binding.mac_address == active.mac_address
    state = client.port_state(host, port.id)
    assert state is not None and state.status == "active", state
    assert state.binding_id == binding.binding_id

    # VPP on that host (and only there) has the port, in its network's bridge domain.
    assert client.tagged(host, port.id), client.vpp(host)
    assert client.tagged(host, network.id)
    assert not client.tagged(other, port.id)

    # Nova heard "plugged" for this server, and only after the agent's report was written.
    event = client.wait_nova_event(port.id)
    assert event["server_uuid"] == port.device_id
    assert event["status"] == "completed"
    assert event["received_at"] > state.reported_at, (event, state)


def test_unbind_and_delete_remove_the_host_objects(client, make_port, vlan_net):
    host = "compute-2"
    unbound = make_port(vlan_net, host)
    deleted = make_port(vlan_net, host)
    for port in (unbound, deleted):
        client.wait_port(port.id, "ACTIVE", timeout=30)
        assert client.tagged(host, port.id)

    # Unbind (as Nova does when a server moves away): the host forgets the port.
    client.neutron.network.update_port(unbound.id, binding_host_id="")
    wait_until(lambda: not client.tagged(host, unbound.id), 15, "unbound port's objects gone")
    assert client.binding(host, unbound.id) is None
    wait_until(lambda: client.port_state(host, unbound.id) is None, 15, "its report gone")
    assert client.tagged(host, deleted.id), "the other port must stay"

    # Delete: same, and the network's bridge domain goes with its last port.
    client.neutron.network.delete_port(deleted.id)
    wait_until(lambda: not client.tagged(host, deleted.id), 15, "deleted port's objects gone")
    assert client.binding(host, deleted.id) is None
    wait_until(lambda: client.port_state(host, deleted.id) is None, 15, "its report gone")
    wait_until(lambda: not client.tagged(host, vlan_net.id), 15, "bridge domain collected")


def test_port_for_a_host_without_agent_stays_unbound(devcloud, client, make_port, vlan_net):
    port = make_port(vlan_net, "compute-9")
    assert port.binding_vif_type in ("binding_failed", "unbound"), port.binding_vif_type
    assert port.status == "DOWN"
    assert client.binding("compute-9", port.id) is None

    reason = "no live vpp-agent on that host"
    wait_until(
        lambda: any(
            port.id in line and reason in line
            for line in devcloud.server_log.read_text(errors="replace").splitlines()
        ),
        10,
        f"'{reason}' for {port.id} in {devcloud.server_log}",
    )
    assert not client.nova_events(VIF_PLUGGED, port.id)
