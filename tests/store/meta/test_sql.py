"""SqlRunIndex keeps the RunIndex contract on SQLite and PostgreSQL, across processes too."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from keel.store.meta import RunIndex, RunQuery, open_index
from tests.contracts.run_index import RunIndexContract, make_summary


@pytest.fixture
def sqlite_index(sqlite_url: str) -> Iterator[RunIndex]:
    index = open_index(sqlite_url)
    yield index
    index.close()


@pytest.fixture
def pg_index(pg_url: str) -> Iterator[RunIndex]:
    index = open_index(pg_url)
    yield index
    index.close()


class TestSqliteRunIndex(RunIndexContract):
    """The contract on a SQLite file."""

    @pytest.fixture
    def index(self, sqlite_index: RunIndex) -> RunIndex:
        return sqlite_index


@pytest.mark.postgres
class TestPostgresRunIndex(RunIndexContract):
    """The contract on PostgreSQL."""

    @pytest.fixture
    def index(self, pg_index: RunIndex) -> RunIndex:
        return pg_index


def test_a_failed_upsert_changes_nothing(db_url: str) -> None:
    index = open_index(db_url)
    original = make_summary("0aaaaaaaaa01")
    index.upsert([original])
    broken = make_summary("0aaaaaaaaa02", params={"bad": object()})
    with pytest.raises(TypeError):
        index.upsert([make_summary("0aaaaaaaaa01", why="changed"), broken])
    assert index.get("0aaaaaaaaa01") == original
    assert index.get("0aaaaaaaaa02") is None
    index.close()


def test_the_index_survives_reopening(db_url: str) -> None:
    index = open_index(db_url)
    index.upsert([make_summary("0aaaaaaaaa01")])
    index.close()
    again = open_index(db_url)
    assert again.get("0aaaaaaaaa01") == make_summary("0aaaaaaaaa01")
    again.close()


def test_repr_names_the_database_without_its_password(sqlite_url: str) -> None:
    index = open_index(sqlite_url)
    assert repr(index) == f"SqlRunIndex({sqlite_url!r})"
    index.close()


def _write_runs(url: str, worker: int, count: int) -> int:
    index = open_index(url)
    for i in range(count):
        index.upsert([make_summary(f"w{worker}r{i:04d}", params={"worker": worker, "i": i})])
    index.close()
    return count


def test_concurrent_writers_record_every_run(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:  # every worker also races to create the schema
        written = pool.starmap(_write_runs, [(db_url, w, 50) for w in range(4)])
    assert written == [50] * 4
    index = open_index(db_url)
    assert len(index.ids_with_manifest()) == 200
    assert len(index.query(RunQuery(params={"worker": 2}))) == 50
    index.close()


def _use_after_fork(index: RunIndex, queue: multiprocessing.Queue[str]) -> None:
    index.upsert([make_summary("0child00001")])
    got = index.get("0aaaaaaaaa01")
    queue.put(got.id if got is not None else "missing")


def test_an_index_opened_before_a_fork_works_in_the_child_and_the_parent(db_url: str) -> None:
    index = open_index(db_url)
    index.upsert([make_summary("0aaaaaaaaa01")])  # the parent has used its connections
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    child = ctx.Process(target=_use_after_fork, args=(index, queue))
    child.start()
    child.join()
    assert child.exitcode == 0
    assert queue.get(timeout=5) == "0aaaaaaaaa01"
    assert index.get("0child00001") is not None
    index.upsert([make_summary("0aaaaaaaaa02")])
    assert len(index.ids_with_manifest()) == 3
    index.close()
