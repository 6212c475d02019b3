"""Security groups and anti-spoofing on VPP's ACL plugin.

One ACL per (group, VPP direction), shared by every port of the host in the
group and replaced in place with ``acl_add_replace`` so a rule change is one
atomic call whatever the number of ports; per port, the interface's ACL list
(``acl_interface_set_acl_list``) and a MACIP ACL for anti-spoofing. ACLs carry
tags, so a restarted agent adopts them instead of recreating them.

The ACL plugin filters IPv4 and IPv6 only (through up to three VLAN tags); any
other type takes its non-IP path, which passes everything unless the interface
has an ethertype whitelist (real-vpp-facts #11). A secured port gets one, in
and out: IPv4, IPv6 and ARP (which MACIP checks), as Neutron's OVS firewall
lets through; a VM's tagged frames are dropped at its port anyway
(``isolation.py``). A transparent or QinQ network's ports, when they come,
need the whitelist still: it looks past the tags the ACL plugin counts.
"""

from __future__ import annotations

import logging

from networking_vpp.agent.cache import SecGroupCache
from networking_vpp.agent.reconcile import acl_rules
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.common import model

LOG = logging.getLogger(__name__)

MAX_ACLS_PER_INTERFACE = 255  # acl_interface_set_acl_list's count is a u8
DIRECTIONS = (("in", "egress"), ("out", "ingress"))  # VPP direction, Neutron direction
#: A secured port's non-IP path lets these through, in and out: IPv4, IPv6, ARP
ETYPE_WHITELIST = ((0x0800, 0x86DD, 0x0806), (0x0800, 0x86DD, 0x0806))


class SecGroupError(Exception):
    """A port's security cannot be expressed in VPP; the reason is reported."""


def group_tag(sg_id: str, vpp_direction: str) -> str:
    """The tag of a group's shared ACL in one VPP direction ("in" or "out")."""
    return f"{t.SECGROUP_TAG}{sg_id}:{vpp_direction}"


class AclInventory:
    """Our ACLs in VPP and which interfaces use them.

    Keyed by tag body (``group_tag``, ...): in VPP each tag carries our host
    id too (``t.Tags``). Another host's ACLs are not ours (``foreign``);
    an older agent's, without a host id, are adopted and re-tagged once
    (``legacy_acls``, ``legacy_macips``: SecGroupReconciler.adopt_legacy).
    """

    def __init__(self, tags: t.Tags) -> None:
        self.tags = tags
        self.acls: dict[str, tuple[int, tuple[t.AclRule, ...]]] = {}  # body -> (index, rules)
        self.macips: dict[str, tuple[int, tuple[t.MacipRule, ...]]] = {}
        self.if_acls: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self.if_macip: dict[int, int] = {}
        #: sw_if_index -> (input, output) ethertype whitelist. VPP keeps one when
        #: the interface is deleted (and an index reused has it): so do we.
        self.if_whitelist: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self.stray_acls: list[int] = []
        self.stray_macips: list[int] = []
        self.foreign: set[str] = set()  # host ids of other agents' ACLs here
        #: adopted ACLs of an older agent, to re-tag: (index, tag body)
        self.legacy_acls: list[tuple[int, str]] = []
        self.legacy_macips: list[tuple[int, str]] = []

    @classmethod
    def from_vpp(cls, vpp: VppAdapter, tags: t.Tags) -> AclInventory:
        """Adopt every ACL and MACIP ACL tagged ours; duplicates are strays to delete."""
        inv = cls(tags)
        for acl in vpp.dump_acls():
            body = inv._body(acl.tag, acl.acl_index, inv.legacy_acls)
            if body is not None and body.startswith((t.SECGROUP_TAG, t.ESSENTIALS_TAG)):
                if body in inv.acls:
                    inv.stray_acls.append(acl.acl_index)
                else:
                    inv.acls[body] = (acl.acl_index, acl.rules)
        for macip in vpp.dump_macips():
            body = inv._body(macip.tag, macip.acl_index, inv.legacy_macips)
            if body is not None and body.startswith(t.MACIP_TAG):
                if body in inv.macips:
                    inv.stray_macips.append(macip.acl_index)
                else:
                    inv.macips[body] = (macip.acl_index, macip.rules)
        inv.if_acls = {i: lists for i, lists in vpp.dump_interface_acls().items() if any(lists)}
        inv.if_macip = vpp.dump_interface_macips()
        inv.if_whitelist = vpp.dump_etype_whitelists()
        return inv

    def _body(self, tag: str, index: int, legacy: list[tuple[int, str]]) -> str | None:
        parsed = t.parse_tag(tag)
        if parsed is None:
            return None
        body, owner = parsed
        if owner is None:
            legacy.append((index, body))
        elif owner != self.tags.host_id:
            self.foreign.add(owner)
            return None
        return body

    def in_use(self, acl_index: int) -> bool:
        """Whether some interface's ACL list holds the ACL."""
        return any(acl_index in ins or acl_index in outs for ins, outs in self.if_acls.values())


