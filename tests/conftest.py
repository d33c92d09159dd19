"""Fixtures shared by every test: a clean environment, the PostgreSQL server when given, and an
S3-compatible server on loopback (moto) for the remote tests."""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3: needs moto's S3 server on loopback (moto[s3], flask)")


@dataclass(frozen=True, slots=True)
class S3Server:
    """A moto S3 server on 127.0.0.1 and the variables that point boto at it."""

    endpoint: str
    env: dict[str, str]

    def make_bucket(self) -> str:
        """Create a fresh, uniquely named bucket and return its name."""
        import boto3

        name = f"keel-{next(_BUCKETS)}-{uuid.uuid4().hex[:8]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)
        client.close()
        return name


_BUCKETS = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a free port), with dummy credentials in the environment.

    The variables are set only while the fixture is active and restored when the session ends.
    """
    server_module = pytest.importorskip("moto.server", reason="S3 tests need moto[s3] and flask")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield S3Server(endpoint=endpoint, env=env)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
