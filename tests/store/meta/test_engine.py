"""Opening an index: URL handling, SQLite settings, and every driver error mapped to keel's."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from keel.errors import ConcurrentUpdate, IndexUnavailable, MissingExtra, UserError
from keel.store.meta import engine as engine_module
from keel.store.meta import open_index
from keel.store.meta.engine import make_engine, mask_url, translate_errors
from tests.contracts.run_index import make_summary

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        pytest.param(
            f"postgresql+psycopg://keel:{SECRET}@db.example:5432/runs",
            "postgresql+psycopg://keel:***@db.example:5432/runs",
            id="userinfo",
        ),
        pytest.param(
            f"postgresql://keel:{SECRET}@db.example/runs?sslmode=require&password={SECRET}",
            "postgresql://keel:***@db.example/runs?sslmode=require&password=***",
            id="query-password",
        ),
        pytest.param(
            "postgresql://keel@db.example:5432/runs",
            "postgresql://keel@db.example:5432/runs",
            id="no-password",
        ),
        pytest.param("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db", id="sqlite-path"),
    ],
)
def test_mask_url_hides_passwords_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_an_unreachable_server_is_index_unavailable_naming_the_url_without_its_password() -> None:
    url = f"postgresql+psycopg://keel:{SECRET}@127.0.0.1:1/runs?connect_timeout=2"
    with pytest.raises(IndexUnavailable) as info:
        open_index(url)
    message = str(info.value)
    assert "postgresql+psycopg://keel:***@127.0.0.1:1/runs" in message
    assert SECRET not in message
    assert isinstance(info.value.__cause__, exc.OperationalError)


def test_a_plain_postgresql_url_uses_the_psycopg_driver() -> None:
    engine = make_engine("postgresql://keel@127.0.0.1:1/runs")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.mark.postgres
def test_a_missing_database_on_a_live_server_is_index_unavailable(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(database="keel_no_such_db")
    with pytest.raises(IndexUnavailable, match="keel_no_such_db"):
        open_index(url.render_as_string(hide_password=False))


def test_without_the_postgres_extra_the_error_names_the_pip_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'keel\[postgres\]'") as info:
        open_index(f"postgresql+psycopg://keel:{SECRET}@127.0.0.1/runs")
    assert isinstance(info.value, ImportError)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("not a url", id="garbage"),
        pytest.param("mysql://keel@host/db", id="unsupported"),
        pytest.param(f"oracle://keel:{SECRET}@host/db", id="unsupported-with-password"),
    ],
)
def test_an_unsupported_url_is_a_user_error_listing_what_works(url: str) -> None:
    with pytest.raises(UserError, match="sqlite:///") as info:
        open_index(url)
    assert SECRET not in str(info.value)


def test_the_folder_of_a_sqlite_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "index.db"
    open_index(f"sqlite:///{path}").close()
    assert path.is_file()


def test_a_sqlite_folder_that_cannot_be_created_is_index_unavailable(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(IndexUnavailable, match="blocker"):
        open_index(f"sqlite:///{tmp_path / 'blocker' / 'index.db'}")


def test_a_sqlite_path_that_is_a_folder_is_index_unavailable(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailable, match="unable to open database file"):
        open_index(f"sqlite:///{tmp_path}")


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    open_index(sqlite_url).close()
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    engine.dispose()


def test_sqlite_writes_begin_immediate_and_reads_begin_deferred(sqlite_url: str) -> None:
    index = open_index(sqlite_url)
    statements: list[str] = []
    sa.event.listen(
        index._engine,  # type: ignore[attr-defined]
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    index.upsert([make_summary("0aaaaaaaaa01")])
    index.get("0aaaaaaaaa01")
    index.close()
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]


def test_a_lock_held_past_the_busy_timeout_is_a_concurrent_update_and_reads_go_on(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = open_index(sqlite_url)
    index.upsert([make_summary("0aaaaaaaaa01")])
    index.close()
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 0)
    index = open_index(sqlite_url)
    holder = sqlite3.connect(tmp_path / "index.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        with pytest.raises(ConcurrentUpdate, match="retry"):
            index.upsert([make_summary("0aaaaaaaaa02")])
        assert index.get("0aaaaaaaaa01") is not None  # WAL: readers are not blocked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        index.close()


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        pytest.param(
            exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
            ConcurrentUpdate,
            "retry",
            id="locked",
        ),
        pytest.param(
            exc.OperationalError("SELECT 1", {}, Exception(f"auth failed for {SECRET}")),
            IndexUnavailable,
            "auth failed for ***",
            id="operational",
        ),
        pytest.param(
            exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
            IndexUnavailable,
            "connection already closed",
            id="interface",
        ),
    ],
)
def test_every_expected_driver_error_is_mapped(
    error: exc.DBAPIError, expected: type[Exception], text: str
) -> None:
    engine = make_engine(f"postgresql+psycopg://keel:{SECRET}@127.0.0.1/runs")
    with pytest.raises(expected) as info, translate_errors(engine):
        raise error
    assert text in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is error
    engine.dispose()


def test_a_damaged_sqlite_file_says_to_reindex(tmp_path: Path) -> None:
    (tmp_path / "index.db").write_bytes(b"this is not a database file" * 100)
    with pytest.raises(IndexUnavailable, match="keel reindex") as info:
        open_index(f"sqlite:///{tmp_path / 'index.db'}")
    assert "not a database" in str(info.value)


def test_a_keel_bug_in_sql_is_not_disguised_as_an_unavailable_index() -> None:
    engine = make_engine("sqlite://")
    error = exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    with pytest.raises(exc.IntegrityError), translate_errors(engine):
        raise error
    engine.dispose()
