"""Alembic environment of the networking-vpp branch, run by neutron-db-manage.

Our revisions live in their own version table so that they never mix with
Neutron's; otherwise this follows Neutron's own environment.
"""

from typing import Any

from alembic import context
from neutron.db.migration.connection import DBConnection
from neutron.db.migration.models import head  # noqa: F401  (Neutron's tables, for FKs)
from neutron_lib.db import model_base

from networking_vpp.server.journal import models  # noqa: F401  (our tables)

VERSION_TABLE = "alembic_version_networking_vpp"

config = context.config
neutron_config = config.neutron_config  # type: ignore[attr-defined]
target_metadata = model_base.BASEV2.metadata


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``neutron-db-manage upgrade --sql``)."""
    kwargs: dict[str, Any] = {"version_table": VERSION_TABLE}
    if neutron_config.database.connection:
        kwargs["url"] = neutron_config.database.connection
    else:
        kwargs["dialect_name"] = neutron_config.database.engine
    context.configure(**kwargs)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the database in [database] connection."""
    connection = config.attributes.get("connection")
    with DBConnection(neutron_config.database.connection, connection) as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, version_table=VERSION_TABLE
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
