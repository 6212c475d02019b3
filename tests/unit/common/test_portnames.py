"""Names derived from a port id, and the agent's check of a binding against them."""

from __future__ import annotations

import pytest

from networking_vpp.common import model, portnames

PORT = "0123456789abcdef"


def vhostuser(socket: str) -> model.PortBinding:
    return model.PortBinding(
        port_id=PORT,
        binding_id="b1",
        network_id="n1",
        mac_address="fa:16:3e:00:00:01",
        mtu=1500,
        network_type="flat",
        physnet="physnet1",
        segmentation_id=None,
        binding_type="vhostuser",
        vhostuser=model.VhostUser(socket),
    )


def tap(ifname: str) -> model.PortBinding:
    return model.PortBinding(
        port_id=PORT,
        binding_id="b1",
        network_id="n1",
        mac_address="fa:16:3e:00:00:01",
        mtu=1500,
        network_type="flat",
        physnet="physnet1",
        segmentation_id=None,
        binding_type="tap",
        tap=model.Tap(ifname),
    )


def test_names_are_the_port_ids_first_eleven_characters():
    assert portnames.vhostuser_socket("/run/vpp/vhostuser", PORT) == (
        "/run/vpp/vhostuser/vhu0123456789a"
    )
    assert portnames.tap_ifname(PORT) == "tap0123456789a"


@pytest.mark.parametrize("socket_dir", ["/run/vpp/vhostuser", "/run/vpp/vhostuser/"])
def test_the_derived_socket_in_the_configured_directory_passes(socket_dir):
    assert (
        portnames.endpoint_problem(vhostuser("/run/vpp/vhostuser/vhu0123456789a"), socket_dir)
        is None
    )


@pytest.mark.parametrize(
    "socket",
    [
        "/etc/passwd",  # VPP (root) would unlink it
        "/run/vpp/vhostuser/../../../etc/vhu0123456789a",
        "/run/vpp/other/vhu0123456789a",
        "/run/vpp/vhostuser/vhu0123456789b",  # another port's socket
        "/run/vpp/vhostuser/sub/vhu0123456789a",
        "vhu0123456789a",
    ],
)
def test_any_other_socket_is_refused(socket):
    problem = portnames.endpoint_problem(vhostuser(socket), "/run/vpp/vhostuser")
    assert problem is not None
    assert socket in problem and "/run/vpp/vhostuser/vhu0123456789a" in problem


def test_without_a_socket_directory_no_vhostuser_port_is_taken():
    problem = portnames.endpoint_problem(vhostuser("/run/vpp/vhostuser/vhu0123456789a"), None)
    assert problem is not None and "vhostuser_socket_dir" in problem


def test_only_the_derived_tap_name_passes():
    assert portnames.endpoint_problem(tap("tap0123456789a"), None) is None
    for name in ("eth0", "tap0123456789b", "tap0123456789ab"):
        problem = portnames.endpoint_problem(tap(name), "/run/vpp/vhostuser")
        assert problem is not None and name in problem and "tap0123456789a" in problem
