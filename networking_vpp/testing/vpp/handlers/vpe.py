"""Housekeeping: control_ping, show_version, want_interface_events."""

from __future__ import annotations

from typing import Any

from networking_vpp.testing.vpp import errors as e
from networking_vpp.testing.vpp.handlers.base import Env, handler

VERSION = "26.10-release"


@handler("control_ping")
def control_ping(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """The cheap round trip; carries VPP's pid, which changes when VPP restarts."""
    return {"vpe_pid": env.vpe_pid}


@handler("show_version")
def show_version(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """What ``show version`` says (the emulator admits what it is in build_directory)."""
    return {
        "program": "vpe",
        "version": VERSION,
        "build_date": "Thu Oct 29 00:00:00 UTC 2026",
        "build_directory": "networking_vpp.testing.vpp (emulator)",
    }


@handler("want_interface_events")
def want_interface_events(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """pub_sub_handler: enabling twice, or disabling when not enabled, is refused."""
    subs = env.state.subscribers
    if client in subs:
        if a["enable_disable"]:
            return {"retval": e.INVALID_REGISTRATION}
        del subs[client]
        return {}
    if not a["enable_disable"]:
        return {"retval": e.INVALID_REGISTRATION}
    subs[client] = a["pid"]
    return {}
