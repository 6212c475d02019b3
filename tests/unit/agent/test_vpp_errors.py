"""The agent's names for VPP's error codes."""

from __future__ import annotations

from networking_vpp.agent.vpp import errors
from networking_vpp.agent.vpp.adapter import VppApiError
from networking_vpp.testing.vpp import errors as emulated


def test_every_code_the_emulator_returns_has_the_same_name_on_the_agent_side() -> None:
    for code, name in emulated.NAMES.items():
        assert errors.name(code) == name


def test_an_error_is_told_by_its_name_and_an_unknown_code_by_its_number() -> None:
    exc = VppApiError("create_vlan_subif", -56)
    assert exc.name == "VLAN_ALREADY_EXISTS"
    assert str(exc) == "create_vlan_subif failed: VLAN_ALREADY_EXISTS"
    assert "-56" not in str(exc)
    assert errors.name(-9999) == "unknown VPP error -9999"
