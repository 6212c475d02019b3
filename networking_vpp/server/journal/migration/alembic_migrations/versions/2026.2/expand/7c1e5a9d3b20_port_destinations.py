"""Port destinations: where a port is prepared ahead of a live migration.

Revision ID: 7c1e5a9d3b20
Revises: 2d9206f060b3
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "7c1e5a9d3b20"
down_revision = "2d9206f060b3"

VALUE_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "vpp_port_destinations",
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("binding_id", sa.String(36), nullable=False),
        sa.Column("value", VALUE_TEXT, nullable=False),
        mysql_engine="InnoDB",
    )
