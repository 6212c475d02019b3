"""Security groups into the journal, in the transaction of Neutron's own change.

Neutron's security group code (``SecurityGroupDbMixin``, which ML2 inherits)
publishes these events; what we do with each, and why that event:

* ``SECURITY_GROUP_RULE`` ``BEFORE_CREATE``: refuse a rule VPP cannot express.
  Published per rule after Neutron's own validation (legacy ICMP names and
  the full port range already canonicalised) and, unlike the precommit, not
  re-wrapped by Neutron into a 409, so the API answers **400** with our
  message. For a bulk create it fires inside the transaction: one bad rule
  and none is created.
* ``SECURITY_GROUP`` ``PRECOMMIT_CREATE``: put the new group's value; its
  rules (from Neutron's templates; for a project's ``default`` group, created
  lazily on its first network or port, the ingress-from-itself rules) exist by
  then.
* ``SECURITY_GROUP`` ``PRECOMMIT_UPDATE``: only ``stateful`` matters; names and
  descriptions are not in the value.
* A stateless group is refused (409) with our plain message when the
  ``stateful`` column of a group's row is set to false (a SQLAlchemy attribute
  event, at create and update): Neutron publishes its security group events
  through ``_registry_publish``, which rewrites any callback's error into "Error
  cannot perform precommit_create due to Callback ... failed with ..."; the
  precommits check again, in case the row was written some other way.
* ``SECURITY_GROUP`` ``PRECOMMIT_DELETE``: delete the group's key and its
  members' keys, and rewrite the groups whose rules named it as remote group
  (the database deletes those rules with it: ``ON DELETE CASCADE``).
* ``SECURITY_GROUP_RULE`` ``PRECOMMIT_CREATE`` / ``PRECOMMIT_DELETE``: rewrite
  the group's whole value (one key per group: agents replace the group's ACL
  in one call).
* ``SUBNET`` ``PRECOMMIT_DELETE_ASSOCIATIONS``: deleting a subnet drops its
  addresses from ports without a port update (an IPv6 auto-address subnet's,
  from every port of the network); rewrite those ports' members.
* ``AFTER_*`` of all of these: wake the forwarder once the rows are committed.

Ports' memberships come from the mechanism driver's port precommits
(:meth:`SecGroupJournal.port_changed`, :meth:`port_deleted`), in ML2's
transaction: every port of a group is a member, bound or not. Every writer of
member keys diffs against ``vpp_remote_group_members`` (what it last wrote) and
locks a port's rows there before computing: before the port's binding row
(the port precommits run this journal first), and ports in id order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from neutron.db.models import securitygroup as sg_models
from neutron_lib import exceptions as n_exc
from neutron_lib.callbacks import events, registry, resources
from sqlalchemy import event as sa_event

from networking_vpp.common import keys, model
from networking_vpp.server.journal import api as journal
from networking_vpp.server.journal import models
from networking_vpp.server.secgroups import db, values

LOG = logging.getLogger(__name__)


class StatelessGroupNotSupported(n_exc.Conflict):
    """VPP's ACLs here are stateful (permit+reflect); stateless groups would permit more."""

    message = (
        "networking-vpp does not support stateless security groups (stateful=false): its "
        "VPP ACLs always let replies back in, which a stateless group would not"
    )


def _refuse_stateless(target: Any, value: Any, oldvalue: Any, initiator: Any) -> Any:
    """``stateful`` set to false on a group's row (create or update): refuse, unwrapped.

    Raised outside Neutron's callback manager, the API answers our exception as
    it is (409 and the plain message).
    """
    if value is False and oldvalue is not False:
        raise StatelessGroupNotSupported()
    return value


