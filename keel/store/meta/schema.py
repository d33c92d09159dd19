"""Schema revisions of the index: check on open, create a fresh database, and migrate.

Alembic runs programmatically from ``migrations/`` (no alembic.ini is needed) and records the
revision in ``keel_alembic_version``, so other alembic users of the same database (optuna,
for one, uses ``alembic_version``) are left alone. Schema changes happen inside one write
transaction that holds a lock, so two processes opening a fresh database at once cannot both
create it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from keel.errors import SchemaOutdated
from keel.store.meta.engine import WRITE, display_url, make_engine, transaction, translate_errors
from keel.store.meta.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "keel_alembic_version"
_PG_LOCK_KEY = 0x6B65656C  # "keel": the advisory lock held while the schema changes


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An alembic Config for keel's migrations, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this keel expects."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - keel always ships at least one revision
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in the database; None for a database keel has not set up."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def ensure_schema(engine: sa.Engine) -> None:
    """Create the tables in a fresh database; check that an existing one is at head.

    Raises:
        keel.errors.SchemaOutdated: the database is at an older or an unknown revision.
    """
    head = head_revision()
    current = transaction(engine, current_revision)
    if current is None:
        current = transaction(engine.execution_options(**WRITE), _create_unless_there)
        if current is None:
            return
    _check(current, head, display_url(engine))


def _create_unless_there(conn: sa.Connection) -> str | None:
    """Create the schema unless another process did first; returns the revision found before."""
    _lock(conn)
    current = current_revision(conn)
    if current is None:
        _check_unversioned(conn, display_url(conn.engine))
        command.upgrade(alembic_config(conn), "head")
    return current


def migrate(url: str) -> tuple[str | None, str]:
    """Upgrade the index database at ``url`` to this keel's revision.

    Returns:
        The revision before (None for a fresh database) and after.

    Raises:
        keel.errors.SchemaOutdated: the database is at a revision newer than this keel knows.
    """
    engine = make_engine(url)
    head = head_revision()
    try:
        with translate_errors(engine), engine.execution_options(**WRITE).begin() as conn:
            _lock(conn)
            current = current_revision(conn)
            if current is not None and current not in _known_revisions():
                raise _newer(current, head, display_url(engine))
            if current is None:
                _check_unversioned(conn, display_url(engine))
            if current != head:
                command.upgrade(alembic_config(conn), "head")
    finally:
        engine.dispose()
    return current, head


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {s.revision for s in script.walk_revisions()}


def _check(current: str, head: str, url: str) -> None:
    if current == head:
        return
    if current in _known_revisions():
        raise SchemaOutdated(
            f"metadata schema of {url} is at revision {current}, keel expects {head}: "
            "back up the database, then run `keel migrate`"
        )
    raise _newer(current, head, url)


def _newer(current: str, head: str, url: str) -> SchemaOutdated:
    return SchemaOutdated(
        f"metadata schema of {url} is at revision {current}, which this keel does not know "
        f"(it expects {head}); a newer keel wrote it: upgrade keel (pip install -U keel)"
    )


def _lock(conn: sa.Connection) -> None:
    """Serialise schema changes (SQLite already holds its write lock from BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _check_unversioned(conn: sa.Connection, url: str) -> None:
    """Refuse to create tables over keel tables that carry no revision."""
    existing = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
    if existing:
        raise SchemaOutdated(
            f"index database {url} has keel tables ({', '.join(sorted(existing))}) but no "
            f"schema revision in {VERSION_TABLE}: back it up, drop those tables, then run "
            "`keel reindex`"
        )
