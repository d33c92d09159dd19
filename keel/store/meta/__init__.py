"""The metadata index: runs by experiment, status, params, tags and metrics.

It is rebuilt from the object store at any time (``keel reindex``), so it is never the source
of truth. Importing this package does not import SQLAlchemy; opening a SQL index does.

Open one with :func:`open_index` (``sqlite:///path/index.db`` or
``postgresql+psycopg://user@host/db``), or use :class:`MemoryRunIndex` in tests.
"""

from __future__ import annotations

from keel.store.meta.base import RunIndex, RunQuery
from keel.store.meta.memory import MemoryRunIndex

__all__ = ["MemoryRunIndex", "RunIndex", "RunQuery", "migrate", "open_index"]


def open_index(url: str) -> RunIndex:
    """Open the SQL index at ``url``; a fresh database gets the current schema.

    Raises:
        keel.errors.SchemaOutdated: the database needs `keel migrate` (or a newer keel).
        keel.errors.IndexUnavailable: the database cannot be reached.
        keel.errors.MissingExtra: the driver for ``url`` is not installed.
        keel.errors.UserError: ``url`` is not a supported database URL.
    """
    from keel.store.meta.sql import SqlRunIndex

    return SqlRunIndex(url)


def migrate(url: str) -> tuple[str | None, str]:
    """Upgrade the index database at ``url`` to this keel's schema; returns (from, to)."""
    from keel.store.meta.schema import migrate as upgrade

    return upgrade(url)
