"""Alembic environment for keel's metadata index.

keel runs migrations programmatically (``keel.store.meta.schema``) and passes an open
connection in ``config.attributes["connection"]``. For developers, the alembic command line
also works: ``alembic -c keel/store/meta/alembic.ini -x url=sqlite:///dev.db revision
--autogenerate -m "..."``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from keel.store.meta.engine import make_engine
from keel.store.meta.schema import VERSION_TABLE
from keel.store.meta.tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs via table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("keel's migrations run against a database; offline mode is not used")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise RuntimeError("pass the database with -x url=... (see this file's docstring)")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


_main()
