"""Does a host's VPP hold exactly what etcd asks of it? (The agents' side of convergence.)

The expectation is computed from the host's etcd values alone (its port bindings,
the security groups and remote-group members under ``/global/``); VPP's side is
read through its API. Compared, per host:

* one interface per bound port, tagged with the port (and the host's id),
  admin state and MTU as bound, in its network's bridge domain, vhost-user socket and role as bound;
* one bridge domain per network with ports here, holding those ports and the
  physnet's uplink (the NIC itself for flat, a VLAN sub-interface for VLAN);
  nothing else of ours (no orphaned sub-interface, bridge domain or interface);
* security: per port with port security, the ACL list (the fixed essentials, then
  one shared ACL per group, by tag) and its MACIP anti-spoofing ACL; without port
  security, no list and no MACIP; every group ACL's rules compiled from the
  group's current value and its remote groups' current members (the agent's pure
  compiler, :mod:`networking_vpp.agent.reconcile.acl_rules`, is the oracle for
  the rules' content; its correctness is the security-group oracle test's job);
  no group ACL for a group no port here is in.
* reports: one per bound port, ``active``, carrying the binding id etcd holds now
  (an admin-down vhost-user port may have none: its link is down until it is up).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from networking_vpp.agent.reconcile import acl_rules
from networking_vpp.agent.reconcile.isolation import subif_tag
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.vpp.socket_server import api_dir_for

DIRECTIONS = (("in", "egress"), ("out", "ingress"))  # VPP direction, Neutron direction


class EtcdView:
    """One consistent read of what etcd asks of every host."""

    def __init__(self, client: EtcdClient, keyspace: keys.KeySpace) -> None:
        kvs, self.revision = client.get_prefix(keyspace.prefix + "/")
        self.bindings: dict[str, dict[str, model.PortBinding]] = {}
        self.reports: dict[str, dict[str, model.PortState]] = {}
        self.groups: dict[str, model.SecurityGroup] = {}
        self.members: dict[str, dict[str, tuple[str, ...]]] = {}
        for kv in kvs:
            self._add(keyspace, kv.key, kv.value)

    def _add(self, keyspace: keys.KeySpace, key: str, value: bytes) -> None:
        try:
            host, port_id = keyspace.parse_port(key)
        except keys.BadKey:
            pass
        else:
            self.bindings.setdefault(host, {})[port_id] = model.decode(
                model.PortBinding, key, value
            )
            return
        try:
            kind, ids = keyspace.parse_global(key)
        except keys.BadKey:
            pass
        else:
            if kind == "secgroups":
                self.groups[ids[0]] = model.decode(model.SecurityGroup, key, value)
            elif kind == "remote_groups":
                member = model.decode(model.RemoteGroupMember, key, value)
                self.members.setdefault(ids[0], {})[ids[1]] = member.ips
            return
        try:
            state_key = keyspace.parse_state(key)
        except keys.BadKey:
            return
        if state_key.kind == "ports":
            state = model.decode(model.PortState, key, value)
            self.reports.setdefault(state_key.host, {})[state.port_id] = state

    def member_ips(self, group: model.SecurityGroup) -> dict[str, list[str]]:
        """Addresses of every remote group the group's rules name."""
        wanted = {r.remote_group_id for r in group.rules if r.remote_group_id}
        return {
            rg: [ip for ips in self.members.get(rg, {}).values() for ip in ips] for rg in wanted
        }


def read_vpp(socket: str) -> dict[str, Any]:
    """Everything of VPP the comparison needs, read through its API socket."""
    adapter = vpp_adapter(socket, api_dir_for(socket), name="fault-check")
    adapter.connect()
    try:
        return {
            "interfaces": adapter.dump_interfaces(),
            "bridge_domains": adapter.dump_bridge_domains(),
            "vhost_user": adapter.dump_vhost_user(),
            "acls": adapter.dump_acls(),
            "interface_acls": adapter.dump_interface_acls(),
            "macips": adapter.dump_macips(),
            "interface_macips": adapter.dump_interface_macips(),
        }
    finally:
        adapter.disconnect()


