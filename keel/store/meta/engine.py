"""Database engines for the index: URL checks, SQLite settings, and error translation.

SQLite is set up for several keel processes writing at once: WAL (readers never block the
writer), a 30 s busy timeout, and ``BEGIN IMMEDIATE`` for write transactions, because a
deferred transaction that later upgrades to a write fails with SQLITE_BUSY at once, whatever
the busy handler. SQLite files use no connection pool, so nothing opened before a fork is ever
reused after it; PostgreSQL pools are dropped (not closed) in a forked child.

:func:`transaction` runs a unit of work and retries it, with jittered backoff, when it failed
only because of another writer: SQLite's ``database is locked`` when it comes back before the
busy timeout has run out (some SQLite paths, such as WAL recovery, skip the busy handler), and
PostgreSQL's deadlock and serialization failures. The work must be safe to run again; every
index write is (upserts are idempotent).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool, StaticPool

from keel.errors import ConcurrentUpdate, IndexUnavailable, MissingExtra, UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_S = 30
RETRY_FIRST_S = 0.02  # first backoff after a transient failure; doubles up to RETRY_MAX_S
RETRY_MAX_S = 1.0
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes; extended ones add high bits)
_PG_RETRYABLE = ("40001", "40P01")  # serialization_failure, deadlock_detected
CONNECT_TIMEOUT_S = 10
WRITE = {"keel_begin": "IMMEDIATE"}  # execution options of write transactions
_USERINFO = re.compile(r"(://[^/?#@:]*:)([^/?#]*)(@)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)
_SUPPORTED = "use sqlite:///path/to/index.db or postgresql+psycopg://user@host/database"


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (fit for messages and logs)."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO.sub(r"\1***\3", url))


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL); nothing is connected yet.

    Raises:
        keel.errors.UserError: the URL is malformed or names an unsupported database.
        keel.errors.MissingExtra: the PostgreSQL driver is not installed.
        keel.errors.IndexUnavailable: the folder of a SQLite file cannot be created.
    """
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as error:
        raise UserError(f"not a database URL: {mask_url(url)!r}; {_SUPPORTED}") from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return _postgres_engine(parsed)
    raise UserError(f"unsupported index database {mask_url(url)!r}; {_SUPPORTED}")


def _postgres_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as error:
        raise MissingExtra(
            f"PostgreSQL support is not installed (no driver for {url.drivername}): "
            "pip install 'keel[postgres]'"
        ) from error


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if in_memory:
        engine = sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise IndexUnavailable(
                f"cannot create {folder} for the index database: "
                f"{error.strerror or error}; check the path and its permissions"
            ) from error
        engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # keel emits BEGIN itself (see _sqlite_begin); the driver must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; a power cut may lose the
        # last transactions, which `keel reindex` restores from the object store.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    mode = connection.get_execution_options().get("keel_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def transaction(engine: Engine, work: Callable[[sa.Connection], T]) -> T:
    """Run ``work`` in one transaction of ``engine`` and return its result.

    A failure caused only by another writer (see :func:`is_transient`) rolls back and runs
    ``work`` again after a jittered, doubling pause, for as long as the busy timeout allows;
    then, or for any other failure, the error is translated as :func:`translate_errors` says.
    ``work`` may run more than once, so it must not have effects outside the transaction.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = RETRY_FIRST_S
    with translate_errors(engine):
        while True:
            try:
                with engine.begin() as conn:
                    return work(conn)
            except exc.OperationalError as error:
                if not is_transient(error) or time.monotonic() + pause > deadline:
                    raise
                log.debug("index busy (%s); retrying in %.3f s", _reason(error, None), pause)
            # Jitter spreads out writers that failed together, so they do not collide again.
            time.sleep(pause * random.uniform(0.5, 1.5))  # not for security: spread only
            pause = min(pause * 2, RETRY_MAX_S)


def is_transient(error: exc.DBAPIError) -> bool:
    """True when ``error`` only means another writer was in the way: running again may work."""
    orig = error.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _SQLITE_BUSY
    if getattr(orig, "sqlstate", None) in _PG_RETRYABLE:
        return True
    text = str(orig if orig is not None else error)
    return "database is locked" in text or "database table is locked" in text


def display_url(engine: Engine) -> str:
    """The engine's URL with its password masked."""
    return mask_url(engine.url.render_as_string(hide_password=True))


@contextlib.contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Map driver errors to keel errors that name the database (never its password)."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        url = display_url(engine)
        reason = _reason(error, engine.url.password)
        if is_transient(error):
            raise ConcurrentUpdate(
                f"the index database {url} stayed locked by another process for "
                f"{BUSY_TIMEOUT_S} s; retry when it is done"
            ) from error
        raise IndexUnavailable(
            f"cannot use the index database {url}: {reason}; check that it is reachable and "
            "that the URL, user and password are right (KEEL_INDEX_URL or `store.index` in "
            "keel.yaml)"
        ) from error
    except exc.DatabaseError as error:
        if type(error) is not exc.DatabaseError:  # integrity, programming, data: keel bugs
            raise
        raise IndexUnavailable(
            f"the index database {display_url(engine)} is damaged: "
            f"{_reason(error, engine.url.password)}; move it aside and run `keel reindex` "
            "to rebuild it from the object store"
        ) from error


def _reason(error: exc.DBAPIError, password: str | None) -> str:
    """The driver's first line of explanation, with any password masked."""
    text = str(error.orig if error.orig is not None else error).strip()
    first = mask_url(text.splitlines()[0] if text else type(error).__name__)
    return first.replace(password, "***") if password else first
