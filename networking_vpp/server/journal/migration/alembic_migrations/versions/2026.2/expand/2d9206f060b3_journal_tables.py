"""Journal, dead-letter and port-binding tables.

Revision ID: 2d9206f060b3
Revises: start_networking_vpp
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "2d9206f060b3"
down_revision = "start_networking_vpp"
branch_labels = ("expand",)

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
VALUE_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "vpp_journal",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("value", VALUE_TEXT, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "vpp_journal_dead",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("value", VALUE_TEXT, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("failed_at", sa.DateTime, nullable=False),
        sa.Column("reason", sa.String(1024), nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "vpp_port_bindings",
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("binding_id", sa.String(36), nullable=False),
        sa.Column("value", VALUE_TEXT, nullable=False),
        mysql_engine="InnoDB",
    )