def host_differences(
    view: EtcdView, host: str, vpp: Mapping[str, Any], uplinks: Mapping[str, str]
) -> list[str]:
    """What differs between ``host``'s VPP and its etcd values (empty: converged).

    ``uplinks`` maps physnet names to the host's uplink NIC names.
    """
    bindings = view.bindings.get(host, {})
    out: list[str] = []
    vpp = _own_tags(vpp, t.Tags.of(host))
    itfs: dict[int, t.Interface] = {i.sw_if_index: i for i in vpp["interfaces"]}
    ours = {i.tag: i for i in itfs.values() if i.tag.startswith(t.TAG_PREFIX)}
    by_name = {i.name: i for i in itfs.values()}
    bd_by_id = {bd.bd_id: bd for bd in vpp["bridge_domains"]}
    bd_of = {m: bd.bd_id for bd in vpp["bridge_domains"] for m in bd.members}
    acl_tags = {a.acl_index: a.tag for a in vpp["acls"]}
    acls = {a.tag: a for a in vpp["acls"]}
    vhost = {v.sw_if_index: v for v in vpp["vhost_user"]}

    def label(sw_if_index: int) -> str:
        itf = itfs.get(sw_if_index)
        return (itf.tag or itf.name) if itf else f"#{sw_if_index}"

    # --- ports -------------------------------------------------------------------
    want_ports = {t.PORT_TAG + p: b for p, b in bindings.items()}
    have_ports = {tag for tag in ours if tag.startswith(t.PORT_TAG)}
    for tag in sorted(set(want_ports) - have_ports):
        out.append(f"{host}: no interface for {tag}")
    for tag in sorted(have_ports - set(want_ports)):
        out.append(f"{host}: interface {tag} not in etcd (orphan)")
    for tag in sorted(set(want_ports) & have_ports):
        b, itf = want_ports[tag], ours[tag]
        problems = _port_problems(b, itf, vhost.get(itf.sw_if_index))
        bd = bd_by_id.get(bd_of.get(itf.sw_if_index, -1))
        if bd is None or bd.tag != t.NETWORK_TAG + b.network_id:
            problems.append(f"in bridge domain {bd.tag if bd else None}, not {b.network_id}")
        problems += _security_problems(b, itf.sw_if_index, vpp, acl_tags)
        out += [f"{host}: {tag}: {p}" for p in problems]

    # --- networks: bridge domains and their uplinks -------------------------------
    nets: dict[str, model.PortBinding] = {}
    for b in bindings.values():
        nets.setdefault(b.network_id, b)
    want_bds = {t.NETWORK_TAG + n for n in nets}
    have_bds = {bd.tag: bd for bd in bd_by_id.values() if bd.tag.startswith(t.TAG_PREFIX)}
    for tag in sorted(want_bds ^ set(have_bds)):
        out.append(f"{host}: bridge domain {tag} {'missing' if tag in want_bds else 'orphaned'}")
    want_subifs = {
        subif_tag(b.segmentation_id)
        for b in nets.values()
        if b.network_type == "vlan" and b.segmentation_id is not None
    }
    have_subifs = {tag for tag in ours if tag.startswith(t.UPLINK_TAG)}
    for tag in sorted(want_subifs ^ have_subifs):
        out.append(f"{host}: uplink {tag} {'missing' if tag in want_subifs else 'orphaned'}")
    for net_id, b in nets.items():
        bd = have_bds.get(t.NETWORK_TAG + net_id)
        if bd is None:
            continue
        nic = uplinks.get(b.physnet, "?")
        vlan = b.segmentation_id
        uplink = subif_tag(vlan) if b.network_type == "vlan" and vlan is not None else nic
        want_members = {t.PORT_TAG + p for p, pb in bindings.items() if pb.network_id == net_id}
        want_members.add(uplink)
        have_members = {label(m) for m in bd.members}
        if want_members != have_members:
            out.append(
                f"{host}: bridge domain of {net_id} holds {sorted(have_members)}, "
                f"wants {sorted(want_members)}"
            )
        if b.network_type == "vlan":
            sub = ours.get(uplink)
            parent = by_name.get(nic)
            if sub is not None and (parent is None or sub.sup_sw_if_index != parent.sw_if_index):
                out.append(f"{host}: {uplink} is not on {nic}")

    # --- shared group ACLs ----------------------------------------------------------
    used = {g for b in bindings.values() for g in b.security_groups}
    want_group_acls = {f"{t.SECGROUP_TAG}{g}:{d}" for g in used for d, _ in DIRECTIONS}
    have_group_acls = {tag for tag in acls if tag.startswith(t.SECGROUP_TAG)}
    for tag in sorted(want_group_acls ^ have_group_acls):
        out.append(f"{host}: ACL {tag} {'missing' if tag in want_group_acls else 'orphaned'}")
    for g in sorted(used):
        group = view.groups.get(g)
        for vpp_direction, neutron_direction in DIRECTIONS:
            acl = acls.get(f"{t.SECGROUP_TAG}{g}:{vpp_direction}")
            if acl is None:
                continue
            want = acl_rules.group_rules(
                group, neutron_direction, view.member_ips(group) if group else {}
            )
            if acl.rules != want:
                out.append(
                    f"{host}: ACL {acl.tag} has {len(acl.rules)} rules not as etcd says "
                    f"({len(want)} wanted)"
                )
    want_macips = {t.MACIP_TAG + p for p, b in bindings.items() if b.port_security_enabled}
    have_macips = {m.tag for m in vpp["macips"] if m.tag.startswith(t.MACIP_TAG)}
    for tag in sorted(want_macips ^ have_macips):
        out.append(f"{host}: MACIP {tag} {'missing' if tag in want_macips else 'orphaned'}")

    # --- reports -----------------------------------------------------------------------
    reports = view.reports.get(host, {})
    for port_id, b in sorted(bindings.items()):
        state = reports.get(port_id)
        # An admin-down port is programmed, and reported down (with that reason).
        due = "active" if b.admin_state_up else "down"
        if state is None:
            out.append(f"{host}: port {port_id} not reported")
        elif state.status != due or state.binding_id != b.binding_id:
            out.append(
                f"{host}: port {port_id} reported {state.status} for binding "
                f"{state.binding_id}, etcd has {b.binding_id} ({state.reason})"
            )
    for port_id in sorted(set(reports) - set(bindings)):
        out.append(f"{host}: stale report for port {port_id}")
    return out


