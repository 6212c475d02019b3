"""Housekeeping: control_ping, show_version, want_interface_events, cli_inband.

``cli_inband`` runs VPP's debug CLI; the emulator knows only the commands the
agent sends (``CLI_COMMANDS``) and raises on any other, so that a new command
fails a test instead of being answered as if VPP had done something.
"""

from __future__ import annotations

import re
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


class UnknownCliCommand(NotImplementedError):
    """A ``cli_inband`` command the emulator does not model."""


# acl.c acl_set_aclplugin_fn: "set acl-plugin reclassify-sessions %u"
_RECLASSIFY = re.compile(r"set acl-plugin reclassify-sessions (\d+)")
_SHOW_SESSIONS = "show acl-plugin sessions"
CLI_COMMANDS = ("set acl-plugin reclassify-sessions <n>", _SHOW_SESSIONS)


def cli_reads_only(cmd: str) -> bool:
    """Whether a CLI command only reads (the emulator's mutation count skips it)."""
    return cmd.split()[:1] == ["show"]


@handler("cli_inband")
def cli_inband(env: Env, client: int, a: dict[str, Any]) -> dict[str, Any]:
    """The CLI commands the emulator models, answered as VPP answers them.

    ``show acl-plugin sessions`` (acl_plugin_show_sessions) is reduced to its
    totals and its last line, the setting the agent reads.
    """
    cmd = " ".join(a["cmd"].split())
    acl = env.state.acl
    if cmd == _SHOW_SESSIONS:
        n = len(acl.sessions)
        return {
            "reply": f"Sessions total: add {n} - del 0 = {n}\n"
            f"Reclassify sessions: {int(acl.reclassify)}\n"
        }
    m = _RECLASSIFY.fullmatch(cmd)
    if m is None:
        raise UnknownCliCommand(f"emulated VPP models only {CLI_COMMANDS}, not {a['cmd']!r}")
    acl.reclassify = int(m.group(1)) != 0
    return {"reply": ""}
