"""Live migration on a real Neutron, as Nova drives it with multiple port bindings.

An INACTIVE binding on the destination programs that host's VPP while the port
stays ACTIVE on the source; the destination's report makes Nova hear
``network-vif-plugged``; ``activate`` leaves the source clean and the port
ACTIVE on the destination; deleting the inactive binding (an aborted
migration) leaves the destination clean.
"""

from __future__ import annotations

import pytest

from networking_vpp.testing.devcloud.client import VIF_PLUGGED
from networking_vpp.testing.devcloud.procs import wait_until

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SOURCE, DEST = "compute-1", "compute-2"


def _prepared(client, port_id: str) -> None:  # noqa: ANN001
    """Create the destination's binding and wait until that host reports the port."""
    client.nova.network.create_port_binding(port_id, host=DEST)
    wait_until(lambda: client.binding(DEST, port_id), 15, "the destination's key")
    dest = client.binding(DEST, port_id)
    wait_until(
        lambda: (
            (s := client.port_state(DEST, port_id)) is not None
            and s.status == "active"
            and s.binding_id == dest.binding_id
        ),
        15,
        "the destination's report",
    )


def test_destination_is_programmed_before_activate(client, make_port, vlan_net):
    port = make_port(vlan_net, SOURCE)
    client.wait_port(port.id, "ACTIVE")
    client.wait_nova_event(port.id)
    plugged_before = len(client.nova_events(VIF_PLUGGED, port.id))

    _prepared(client, port.id)
    # Both hosts have the port while the guest still runs on the source.
    assert client.tagged(DEST, port.id), client.vpp(DEST)
    assert client.tagged(DEST, vlan_net.id)
    assert client.tagged(SOURCE, port.id)
    assert client.neutron.network.get_port(port.id).status == "ACTIVE"
    assert client.neutron.network.get_port(port.id).binding_host_id == SOURCE
    # Nova hears "plugged" for the destination (Neutron sends its events each second).
    wait_until(
        lambda: len(client.nova_events(VIF_PLUGGED, port.id)) > plugged_before,
        15,
        "network-vif-plugged for the destination",
    )

    client.nova.network.activate_port_binding(port.id, DEST)
    wait_until(lambda: not client.tagged(SOURCE, port.id), 15, "the source's objects gone")
    assert client.binding(SOURCE, port.id) is None
    wait_until(
        lambda: (
            (p := client.neutron.network.get_port(port.id)).status == "ACTIVE"
            and p.binding_host_id == DEST
        ),
        30,
        "the port ACTIVE on the destination",
    )
    assert client.tagged(DEST, port.id)
    # Nova drops the source's (now inactive) binding: nothing changes on either host.
    client.nova.network.delete_port_binding(port.id, SOURCE)
    assert client.tagged(DEST, port.id)
    assert client.neutron.network.get_port(port.id).status == "ACTIVE"


def test_aborted_migration_leaves_the_destination_clean(client, make_port, vlan_net):
    port = make_port(vlan_net, SOURCE)
    client.wait_port(port.id, "ACTIVE")
    _prepared(client, port.id)

    client.nova.network.delete_port_binding(port.id, DEST)
    wait_until(lambda: not client.tagged(DEST, port.id), 15, "the destination's objects gone")
    assert client.binding(DEST, port.id) is None
    wait_until(lambda: client.port_state(DEST, port.id) is None, 15, "its report gone")
    assert client.tagged(SOURCE, port.id)
    assert client.neutron.network.get_port(port.id).status == "ACTIVE"