class SecGroupJournal:
    """Journals security groups, rules and remote-group memberships."""

    def __init__(
        self,
        keyspace: keys.KeySpace,
        wrote: Callable[[], None] = lambda: None,
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        """``wrote``: a precommit appended rows; ``committed``: a change was committed."""
        self._keys = keyspace
        self._wrote = wrote
        self._committed = committed

    def _callbacks(self) -> list[tuple[Callable[..., None], str, str]]:
        sg, rule, subnet = resources.SECURITY_GROUP, resources.SECURITY_GROUP_RULE, resources.SUBNET
        out = [
            (self._check_new_rule, rule, events.BEFORE_CREATE),
            (self._rule_created, rule, events.PRECOMMIT_CREATE),
            (self._rule_deleted, rule, events.PRECOMMIT_DELETE),
            (self._group_created, sg, events.PRECOMMIT_CREATE),
            (self._group_updated, sg, events.PRECOMMIT_UPDATE),
            (self._group_deleted, sg, events.PRECOMMIT_DELETE),
            (self._subnet_deleting, subnet, events.PRECOMMIT_DELETE_ASSOCIATIONS),
            (self._after_commit, subnet, events.AFTER_DELETE),
        ]
        for resource in (sg, rule):
            for event in (events.AFTER_CREATE, events.AFTER_UPDATE, events.AFTER_DELETE):
                out.append((self._after_commit, resource, event))
        return out

    def subscribe(self) -> None:
        """Register the Neutron callbacks, and the stateless groups' refusal."""
        for callback, resource, event in self._callbacks():
            registry.subscribe(callback, resource, event)
        if not sa_event.contains(sg_models.SecurityGroup.stateful, "set", _refuse_stateless):
            sa_event.listen(sg_models.SecurityGroup.stateful, "set", _refuse_stateless)

    def unsubscribe(self) -> None:
        """Withdraw them (a re-initialised driver replaces its journal)."""
        for callback, _resource, _event in self._callbacks():
            registry.unsubscribe_all(callback)
        if sa_event.contains(sg_models.SecurityGroup.stateful, "set", _refuse_stateless):
            sa_event.remove(sg_models.SecurityGroup.stateful, "set", _refuse_stateless)

    # --- rules --------------------------------------------------------------------
    def _check_new_rule(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        values.rule_value(payload.latest_state)  # raises RuleNotSupported: 400

    def _rule_created(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        rule = payload.latest_state
        self._put_groups(payload.context.session, [rule["security_group_id"]])

    def _rule_deleted(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        # Published before the rule's row is deleted: leave it out of the value.
        sg_id = payload.metadata["security_group_id"]
        self._put_groups(payload.context.session, [sg_id], exclude_rule_ids=[payload.resource_id])

    # --- groups -------------------------------------------------------------------
    def _group_created(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        group = payload.latest_state
        if group.get("stateful") is False:
            raise StatelessGroupNotSupported()
        self._put_groups(payload.context.session, [group["id"]], locking=False)

    def _group_updated(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        if (payload.desired_state or {}).get("stateful") is False:
            raise StatelessGroupNotSupported()

    def _group_deleted(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        session = payload.context.session
        sg_id = payload.resource_id
        # The group's row first, as every writer of its key locks it: a rule
        # created in the group meanwhile then commits before this delete or after
        # it, never with a higher journal id yet an earlier commit.
        db.lock_groups(session, [sg_id])
        referring = db.groups_referring_to(session, sg_id)
        if referring:
            self._put_groups(session, referring, exclude_remote_group=sg_id)
        # Neutron refused the delete if ports were in the group, but it checked
        # in an earlier transaction: a port that joined since leaves with it.
        memory = db.lock_group_member_memory(session, sg_id)
        for port_id in sorted(set(db.group_ports(session, sg_id)) | set(memory)):
            journal.record(session, self._keys.remote_group_member(sg_id, port_id), None)
        for row in memory.values():
            session.delete(row)
        journal.record(session, self._keys.secgroup(sg_id), None)
        self._wrote()
        LOG.info("journal: security group %s deleted", sg_id)

    def _put_groups(
        self,
        session: Any,
        sg_ids: list[str],
        *,
        exclude_rule_ids: list[str] | None = None,
        exclude_remote_group: str | None = None,
        locking: bool = True,
    ) -> None:
        if locking:
            db.lock_groups(session, sg_ids)
        rules = db.group_rules(
            session,
            sg_ids,
            exclude_rule_ids=exclude_rule_ids or (),
            exclude_remote_group=exclude_remote_group,
            locking=locking,
        )
        for sg_id in sorted(rules):
            group, skipped = values.group_value(sg_id, rules[sg_id])
            for reason in skipped:
                # Rules that never passed our API check: Neutron's default-rule
                # templates, or rules from before networking-vpp was installed.
                LOG.error(
                    "security group %s: %s; left out, the group permits less than Neutron shows",
                    sg_id,
                    reason,
                )
            key = self._keys.secgroup(sg_id)
            journal.record(session, key, values.encode(key, group))
            LOG.debug("journal: security group %s, %d rules", sg_id, len(group.rules))
        self._wrote()

    # --- ports (called by the mechanism driver's precommits) -------------------------
    def port_changed(
        self, session: Any, current: Mapping[str, Any], original: Mapping[str, Any] | None
    ) -> bool:
        """create/update_port_precommit: journal membership changes; True if rows written.

        The diff is against what the journal last wrote (``vpp_remote_group_members``),
        not against ``original``: after an IPv6 auto-address subnet is created,
        Neutron's ``update_port`` shows the new address in ``original`` already.
        ``original`` only adds groups to leave whose keys the journal may have
        written before it kept that memory.
        """
        before = set(original.get("security_groups") or ()) if original else set()
        return self._write_members(session, current["id"], values.memberships(current), before)

    def port_deleted(self, session: Any, port: Mapping[str, Any]) -> bool:
        """delete_port_precommit: the port leaves all its groups."""
        return self._write_members(session, port["id"], {}, set(port.get("security_groups") or ()))

    def _write_members(
        self,
        session: Any,
        port_id: str,
        after: dict[str, model.RemoteGroupMember],
        also_leaving: Collection[str] = (),
    ) -> bool:
        """Journal the port's member keys that differ from what was last journaled.

        Locks the port's memory rows first: a concurrent writer of the same keys
        waits for our commit and then diffs against our rows, so the journal
        rows of each key are in commit order.
        """
        memory = db.lock_member_memory(session, [port_id]).get(port_id, {})
        wrote = False
        for sg_id in sorted((set(memory) | set(also_leaving)) - set(after)):
            journal.record(session, self._keys.remote_group_member(sg_id, port_id), None)
            if sg_id in memory:
                session.delete(memory[sg_id])
            wrote = True
        for sg_id, member in sorted(after.items()):
            key = self._keys.remote_group_member(sg_id, port_id)
            value = values.encode(key, member)
            row = memory.get(sg_id)
            if row is None:
                session.add(
                    models.VppRemoteGroupMember(
                        port_id=port_id, security_group_id=sg_id, value=value
                    )
                )
            elif row.value == value:
                continue
            else:
                row.value = value
            journal.record(session, key, value)
            wrote = True
        if wrote:
            LOG.debug("journal: port %s in groups %s", port_id, sorted(after))
            self._wrote()
        return wrote

    def _subnet_deleting(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        # Published before Neutron deletes the subnet's allocations (an IPv6
        # auto-address subnet's are deleted from every port): leave them out.
        session = payload.context.session
        subnet_id = payload.resource_id
        port_ids = db.ports_on_subnet_in_groups(session, subnet_id)
        if not port_ids:
            return
        # Lock before reading the ports, so the values reflect every commit before ours.
        db.lock_member_memory(session, port_ids)
        ports = db.ports_in_groups(session, port_ids, without_subnet=subnet_id)
        for port_id in port_ids:
            self._write_members(session, port_id, values.memberships(ports[port_id]))

    def addresses_changed(self, session: Any, port_ids: list[str]) -> bool:
        """Before commit: the ports' addresses changed with no port precommit (commit hook).

        Locks the ports' member rows, then reads the ports as committed with this
        transaction's changes, so the values are in commit order per key.
        """
        db.lock_member_memory(session, port_ids)
        ports = db.ports_in_groups(session, port_ids)
        wrote = False
        for port_id in port_ids:
            port = ports.get(port_id)
            after = values.memberships(port) if port is not None else {}
            wrote = self._write_members(session, port_id, after) or wrote
        return wrote

    # --- after commit ------------------------------------------------------------------
    def _after_commit(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        self._committed()
