"""Initial contract revision (nothing to remove yet).

Revision ID: 4b05cac96e83
Revises: start_networking_vpp
"""

revision = "4b05cac96e83"
down_revision = "start_networking_vpp"
branch_labels = ("contract",)


def upgrade():
    pass
