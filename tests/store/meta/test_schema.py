"""The index schema as a contract: snapshot, migrations == tables, revision checks, upgrades."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from keel.errors import SchemaOutdated
from keel.store.meta import migrate, open_index, schema
from keel.store.meta.tables import metadata
from tests.contracts.run_index import make_summary

SNAPSHOT = Path(__file__).with_name("schema_snapshot.sql")


def sqlite_ddl(url: str) -> str:
    """The DDL SQLite keeps for every table and index, in a stable order."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC, name"
        ).all()
    engine.dispose()
    statements = [re.sub(r"[ \t]+\n", "\n", row.sql.replace("\t", "    ")) for row in rows]
    return "".join(f"{s.strip()};\n" for s in statements)


def _snapshot_text() -> str:
    lines = SNAPSHOT.read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("--"))


def _differences(url: str) -> list[object]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": schema.VERSION_TABLE, "compare_type": True}
        )
        diff: list[object] = compare_metadata(context, metadata)
    engine.dispose()
    return diff


def _stamp(url: str, revision: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        command.stamp(schema.alembic_config(conn), revision, purge=True)
    engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        found = schema.current_revision(conn)
    engine.dispose()
    return found


def test_migrated_schema_matches_the_checked_in_snapshot(sqlite_url: str) -> None:
    open_index(sqlite_url).close()
    actual = sqlite_ddl(sqlite_url)
    expected = _snapshot_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True)))
    assert actual == expected, (
        f"the migrated schema differs from {SNAPSHOT.name}; if the change is intended, add a "
        f"migration and update the snapshot to:\n{actual}\ndiff:\n{diff}"
    )


def test_migrations_produce_the_schema_of_the_table_definitions(db_url: str) -> None:
    open_index(db_url).close()
    assert _differences(db_url) == []


def test_every_revision_upgrades_to_head(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(schema.alembic_config())
    head = schema.head_revision()
    for rev in script.walk_revisions():
        url = f"sqlite:///{tmp_path / f'{rev.revision}.db'}"
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            command.upgrade(schema.alembic_config(conn), rev.revision)
        engine.dispose()
        assert migrate(url) == (rev.revision, head)
        assert _differences(url) == []
        open_index(url).close()


def test_a_fresh_database_is_created_at_head_with_keels_own_version_table(
    db_url: str,
) -> None:
    open_index(db_url).close()
    assert _revision(db_url) == schema.head_revision()
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert names == {*metadata.tables, "keel_alembic_version"}


def test_another_tools_alembic_version_table_is_left_alone(db_url: str) -> None:
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('v3.0.0.d')"))
    index = open_index(db_url)
    index.upsert([make_summary("0aaaaaaaaa01")])
    index.close()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("v3.0.0.d",)
        ]
    engine.dispose()


def test_migrate_sets_up_a_fresh_database_and_is_then_a_no_op(db_url: str) -> None:
    head = schema.head_revision()
    assert migrate(db_url) == (None, head)
    assert migrate(db_url) == (head, head)
    open_index(db_url).close()


@pytest.fixture
def newer_keel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Pretend this keel ships one more revision than the database has; returns its id."""
    migrations = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = schema.head_revision()
    (migrations / "versions" / "9000_next.py").write_text(
        f'"""A later revision."""\nfrom alembic import op\n\nrevision = "9000"\n'
        f'down_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n    op.create_index('ix_keel_runs_host', 'keel_runs', ['host'])\n"
        "\n\ndef downgrade() -> None:\n    op.drop_index('ix_keel_runs_host', 'keel_runs')\n"
    )
    monkeypatch.setattr(schema, "MIGRATIONS", migrations)
    return head


def test_an_older_revision_raises_schema_outdated_naming_both_and_keel_migrate(
    db_url: str, newer_keel: str
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(schema, "MIGRATIONS", Path(schema.__file__).with_name("migrations"))
        open_index(db_url).close()  # created by the keel that is installed
    with pytest.raises(SchemaOutdated) as info:
        open_index(db_url)
    message = str(info.value)
    assert f"revision {newer_keel}, keel expects 9000" in message
    assert "back up the database, then run `keel migrate`" in message
    assert migrate(db_url) == (newer_keel, "9000")
    index = open_index(db_url)
    index.upsert([make_summary("0aaaaaaaaa01")])
    index.close()


def test_an_unknown_newer_revision_says_to_upgrade_keel(db_url: str) -> None:
    open_index(db_url).close()
    _stamp(db_url, schema.head_revision())
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE keel_alembic_version SET version_num = 'f00dcafe'"))
    engine.dispose()
    for attempt in (open_index, migrate):
        with pytest.raises(SchemaOutdated, match="upgrade keel") as info:
            attempt(db_url)
        assert "f00dcafe" in str(info.value)


def test_keel_tables_without_a_revision_are_not_overwritten(db_url: str) -> None:
    open_index(db_url).close()
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE keel_alembic_version"))
    engine.dispose()
    with pytest.raises(SchemaOutdated, match="no schema revision"):
        open_index(db_url)


def test_importing_the_index_package_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, keel.store.meta, keel.store.objects; "
        "print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"
