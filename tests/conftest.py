"""Fixtures shared by every test: a clean environment, and the PostgreSQL server when given."""

from __future__ import annotations

import os

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
