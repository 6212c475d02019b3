"""The networking-vpp alembic branch on a private MariaDB (skipped without mariadb-server)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from networking_vpp.server.journal import migration
from networking_vpp.testing.devcloud import mariadb
from networking_vpp.testing.devcloud.layout import Layout
from networking_vpp.testing.etcd import free_port

pytestmark = pytest.mark.skipif(not mariadb.available(), reason="mariadb-server not installed")

DB_MANAGE = str(Path(sys.executable).with_name("neutron-db-manage"))
TABLES = ("vpp_journal", "vpp_journal_dead", "vpp_port_bindings", "vpp_port_destinations")


@pytest.fixture(scope="module")
def neutron_conf(tmp_path_factory) -> Iterator[tuple[str, str]]:
    layout = Layout(tmp_path_factory.mktemp("mig"))
    layout.make_dirs()
    mariadb.start(layout, free_port(), die_with_parent=True)
    url = mariadb.connection_url(layout)
    conf = layout.etc / "neutron.conf"
    conf.write_text(f"[DEFAULT]\ncore_plugin = ml2\n[database]\nconnection = {url}\n")
    try:
        yield str(conf), url
    finally:
        mariadb.stop(layout)


def db_manage(conf: str, *args: str) -> str:
    result = subprocess.run(
        [DB_MANAGE, "--config-file", conf, *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_branch_layout_is_valid(neutron_conf):
    out = db_manage(neutron_conf[0], "--subproject", "networking-vpp", "check_migration")
    assert "OK" in out


def test_upgrade_heads_creates_tables_matching_the_models(neutron_conf):
    conf, url = neutron_conf
    db_manage(conf, "upgrade", "heads")  # Neutron first, then every subproject (ours)
    out = db_manage(conf, "--subproject", "networking-vpp", "upgrade", "head")  # idempotent
    current = db_manage(conf, "--subproject", "networking-vpp", "current")
    versions = Path(migration.__file__).parent / "alembic_migrations" / "versions"
    heads = {p.name: p.read_text().strip() for p in versions.glob("*_HEAD")}
    assert set(heads) == {"EXPAND_HEAD", "CONTRACT_HEAD"}
    for head in heads.values():
        assert f"{head} (head)" in current, out + current

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from neutron.db.migration.models import head  # noqa: F401  (Neutron's tables, for FKs)
    from neutron_lib.db import model_base

    from networking_vpp.server.journal import models  # noqa: F401

    def ours(obj, name, type_, reflected, compare_to) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
        return bool(table) and table.startswith("vpp_")

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert set(TABLES) <= set(sa.inspect(conn).get_table_names())
            ctx = MigrationContext.configure(conn, opts={"include_object": ours})
            assert compare_metadata(ctx, model_base.BASEV2.metadata) == []
            ddl = conn.execute(sa.text("SHOW CREATE TABLE vpp_journal")).one()[1]
            assert "mediumtext" in ddl and "AUTO_INCREMENT" in ddl, ddl
    finally:
        engine.dispose()
