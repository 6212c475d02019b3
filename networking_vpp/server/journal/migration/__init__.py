"""Alembic branch of networking-vpp (``neutron-db-manage --subproject networking-vpp``).

The ``neutron.db.alembic_migrations`` entry point names ``alembic_migrations``,
the directory next to this file, as the alembic script location.
"""
