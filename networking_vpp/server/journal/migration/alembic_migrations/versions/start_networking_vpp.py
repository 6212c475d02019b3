"""Start of the networking-vpp alembic branch (no schema change).

Revision ID: start_networking_vpp
Revises: None
"""

revision = "start_networking_vpp"
down_revision = None


def upgrade():
    pass
