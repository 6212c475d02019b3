"""The namespace VM's lease handling and the wire's names (no root needed)."""

from __future__ import annotations

from pathlib import Path

from networking_vpp.testing.devcloud import vms, wire


def test_a_lease_with_option_121_routes_by_it_alone() -> None:
    lease = vms.parse_lease(
        "ip=10.0.0.5\nsubnet=255.255.255.0\nrouter=10.0.0.1\n"
        "staticroutes=169.254.169.254/32 10.0.0.2 0.0.0.0/0 10.0.0.1\n"
    )
    assert vms.prefix_len(lease["subnet"]) == 24
    # RFC 3442: with classless routes the router option is ignored.
    assert vms.routes(lease) == [("169.254.169.254/32", "10.0.0.2"), ("0.0.0.0/0", "10.0.0.1")]


def test_a_lease_without_option_121_routes_by_its_first_router() -> None:
    lease = vms.parse_lease("ip=10.0.0.5\nsubnet=255.255.0.0\nrouter=10.0.0.1 10.0.0.9\n")
    assert vms.prefix_len(lease["subnet"]) == 16
    assert vms.routes(lease) == [("0.0.0.0/0", "10.0.0.1")]
    assert vms.routes(vms.parse_lease("ip=10.0.0.5\nsubnet=255.255.255.0\n")) == []


def test_wire_names_fit_a_netdev_and_differ_between_clouds(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert wire.namespace(a) != wire.namespace(b)
    assert wire.cable(a, 3, 3) != wire.cable(b, 3, 3)
    assert len(wire.cable(a, 3, 3)) <= 15 and len(wire.bridge("physnet3")) <= 15
    assert wire.namespace(a) == wire.namespace(a / ".." / "a")  # resolved
