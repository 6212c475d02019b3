"""The server tests' rig: ML2 mechanism drivers that exist only for tests.

ML2 loads mechanism drivers by entry point name (stevedore). Test-only drivers
are no entry points of the product: this rig registers them for the test
session, through a distribution of its own on ``sys.path``, and takes it away
afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stevedore.extension import ExtensionManager

NAMESPACE = "neutron.ml2.mechanism_drivers"
TEST_DRIVERS = {"vpp_test_failing": "networking_vpp.testing.ml2_drivers:FailingMechanismDriver"}


@pytest.fixture(scope="session")
def _test_drivers_dist(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A distribution whose only content is the test drivers' entry points."""
    root = tmp_path_factory.mktemp("test-drivers")
    info = Path(root, "networking_vpp_test_drivers-0.dist-info")
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: networking-vpp-test-drivers\nVersion: 0\n"
    )
    lines = [f"{name} = {target}" for name, target in TEST_DRIVERS.items()]
    (info / "entry_points.txt").write_text(f"[{NAMESPACE}]\n" + "\n".join(lines) + "\n")
    return str(root)


@pytest.fixture(scope="session", autouse=True)
def test_mechanism_drivers(_test_drivers_dist: str) -> Iterator[None]:
    """The test drivers' distribution on ``sys.path`` for the session.

    stevedore keeps each namespace's entry points for the life of the process
    (``ExtensionManager.ENTRY_POINT_CACHE``): a test that loaded ML2 earlier
    in the session would hide the new ones, so the namespace is read again.
    """
    sys.path.append(_test_drivers_dist)
    ExtensionManager.ENTRY_POINT_CACHE.pop(NAMESPACE, None)
    try:
        yield
    finally:
        sys.path.remove(_test_drivers_dist)
        ExtensionManager.ENTRY_POINT_CACHE.pop(NAMESPACE, None)