def _own_tags(vpp: Mapping[str, Any], tags: t.Tags) -> dict[str, Any]:
    """VPP's objects with the host's own tags as their bodies (``net-vpp.port:<id>``),
    so the comparison reads as before tags carried a host id. Any other tag of
    ours (another host's, an older agent's left untagged-for-host) stays as it
    is: reported as an orphan, since a converged agent has none."""

    def own(obj: Any) -> Any:
        body = tags.ours(obj.tag)
        return obj if body is None else dataclasses.replace(obj, tag=body)

    out = dict(vpp)
    for key in ("interfaces", "bridge_domains", "acls", "macips"):
        out[key] = [own(obj) for obj in vpp[key]]
    return out


def _port_problems(b: model.PortBinding, itf: t.Interface, vhost: t.VhostUser | None) -> list[str]:
    problems = []
    if itf.admin_up != b.admin_state_up:
        problems.append(f"admin_up {itf.admin_up}, bound {b.admin_state_up}")
    if itf.mtu != b.mtu:
        problems.append(f"mtu {itf.mtu}, bound {b.mtu}")
    if b.vhostuser is not None:
        if vhost is None:
            problems.append("not a vhost-user interface")
        elif vhost.sock_filename != b.vhostuser.socket or vhost.is_server != (
            b.vhostuser.mode == "server"
        ):
            problems.append(f"vhost-user {vhost.sock_filename} (server {vhost.is_server})")
    return problems


def _security_problems(
    b: model.PortBinding, sw_if_index: int, vpp: Mapping[str, Any], acl_tags: dict[int, str]
) -> list[str]:
    lists = vpp["interface_acls"].get(sw_if_index, ((), ()))
    have_in = [acl_tags.get(i, f"#{i}") for i in lists[0]]
    have_out = [acl_tags.get(i, f"#{i}") for i in lists[1]]
    macip_index = vpp["interface_macips"].get(sw_if_index)
    macips = {m.acl_index: m for m in vpp["macips"]}
    if not b.port_security_enabled:
        problems = []
        if have_in or have_out:
            problems.append(f"ACLs {have_in} / {have_out} on a port without port security")
        if macip_index is not None:
            problems.append("MACIP bound on a port without port security")
        return problems
    groups = sorted(set(b.security_groups))
    want_in = [t.ESSENTIALS_TAG + "in"] + [f"{t.SECGROUP_TAG}{g}:in" for g in groups]
    want_out = [t.ESSENTIALS_TAG + "out"] + [f"{t.SECGROUP_TAG}{g}:out" for g in groups]
    problems = []
    if (have_in, have_out) != (want_in, want_out):
        problems.append(f"ACL lists {have_in} / {have_out}, want {want_in} / {want_out}")
    macip = macips.get(macip_index) if macip_index is not None else None
    if macip is None or macip.tag != t.MACIP_TAG + b.port_id:
        problems.append("no MACIP ACL of its own bound")
    elif macip.rules != acl_rules.macip_rules(b):
        problems.append("MACIP rules differ from the port's addresses")
    return problems


__all__ = ["EtcdView", "host_differences", "read_vpp"]
