"""Remote-group members: the member values the journal last wrote.

Revision ID: 45b8d9708f07
Revises: 7c1e5a9d3b20
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "45b8d9708f07"
down_revision = "7c1e5a9d3b20"

VALUE_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade():
    # Starts empty: a port's first precommit after the upgrade rewrites its
    # members (idempotent puts), and the resync repairs anything older.
    op.create_table(
        "vpp_remote_group_members",
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "security_group_id",
            sa.String(36),
            sa.ForeignKey("securitygroups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("value", VALUE_TEXT, nullable=False),
        mysql_engine="InnoDB",
    )
