"""Security group data read from Neutron's tables, and the resync's desired state.

Every read the journal and the resync make goes through here, in the shape
:mod:`.values` takes (plain dicts shaped like Neutron's API dicts), so the two
paths build their values from the same data with the same code.

Locking (MySQL/MariaDB; SQLite ignores it): a group's value is read-modify-
write of *all* its rules, so two transactions changing rules of the same group
must not both compute from a snapshot that lacks the other's rule. Writers
first lock the group's ``standardattributes`` row (the row Neutron's revision
plugin bumps for every rule change of the group, so this is the lock Neutron
takes anyway), then read the rules with a locking read, which sees the latest
committed rows rather than the transaction's snapshot. The rows are
journaled after the lock is taken, so their sequence order is the commit
order. Two rule creations in one group can still deadlock (both insert
before either locks); the database picks a victim and Neutron's DB retry
decorator runs that request again from scratch.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from neutron.db import models_v2
from neutron.db.models import allowed_address_pair as aap_models
from neutron.db.models import securitygroup as sg_models
from neutron_lib.db import api as db_api
from neutron_lib.db import standard_attr

from networking_vpp.common import keys
from networking_vpp.server.journal import models
from networking_vpp.server.secgroups import values

LOG = logging.getLogger(__name__)

_Rule = sg_models.SecurityGroupRule
_RULE_COLUMNS = (
    _Rule.id,
    _Rule.security_group_id,
    _Rule.direction,
    _Rule.ethertype,
    _Rule.protocol,
    _Rule.port_range_min,
    _Rule.port_range_max,
    _Rule.remote_ip_prefix,
    _Rule.remote_group_id,
    _Rule.remote_address_group_id,
)


def lock_groups(session: Any, sg_ids: Iterable[str]) -> None:
    """Serialise writers of these groups' values (in one order, against deadlocks)."""
    ids = sorted(set(sg_ids))
    if not ids:
        return
    attr_ids = (
        session.execute(
            sa.select(sg_models.SecurityGroup.standard_attr_id).where(
                sg_models.SecurityGroup.id.in_(ids)
            )
        )
        .scalars()
        .all()
    )
    if attr_ids:
        session.execute(
            sa.select(standard_attr.StandardAttribute.id)
            .where(standard_attr.StandardAttribute.id.in_(attr_ids))
            .order_by(standard_attr.StandardAttribute.id)
            .with_for_update()
        ).all()


