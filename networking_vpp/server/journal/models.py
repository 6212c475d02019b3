"""Tables owned by the driver (created by the networking-vpp alembic branch).

* ``vpp_journal``: etcd writes waiting for the forwarder, in commit order.
* ``vpp_journal_dead``: rows etcd can never accept, set aside for an operator.
* ``vpp_port_bindings``: what the journal has told etcd about each bound port.
* ``vpp_port_destinations``: hosts a port is prepared on ahead of a live migration.
* ``vpp_remote_group_members``: what the journal has told etcd about each port in each group.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from neutron_lib.db import model_base
from sqlalchemy.dialects import mysql

# SQLite only auto-increments an INTEGER PRIMARY KEY; MySQL needs BIGINT for a
# sequence that must never wrap in a long-lived cloud.
SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# A value may be up to model.MAX_VALUE_BYTES (1 MiB): MySQL's TEXT stops at 64 KiB.
VALUE_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
KEY_LENGTH = 1024


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class VppJournal(model_base.BASEV2):
    """One etcd write: put ``value`` at ``key``, or delete ``key`` if value is NULL."""

    __tablename__ = "vpp_journal"
    # Ids never come back, as in MariaDB: without this SQLite hands out a
    # deleted row's id again, and a row set aside under one id in
    # vpp_journal_dead would be overwritten by the next one given that id.
    __table_args__ = {"sqlite_autoincrement": True}

    id = sa.Column(SEQUENCE, primary_key=True, autoincrement=True)
    key = sa.Column(sa.String(KEY_LENGTH), nullable=False)
    value = sa.Column(VALUE_TEXT, nullable=True)
    created_at = sa.Column(sa.DateTime, nullable=False, default=_utcnow)


class VppJournalDead(model_base.BASEV2):
    """A journal row that etcd refused for good (e.g. too large); kept for operators."""

    __tablename__ = "vpp_journal_dead"

    id = sa.Column(SEQUENCE, primary_key=True, autoincrement=False)  # the journal's id
    key = sa.Column(sa.String(KEY_LENGTH), nullable=False)
    value = sa.Column(VALUE_TEXT, nullable=True)
    created_at = sa.Column(sa.DateTime, nullable=False)
    failed_at = sa.Column(sa.DateTime, nullable=False, default=_utcnow)
    reason = sa.Column(sa.String(1024), nullable=False)


class VppPortBinding(model_base.BASEV2):
    """The etcd binding the journal holds for a port: where, which binding, what value.

    ``binding_id`` is a fresh uuid4 each time the port is bound to a host; the
    agent echoes it in its report, so a report about an earlier binding cannot
    complete provisioning of a later one. ``value`` is the encoded value last
    journaled: an update writes a row only when it changes (status-only updates
    write nothing), and a network MTU change rewrites it without re-reading ports.
    """

    __tablename__ = "vpp_port_bindings"

    port_id = sa.Column(
        sa.String(36), sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    host = sa.Column(sa.String(255), nullable=False)
    binding_id = sa.Column(sa.String(36), nullable=False)
    value = sa.Column(VALUE_TEXT, nullable=False)


class VppPortDestination(model_base.BASEV2):
    """A host the port is programmed on before it moves there (live migration).

    Nova's multiple-bindings flow makes an INACTIVE binding on the destination,
    and the legacy flow puts ``migrating_to`` into the active binding's profile;
    either way the destination host gets the port's key while the guest still
    runs on the source. ``binding_id`` is this destination's own (the state
    watcher tells Nova "plugged" when the host reports it), and ``value`` is
    what was last journaled for it.
    """

    __tablename__ = "vpp_port_destinations"

    port_id = sa.Column(
        sa.String(36), sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    host = sa.Column(sa.String(255), primary_key=True)
    binding_id = sa.Column(sa.String(36), nullable=False)
    value = sa.Column(VALUE_TEXT, nullable=False)


class VppRemoteGroupMember(model_base.BASEV2):
    """The ``/global/remote_groups/<sg>/<port>`` value the journal last wrote.

    Member writers diff against this, not against ML2's ``context.original``:
    an IPv6 auto-address subnet gives ports an address in a transaction of its
    own, and the ``update_port`` Neutron runs next already has it in
    ``original``. Writers lock a port's rows before computing its members, so
    the journal rows of one key are in commit order.
    """

    __tablename__ = "vpp_remote_group_members"

    port_id = sa.Column(
        sa.String(36), sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id = sa.Column(
        sa.String(36), sa.ForeignKey("securitygroups.id", ondelete="CASCADE"), primary_key=True
    )
    value = sa.Column(VALUE_TEXT, nullable=False)
