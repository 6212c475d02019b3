"""The ACL plugin's operations (security groups and anti-spoofing), for VppAdapter."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from networking_vpp.agent.vpp import types as t


def _prefix(value: Any) -> str:
    # vpp_papi hands prefixes back as ipaddress networks; normalise to text.
    return str(ipaddress.ip_network(str(value), strict=False))


def _str(value: Any) -> str:
    return str(value).rstrip("\x00")


def after_done(done: Callable[[], None] | None) -> Callable[[Any], None] | None:
    """A reply's callback (``VppAdapter._command``'s ``then``) from one that wants
    no reply: what the reconcilers pass to record a change once it is done."""
    return None if done is None else (lambda _reply: done())


def _macip_fields(acl_index: int, tag: str, rules: tuple[t.MacipRule, ...]) -> dict[str, Any]:
    return {
        "acl_index": acl_index,
        "tag": tag,
        "count": len(rules),
        "r": [
            {
                "is_permit": r.action,
                "src_mac": r.mac,
                "src_mac_mask": r.mac_mask,
                "src_prefix": r.prefix,
            }
            for r in rules
        ],
    }


# The last line of "show acl-plugin sessions" (acl.c acl_plugin_show_sessions)
_RECLASSIFY_LINE = re.compile(r"^Reclassify sessions: (\d+)", re.MULTILINE)


class AclOps:
    """Mixed into VppAdapter: needs its ``_call``, ``_mutate`` and ``_command``."""

    def _call(self, message: str, *, mutating: bool = False, **fields: Any) -> Any:
        raise NotImplementedError

    def _mutate(self, message: str, **fields: Any) -> Any:
        raise NotImplementedError

    def _command(
        self, message: str, then: Callable[[Any], None] | None = None, **fields: Any
    ) -> None:
        raise NotImplementedError

    # --- session reclassification -------------------------------------------
    # The ACL plugin keeps a session across a change of the ACLs that allowed
    # it (real-vpp-facts #9) unless it reclassifies sessions: then a session
    # made under an older policy is checked again at its next packet, and
    # deleted if the ACLs now deny it, while other flows run on. acl.api has
    # no message for the setting: only startup.conf ("acl-plugin { reclassify
    # sessions 1 }") and the CLI, which the API reaches through cli_inband.
    def reclassifies_sessions(self) -> bool:
        """Whether the ACL plugin reclassifies sessions (read from the CLI)."""
        reply = self._call("cli_inband", cmd="show acl-plugin sessions")
        m = _RECLASSIFY_LINE.search(_str(reply.reply))
        return m is not None and m.group(1) != "0"

    def set_reclassify_sessions(self) -> None:
        """Turn session reclassification on (until VPP restarts)."""
        self._command("cli_inband", cmd="set acl-plugin reclassify-sessions 1")

    # --- ACLs ----------------------------------------------------------------
    def acl_add_replace(self, acl_index: int, tag: str, rules: tuple[t.AclRule, ...]) -> int:
        """Create (index ~0) or atomically replace an ACL; returns its index."""
        reply = self._mutate(
            "acl_add_replace",
            acl_index=acl_index,
            tag=tag,
            count=len(rules),
            r=[
                {
                    "is_permit": r.action,
                    "src_prefix": r.src,
                    "dst_prefix": r.dst,
                    "proto": r.proto,
                    "srcport_or_icmptype_first": r.sport[0],
                    "srcport_or_icmptype_last": r.sport[1],
                    "dstport_or_icmpcode_first": r.dport[0],
                    "dstport_or_icmpcode_last": r.dport[1],
                    "tcp_flags_mask": 0,
                    "tcp_flags_value": 0,
                }
                for r in rules
            ],
        )
        return int(reply.acl_index)

    def acl_del(self, acl_index: int) -> None:
        """Delete an ACL no interface uses."""
        self._command("acl_del", acl_index=acl_index)

    def dump_acls(self) -> list[t.Acl]:
        """Every ACL with its rules."""
        rows = self._call("acl_dump", acl_index=t.NO_INDEX)
        return [
            t.Acl(
                int(row.acl_index),
                _str(row.tag),
                tuple(
                    t.AclRule(
                        action=int(r.is_permit),
                        src=_prefix(r.src_prefix),
                        dst=_prefix(r.dst_prefix),
                        proto=int(r.proto),
                        sport=(int(r.srcport_or_icmptype_first), int(r.srcport_or_icmptype_last)),
                        dport=(int(r.dstport_or_icmpcode_first), int(r.dstport_or_icmpcode_last)),
                    )
                    for r in row.r
                ),
            )
            for row in rows
        ]

    def set_acl_list(
        self,
        sw_if_index: int,
        inputs: tuple[int, ...],
        outputs: tuple[int, ...],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Set an interface's input and output ACLs (in evaluation order)."""
        acls = list(inputs) + list(outputs)
        self._command(
            "acl_interface_set_acl_list",
            after_done(then),
            sw_if_index=sw_if_index,
            count=len(acls),
            n_input=len(inputs),
            acls=acls,
        )

    def dump_interface_acls(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        """Every interface's (input, output) ACL lists."""
        return _by_direction(self._call("acl_interface_list_dump", sw_if_index=t.NO_INDEX), "acls")

    # --- ethertype whitelists --------------------------------------------------------
    def set_etype_whitelist(
        self,
        sw_if_index: int,
        inputs: tuple[int, ...],
        outputs: tuple[int, ...],
        then: Callable[[], None] | None = None,
    ) -> None:
        """The ethertypes the interface's non-IP path lets through, by direction
        (both empty: none set). Active only where the interface has ACLs."""
        types = list(inputs) + list(outputs)
        self._command(
            "acl_interface_set_etype_whitelist",
            after_done(then),
            sw_if_index=sw_if_index,
            count=len(types),
            n_input=len(inputs),
            whitelist=types,
        )

    def dump_etype_whitelists(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        """sw_if_index -> (input, output) whitelists, for interfaces that have one."""
        rows = self._call("acl_interface_etype_whitelist_dump", sw_if_index=t.NO_INDEX)
        return _by_direction(rows, "whitelist")

    # --- MACIP -----------------------------------------------------------------
    def macip_add_replace(self, acl_index: int, tag: str, rules: tuple[t.MacipRule, ...]) -> int:
        """Create (index ~0) or replace a MACIP ACL; returns its index."""
        reply = self._mutate("macip_acl_add_replace", **_macip_fields(acl_index, tag, rules))
        return int(reply.acl_index)

    def macip_add_replace_then(
        self,
        acl_index: int,
        tag: str,
        rules: tuple[t.MacipRule, ...],
        then: Callable[[int], None],
    ) -> None:
        """:meth:`macip_add_replace`, whose index goes to ``then`` once VPP
        answers: in a batch, the request is sent without waiting."""
        self._command(
            "macip_acl_add_replace",
            lambda reply: then(int(reply.acl_index)),
            **_macip_fields(acl_index, tag, rules),
        )

    def macip_del(self, acl_index: int) -> None:
        """Delete a MACIP ACL."""
        self._command("macip_acl_del", acl_index=acl_index)

    def dump_macips(self) -> list[t.MacipAcl]:
        """Every MACIP ACL with its rules."""
        rows = self._call("macip_acl_dump", acl_index=t.NO_INDEX)
        return [
            t.MacipAcl(
                int(row.acl_index),
                _str(row.tag),
                tuple(
                    t.MacipRule(
                        int(r.is_permit),
                        _str(r.src_mac).lower(),
                        _str(r.src_mac_mask).lower(),
                        _prefix(r.src_prefix),
                    )
                    for r in row.r
                ),
            )
            for row in rows
        ]

    def macip_bind(
        self,
        sw_if_index: int,
        acl_index: int,
        bind: bool = True,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Apply (or remove) a MACIP ACL on an interface's input."""
        self._command(
            "macip_acl_interface_add_del",
            after_done(then),
            is_add=bind,
            sw_if_index=sw_if_index,
            acl_index=acl_index,
        )

    def dump_interface_macips(self) -> dict[int, int]:
        """sw_if_index -> MACIP ACL index, for interfaces that have one."""
        reply = self._call("macip_acl_interface_get")
        return {i: int(a) for i, a in enumerate(reply.acls) if int(a) != t.NO_INDEX}


def _by_direction(rows: Any, field: str) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
    """sw_if_index -> (input, output) from per-interface dump rows whose ``field``
    lists the inputs first (``n_input`` of them), then the outputs."""
    out = {}
    for row in rows:
        values = tuple(int(v) for v in getattr(row, field))
        n = int(row.n_input)
        out[int(row.sw_if_index)] = (values[:n], values[n:])
    return out