def group_rules(
    session: Any,
    sg_ids: Iterable[str] | None = None,
    *,
    exclude_rule_ids: Iterable[str] = (),
    exclude_remote_group: str | None = None,
    locking: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """``{sg_id: [rule dict, ...]}`` for these groups (None: every group).

    Groups without rules map to ``[]``. ``exclude_*`` leave out rules the
    transaction is about to delete (a rule, or those naming a group being deleted).
    """
    groups = sa.select(sg_models.SecurityGroup.id)
    query = sa.select(*_RULE_COLUMNS)
    if sg_ids is not None:
        ids = sorted(set(sg_ids))
        groups = groups.where(sg_models.SecurityGroup.id.in_(ids))
        query = query.where(_Rule.security_group_id.in_(ids))
    excluded = list(exclude_rule_ids)
    if excluded:
        query = query.where(_Rule.id.notin_(excluded))
    if exclude_remote_group is not None:
        query = query.where(
            sa.or_(_Rule.remote_group_id.is_(None), _Rule.remote_group_id != exclude_remote_group)
        )
    if locking:
        query = query.with_for_update(read=True)
    out: dict[str, list[dict[str, Any]]] = {
        sg_id: [] for sg_id in session.execute(groups).scalars()
    }
    for row in session.execute(query):
        rule = dict(row._mapping)
        out.setdefault(rule["security_group_id"], []).append(rule)
    return out


def groups_referring_to(session: Any, sg_id: str) -> list[str]:
    """Other groups with rules naming ``sg_id`` as remote group."""
    return sorted(
        session.execute(
            sa.select(_Rule.security_group_id)
            .where(_Rule.remote_group_id == sg_id, _Rule.security_group_id != sg_id)
            .distinct()
        ).scalars()
    )


def group_ports(session: Any, sg_id: str) -> list[str]:
    """Ids of the ports in ``sg_id``."""
    binding = sg_models.SecurityGroupPortBinding
    return sorted(
        session.execute(
            sa.select(binding.port_id).where(binding.security_group_id == sg_id)
        ).scalars()
    )


def ports_in_groups(
    session: Any, port_ids: Iterable[str] | None = None, *, without_subnet: str | None = None
) -> dict[str, dict[str, Any]]:
    """Ports that are in some group, as ``{port_id: port dict}`` for :mod:`.values`.

    Each dict has ``id``, ``security_groups``, ``fixed_ips`` and
    ``allowed_address_pairs``. ``without_subnet`` leaves out addresses on a
    subnet whose allocations the transaction is deleting.
    """
    binding = sg_models.SecurityGroupPortBinding
    ip = models_v2.IPAllocation
    pair = aap_models.AllowedAddressPair
    wanted = None if port_ids is None else sorted(set(port_ids))

    def only(query: Any, column: Any) -> Any:
        return query if wanted is None else query.where(column.in_(wanted))

    ports: dict[str, dict[str, Any]] = collections.defaultdict(
        lambda: {"security_groups": [], "fixed_ips": [], "allowed_address_pairs": []}
    )
    for port_id, sg_id in session.execute(
        only(sa.select(binding.port_id, binding.security_group_id), binding.port_id)
    ):
        ports[port_id]["security_groups"].append(sg_id)
    members = sorted(ports)
    if not members:
        return {}
    ips = sa.select(ip.port_id, ip.ip_address).where(ip.port_id.in_(members))
    if without_subnet is not None:
        ips = ips.where(ip.subnet_id != without_subnet)
    for port_id, address in session.execute(ips):
        ports[port_id]["fixed_ips"].append({"ip_address": address})
    for port_id, address in session.execute(
        sa.select(pair.port_id, pair.ip_address).where(pair.port_id.in_(members))
    ):
        ports[port_id]["allowed_address_pairs"].append({"ip_address": address})
    return {port_id: dict(ports[port_id], id=port_id) for port_id in members}


def ports_on_subnet_in_groups(session: Any, subnet_id: str) -> list[str]:
    """Ports with an address on ``subnet_id`` that are in some group."""
    binding = sg_models.SecurityGroupPortBinding
    ip = models_v2.IPAllocation
    return sorted(
        session.execute(
            sa.select(ip.port_id)
            .join(binding, binding.port_id == ip.port_id)
            .where(ip.subnet_id == subnet_id)
            .distinct()
        ).scalars()
    )


# Rows of models.VppRemoteGroupMember; typed Any because its classic Columns
# read as Column[...] to mypy, not as the values instances hold.
MemoryRow = Any


def lock_member_memory(session: Any, port_ids: Iterable[str]) -> dict[str, dict[str, MemoryRow]]:
    """``{port_id: {sg_id: row}}``: the member values last journaled, locked for update.

    Rows are locked in key order, ports in id order: every writer of member
    keys takes them in that one order, against deadlocks. A port without rows
    still takes a gap lock, so two first writers of a port serialise too.
    """
    ids = sorted(set(port_ids))
    out: dict[str, dict[str, MemoryRow]] = {port_id: {} for port_id in ids}
    if not ids:
        return out
    member = models.VppRemoteGroupMember
    for row in session.execute(
        sa.select(member)
        .where(member.port_id.in_(ids))
        .order_by(member.port_id, member.security_group_id)
        .with_for_update()
    ).scalars():
        out[row.port_id][row.security_group_id] = row
    return out


def lock_group_member_memory(session: Any, sg_id: str) -> dict[str, MemoryRow]:
    """``{port_id: row}``: the member values last journaled in ``sg_id``, locked for update."""
    member = models.VppRemoteGroupMember
    rows = session.execute(
        sa.select(member)
        .where(member.security_group_id == sg_id)
        .order_by(member.port_id)
        .with_for_update()
    ).scalars()
    return {row.port_id: row for row in rows}


def desired_secgroup_state(context: Any, keyspace: keys.KeySpace | None = None) -> dict[str, str]:
    """Every ``/global/`` key the journal would have written, from the DB alone.

    ``{etcd key: encoded value}`` for every security group (all its rules) and
    every remote-group membership (every port of every group, bound or not).
    ``keyspace`` defaults to the configured etcd prefix. A group or member
    whose value cannot be stored is logged and left out (the journal would
    have refused it); rules VPP cannot express are left out of their group.
    """
    if keyspace is None:
        from oslo_config import cfg

        from networking_vpp.server import config as server_config

        server_config.register_opts(cfg.CONF)
        keyspace = keys.KeySpace(cfg.CONF.etcd.prefix)
    out: dict[str, str] = {}
    with db_api.CONTEXT_READER.using(context):
        session = context.session
        for sg_id, rules in group_rules(session, locking=False).items():
            key = keyspace.secgroup(sg_id)
            group, skipped = values.group_value(sg_id, rules)
            for reason in skipped:
                LOG.warning("security group %s: %s; left out", sg_id, reason)
            _add(out, key, group)
        for port in ports_in_groups(session).values():
            for sg_id, member in values.memberships(port).items():
                _add(out, keyspace.remote_group_member(sg_id, port["id"]), member)
    return out


def _add(out: dict[str, str], key: str, value: Any) -> None:
    try:
        out[key] = values.encode(key, value)
    except values.ValueNotServable as exc:
        LOG.error("resync: %s; key left out", exc)
