"""Fixtures shared by every test: a clean environment, and the PostgreSQL server when given."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_KEPT = frozenset({"KEEL_TEST_POSTGRES_URL", "KEEL_REQUIRE_POSTGRES"})
_PROXIES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY"})


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without KEEL_* settings (but the test-server ones) or proxies."""
    for name in list(os.environ):
        upper = name.upper()
        if (upper.startswith("KEEL_") and upper not in _KEPT) or upper in _PROXIES:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of a PostgreSQL database for tests (env KEEL_TEST_POSTGRES_URL).

    Skips when unset, unless KEEL_REQUIRE_POSTGRES=1, which makes a missing server a failure.
    """
    url = os.environ.get("KEEL_TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("KEEL_REQUIRE_POSTGRES") == "1":
            pytest.fail("KEEL_REQUIRE_POSTGRES=1 but KEEL_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need KEEL_TEST_POSTGRES_URL")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index.db'}"


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped after the test)."""
    schema = f"keel_test_{uuid.uuid4().hex[:12]}"
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each database backend in turn."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url