class SecGroupReconciler:
    """Compiles groups into shared ACLs and applies them to ports."""

    def __init__(self, vpp: VppAdapter, inventory: AclInventory, groups: SecGroupCache) -> None:
        self._vpp = vpp
        self.inv = inventory
        self._groups = groups

    # --- shared ACLs -------------------------------------------------------------
    def _ensure_acl(self, tag: str, rules: tuple[t.AclRule, ...]) -> int:
        have = self.inv.acls.get(tag)
        if have is not None and have[1] == rules:
            return have[0]
        vpp_tag = self.inv.tags.mark(tag)
        index = self._vpp.acl_add_replace(have[0] if have else t.NO_INDEX, vpp_tag, rules)
        self.inv.acls[tag] = (index, rules)
        return index

    def _group_acl(self, sg_id: str, vpp_direction: str, neutron_direction: str) -> int:
        group = self._groups.groups.get(sg_id)
        members = self._groups.remote_members(group) if group else {}
        rules = acl_rules.group_rules(group, neutron_direction, members)
        return self._ensure_acl(group_tag(sg_id, vpp_direction), rules)

    def _group_acl_index(self, sg_id: str, vpp_direction: str, neutron_direction: str) -> int:
        # Compiling expands remote groups (O(members)); doing it per port would
        # make a host's work quadratic. Content is kept current by
        # reconcile_group, which every group or membership change queues.
        have = self.inv.acls.get(group_tag(sg_id, vpp_direction))
        if have is not None:
            return have[0]
        return self._group_acl(sg_id, vpp_direction, neutron_direction)

    def reconcile_group(self, sg_id: str, used: bool) -> None:
        """Bring a group's ACLs up to date if a port here uses it, else collect them."""
        if used:
            for vpp_direction, neutron_direction in DIRECTIONS:
                self._group_acl(sg_id, vpp_direction, neutron_direction)
            return
        for vpp_direction, _ in DIRECTIONS:
            tag = group_tag(sg_id, vpp_direction)
            have = self.inv.acls.get(tag)
            if have is None:
                continue
            if self.inv.in_use(have[0]):
                # A port still holds it; that port's reconcile queues us again.
                LOG.debug("ACL %s still applied somewhere; not collected yet", tag)
                continue
            self._vpp.acl_del(have[0])
            del self.inv.acls[tag]
            LOG.info("Security group %s: ACL %d (%s) collected", sg_id, have[0], vpp_direction)

    def adopt_legacy(self) -> None:
        """Tag an older agent's ACLs with our host id: one replace each, with
        the rules they have (once, at a resync)."""
        for index, body in self.inv.legacy_acls:
            have = self.inv.acls.get(body)
            if have is not None and have[0] == index:  # (not a duplicate: collected)
                self._vpp.acl_add_replace(index, self.inv.tags.mark(body), have[1])
        for index, body in self.inv.legacy_macips:
            mhave = self.inv.macips.get(body)
            if mhave is not None and mhave[0] == index:
                self._vpp.macip_add_replace(index, self.inv.tags.mark(body), mhave[1])
        self.inv.legacy_acls, self.inv.legacy_macips = [], []

    def collect_strays(self) -> None:
        """Delete duplicate tagged ACLs (left by a crash between create and record),
        and the essentials if no interface holds them (a crash after their last
        port went)."""
        for index in self.inv.stray_acls:
            if not self.inv.in_use(index):
                self._vpp.acl_del(index)
        for index in self.inv.stray_macips:
            if index not in self.inv.if_macip.values():
                self._vpp.macip_del(index)
        self.inv.stray_acls, self.inv.stray_macips = [], []
        self.collect_essentials()

    def collect_essentials(self) -> None:
        """Delete the essentials ACLs once no interface holds them (their last
        secured port went, or turned port security off).

        Cheap while they are in use, which is whenever a secured port is
        left: every secured port's lists start with them, so the first list
        looked at holds them.
        """
        for tag in (t.ESSENTIALS_TAG + "in", t.ESSENTIALS_TAG + "out"):
            have = self.inv.acls.get(tag)
            if have is None or self.inv.in_use(have[0]):
                continue
            self._vpp.acl_del(have[0])
            del self.inv.acls[tag]
            LOG.info("Essentials ACL %d (%s) collected with its last port", have[0], tag)

    # --- ports ---------------------------------------------------------------------
    def groups_on(self, sw_if_index: int) -> set[str]:
        """Groups whose shared ACLs the interface's ACL lists hold in VPP now."""
        lists = self.inv.if_acls.get(sw_if_index)
        if not lists:
            return set()
        held = set(lists[0]) | set(lists[1])
        return {
            tag[len(t.SECGROUP_TAG) :].rsplit(":", 1)[0]
            for tag, (index, _rules) in self.inv.acls.items()
            if index in held and tag.startswith(t.SECGROUP_TAG)
        }

    def apply_port(self, sw_if_index: int, port: model.PortBinding) -> None:
        """Set the port's ACL list and anti-spoofing (or none, without port security)."""
        if not port.port_security_enabled:
            self.clear_port(sw_if_index, port.port_id)
            return
        groups = sorted(set(port.security_groups))
        if 2 * (len(groups) + 1) > MAX_ACLS_PER_INTERFACE:
            raise SecGroupError(
                f"{len(groups)} security groups need {2 * (len(groups) + 1)} ACLs on the "
                f"interface; VPP allows {MAX_ACLS_PER_INTERFACE}"
            )
        inputs = [self._ensure_acl(t.ESSENTIALS_TAG + "in", acl_rules.ESSENTIAL_INPUT)]
        outputs = [self._ensure_acl(t.ESSENTIALS_TAG + "out", acl_rules.ESSENTIAL_OUTPUT)]
        for sg_id in groups:
            inputs.append(self._group_acl_index(sg_id, "in", "egress"))
            outputs.append(self._group_acl_index(sg_id, "out", "ingress"))
        lists = (tuple(inputs), tuple(outputs))
        # The whitelist first: acl.api says it "takes effect when applying ACLs
        # on the interface, so must be given prior" (acl.c re-applies them if not).
        # In a batch the calls are sent in this order, which VPP keeps.
        self._set_whitelist(sw_if_index, ETYPE_WHITELIST)
        if self.inv.if_acls.get(sw_if_index) != lists:

            def applied() -> None:
                self.inv.if_acls[sw_if_index] = lists

            self._vpp.set_acl_list(sw_if_index, *lists, then=applied)
        self._apply_macip(sw_if_index, port)

    def prepare_port(self, port: model.PortBinding) -> None:
        """Make (or update) the port's MACIP ACL, which needs no interface: so a
        new port's goes out with its interface's create, in one batch. Recorded
        once VPP's reply is in."""
        if not port.port_security_enabled:
            return
        tag = t.MACIP_TAG + port.port_id
        rules = acl_rules.macip_rules(port)
        have = self.inv.macips.get(tag)
        if have is None or have[1] != rules:

            def made(index: int) -> None:
                self.inv.macips[tag] = (index, rules)

            self._vpp.macip_add_replace_then(
                have[0] if have else t.NO_INDEX, self.inv.tags.mark(tag), rules, made
            )

    def _apply_macip(self, sw_if_index: int, port: model.PortBinding) -> None:
        tag = t.MACIP_TAG + port.port_id
        rules = acl_rules.macip_rules(port)
        have = self.inv.macips.get(tag)
        if have is None or have[1] != rules:
            vpp_tag = self.inv.tags.mark(tag)
            index = self._vpp.macip_add_replace(have[0] if have else t.NO_INDEX, vpp_tag, rules)
            self.inv.macips[tag] = (index, rules)
        else:
            index = have[0]
        if self.inv.if_macip.get(sw_if_index) != index:

            def bound() -> None:
                self.inv.if_macip[sw_if_index] = index

            self._vpp.macip_bind(sw_if_index, index, then=bound)

    def _set_whitelist(
        self, sw_if_index: int, whitelist: tuple[tuple[int, ...], tuple[int, ...]]
    ) -> None:
        if self.inv.if_whitelist.get(sw_if_index, ((), ())) != whitelist:

            def set_() -> None:
                if any(whitelist):
                    self.inv.if_whitelist[sw_if_index] = whitelist
                else:
                    self.inv.if_whitelist.pop(sw_if_index, None)

            self._vpp.set_etype_whitelist(sw_if_index, *whitelist, then=set_)

    def clear_port(self, sw_if_index: int, port_id: str) -> None:
        """No filtering on the interface (port security off): lists and MACIP removed."""
        if self.inv.if_acls.get(sw_if_index):
            self._vpp.set_acl_list(sw_if_index, (), ())
            self.inv.if_acls.pop(sw_if_index, None)
            self.collect_essentials()
        self._set_whitelist(sw_if_index, ((), ()))
        bound = self.inv.if_macip.pop(sw_if_index, None)
        if bound is not None:
            self._vpp.macip_bind(sw_if_index, bound, bind=False)
        self._delete_macip(port_id)

    def interface_deleted(self, sw_if_index: int, port_id: str) -> None:
        """Record that VPP dropped the interface (and with it its ACL bindings)."""
        if self.inv.if_acls.pop(sw_if_index, None):
            self.collect_essentials()
        self.inv.if_macip.pop(sw_if_index, None)
        self._delete_macip(port_id)

    def port_gone(self, port_id: str) -> None:
        """A port that has no interface is gone: its MACIP ACL, made in flight
        with an interface create that then failed, goes too."""
        self._delete_macip(port_id)

    def _delete_macip(self, port_id: str) -> None:
        have = self.inv.macips.pop(t.MACIP_TAG + port_id, None)
        if have is not None:
            self._vpp.macip_del(have[0])
