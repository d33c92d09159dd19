"""Many writers at once: N processes x M real runs into one project, object store and index.

Every process runs a trivial experiment (``true``) M times through ``keel.ops.run``; every few
runs it also lists runs (which ingests the pending refs of *every* process with
``sync_index``) and writes its latest run and the newest sealed runs it listed straight
through ``RunIndex.upsert`` (so that processes upsert the same rows at once), all at the same
time as the others. At the end every run is in ``runs/`` and in the index, sealed and
succeeded; nothing is pending, active or lost; and no process saw an error or logged a warning
("database is locked" included).

Processes are forked from a parent that has already opened and used the index (so a child
that reused the parent's connections would show here) or spawned fresh.

The default suite runs a small count per backend and start method. The issue's full count
(16 x 500 per backend) is marked ``manywriters``: it runs only when selected, with
``pytest -m manywriters tests/store/test_many_writers.py`` (CI does, after the main suite).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from keel.base.canonical import canonical_json
from keel.base.clock import iso
from keel.base.digest import Digest
from keel.errors import ConcurrentUpdate, IndexUnavailable
from keel.model.manifest import Manifest
from keel.model.run import RunStatus, RunSummary, new_run_id
from keel.ops import sync as sync_module
from keel.ops.listing import list_runs
from keel.ops.run import RunRequest, run_experiment
from keel.ops.sync import summarize, sync_index
from keel.ops.workspace import INDEX_URL_ENV, Workspace
from keel.store.meta import MemoryRunIndex
from keel.store.meta import engine as engine_module
from keel.store.meta.base import RunQuery
from keel.store.meta.engine import is_transient, make_engine, transaction
from tests.contracts.run_index import make_summary

KEEL_YAML = """\
project: many
experiments:
  noop:
    command: "true"
profiles:
  dev: {}
"""
MARKER = "manywriters"
_MAX_ERRORS = 20  # per process: enough to diagnose, short enough to read
_STALL_S = 1800  # no report for this long: a deadlock, reported rather than hung (not a limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """How many processes write how many runs, and how each process is started."""

    processes: int
    runs: int
    methods: tuple[str, ...]  # start methods, given to the processes in turn
    sync_every: int = 5
    syncs_take_turns: bool = True  # False: no sync lock, so every sync races the others


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What one writer process did: its run ids and statuses, and every problem it saw."""

    worker: int
    runs: dict[str, str] = field(default_factory=dict)  # run id -> status
    errors: list[str] = field(default_factory=list)


class _Problems(logging.Handler):
    """Collects keel's warnings and errors: a run that cannot be indexed is a lost run."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(f"logged {record.levelname}: {record.getMessage()}")


def _write(ws: Workspace, load: Load, report: Report) -> None:
    for i in range(1, load.runs + 1):
        try:
            outcome = run_experiment(ws, RunRequest(experiment="noop"))
            report.runs[outcome.run_id] = outcome.manifest.run.status.value
            if i % load.sync_every == 0:
                newest = list_runs(ws, limit=5)  # a read: ingests what every process left pending
                # Direct writes, of rows the other processes write at the same time: this run,
                # and the newest sealed runs, which every process has just listed too.
                again = [s for s in newest if s.manifest is not None]
                ws.index().upsert([summarize(outcome.manifest, str(outcome.digest)), *again])
        except Exception:
            report.errors.append(traceback.format_exc())
            if len(report.errors) >= _MAX_ERRORS:
                return


def _writer(
    worker: int,
    load: Load,
    project: str,
    environ: Mapping[str, str],
    inherited: Workspace | None,
    results: multiprocessing.Queue[Report],
) -> None:
    """One writer process: ``inherited`` is the parent's workspace when forked."""
    report = Report(worker=worker)
    problems = _Problems(report.errors)
    logging.getLogger("keel").addHandler(problems)
    try:
        ws = inherited or Workspace.open(Path(project), environ=environ)
        _write(ws, load, report)
        ws.close()
    except Exception:
        report.errors.append(traceback.format_exc())
    finally:
        logging.getLogger("keel").removeHandler(problems)
        results.put(report)


def _collect(procs: list[BaseProcess], results: multiprocessing.Queue[Report]) -> list[Report]:
    """Every process's report; a process that died without one is reported as an error."""
    reports: dict[int, Report] = {}
    last = time.monotonic()
    while len(reports) < len(procs):
        try:
            got = results.get(timeout=1)
            reports[got.worker] = got
            last = time.monotonic()
        except queue.Empty:
            for worker, proc in enumerate(procs):
                if worker not in reports and proc.exitcode not in (None, 0):
                    died = f"writer {worker} exited with code {proc.exitcode} and no report"
                    reports[worker] = Report(worker=worker, errors=[died])
            stuck = [w for w in range(len(procs)) if w not in reports]
            assert time.monotonic() - last < _STALL_S, f"writers {stuck} stopped reporting"
    return [reports[w] for w in sorted(reports)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project (not a git repository: code capture says so and moves on)."""
    root = tmp_path / "many"
    root.mkdir()
    (root / "keel.yaml").write_text(KEEL_YAML)
    return root


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def index_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that points a workspace at each index backend in turn."""
    if request.param == "sqlite":
        return {}  # the default: index.db in the project's store, SQLite in WAL mode
    url: str = request.getfixturevalue("pg_url")
    return {INDEX_URL_ENV: url}


@pytest.fixture
def environ(index_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.pop("PYTHONHASHSEED", None)
    return {**env, **index_env}


@pytest.fixture
def writers(project: Path, environ: dict[str, str]) -> Iterator[Workspace]:
    """The parent's workspace, with its index opened and used before any child starts."""
    ws = Workspace.open(project, environ=environ)
    sync_index(ws)
    ws.index().latest()
    yield ws
    ws.close()


def _run_writers(ws: Workspace, load: Load, environ: Mapping[str, str]) -> list[Report]:
    procs: list[BaseProcess] = []
    results: multiprocessing.Queue[Report] = multiprocessing.get_context("spawn").Queue()
    try:
        for worker in range(load.processes):
            method = load.methods[worker % len(load.methods)]
            inherited = ws if method == "fork" else None
            ctx: Any = multiprocessing.get_context(method)  # a str method: typed as BaseContext
            args = (worker, load, str(ws.root), dict(environ), inherited, results)
            proc = ctx.Process(target=_writer, args=args, name=f"keel-writer-{worker}")
            proc.start()
            procs.append(proc)
        return _collect(procs, results)
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _check_everything_recorded(ws: Workspace, load: Load, reports: list[Report]) -> None:
    errors = [f"writer {r.worker}: {e}" for r in reports for e in r.errors]
    assert not errors, "\n".join(errors[:_MAX_ERRORS])
    expected = load.processes * load.runs
    ran: dict[str, str] = {}
    for report in reports:
        ran.update(report.runs)
    assert len(ran) == expected, "run ids must be unique across processes"
    assert set(ran.values()) == {RunStatus.SUCCEEDED.value}

    sync_index(ws)  # the final read
    sealed = dict(ws.objects.list_refs("runs/"))
    assert len(sealed) == expected
    assert {name.removeprefix("runs/") for name in sealed} == set(ran)
    assert list(ws.objects.list_refs("pending/")) == []
    assert list(ws.objects.list_refs("active/")) == []

    index = ws.index()
    rows = index.ids_with_manifest()
    assert len(rows) == expected
    assert rows == {name.removeprefix("runs/"): str(digest) for name, digest in sealed.items()}
    succeeded = index.query(RunQuery(status=RunStatus.SUCCEEDED))
    assert len(succeeded) == expected


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(Load(processes=4, runs=25, methods=("fork",)), id="4x25-fork"),
        pytest.param(Load(processes=4, runs=25, methods=("spawn",)), id="4x25-spawn"),
        pytest.param(
            Load(processes=4, runs=25, methods=("fork",), syncs_take_turns=False),
            id="4x25-fork-syncs-racing",
        ),
    ],
)
def test_parallel_writers_lose_no_run(
    writers: Workspace, load: Load, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not load.syncs_take_turns:
        # The lock only saves work; without it (no fcntl, or NFS without locks) syncs must
        # still be correct. Forked writers inherit this patch.
        assert load.methods == ("fork",)
        monkeypatch.setattr(sync_module, "_one_sync_at_a_time", lambda root: nullcontext())
    reports = _run_writers(writers, load, environ)
    _check_everything_recorded(writers, load, reports)


FULL = Load(processes=16, runs=500, methods=("fork", "spawn"), sync_every=25)


@pytest.mark.manywriters
def test_sixteen_writers_of_five_hundred_runs_lose_none(
    writers: Workspace, environ: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if MARKER not in (request.config.option.markexpr or ""):
        pytest.skip(f"the full count runs only when selected: pytest -m {MARKER}")
    reports = _run_writers(writers, FULL, environ)
    _check_everything_recorded(writers, FULL, reports)


# -- the interleavings behind those guarantees, replayed one step at a time --------------------


def _start_record(ws: Workspace, sealed: Manifest, *, run_id: str, pid: int) -> Digest:
    """A start record (status running) for ``run_id`` of process ``pid``, made just now."""
    run = replace(
        sealed.run,
        id=run_id,
        status=RunStatus.RUNNING,
        created_at=iso(datetime.now(UTC)),
        pid=pid,
        started_at=None,
        ended_at=None,
        duration_s=None,
        exit_code=None,
    )
    start = replace(sealed, run=run, metrics={}, outputs=(), logs={})
    return ws.objects.put_bytes(canonical_json(start.to_json()))


def test_a_running_row_that_lands_after_the_seal_was_ingested_is_overwritten(
    writers: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = writers
    outcome = run_experiment(ws, RunRequest(experiment="noop"))
    run_id, sealed = outcome.run_id, outcome.digest
    # Back to "the run is going": its start record pending, nothing sealed or indexed.
    ws.objects.delete_ref(f"runs/{run_id}")
    start = _start_record(ws, outcome.manifest, run_id=run_id, pid=os.getpid())
    ws.objects.set_ref(f"pending/{run_id}", start)
    real = sync_module._pending_summary

    def read_then_race(ws_: Workspace, run_id_: str, digest: Digest) -> RunSummary | None:
        summary = real(ws_, run_id_, digest)  # this sync has read the start record...
        # ...then the run seals, and another process ingests the seal and drops the ref,
        # all before this sync's "running" row is written.
        monkeypatch.setattr(sync_module, "_pending_summary", real)
        assert ws.objects.set_ref(f"runs/{run_id}", sealed, create_only=True)
        ws.objects.set_ref(f"pending/{run_id}", sealed)
        ws.index().upsert([summarize(outcome.manifest, str(sealed))])
        ws.objects.delete_ref(f"pending/{run_id}")
        return summary

    monkeypatch.setattr(sync_module, "_pending_summary", read_then_race)
    sync_index(ws)
    row = ws.index().get(run_id)
    assert row is not None
    assert (row.status, row.manifest) == (RunStatus.SUCCEEDED, str(sealed))
    assert list(ws.objects.list_refs("pending/")) == []


def test_a_pending_ref_of_a_run_indexed_already_is_dropped_without_reading_it(
    writers: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = writers
    outcome = run_experiment(ws, RunRequest(experiment="noop"))
    ws.index().upsert([summarize(outcome.manifest, str(outcome.digest))])  # another process

    def no_reading(ws_: Workspace, digest: Digest) -> Manifest:
        raise AssertionError("the manifest of an indexed run was read again")

    monkeypatch.setattr(sync_module, "load_manifest", no_reading)
    assert sync_index(ws) == 0
    assert list(ws.objects.list_refs("pending/")) == []
    ws.objects.delete_ref(f"pending/{outcome.run_id}")  # deleting it again is fine


def test_a_run_is_sealed_lost_only_once_its_process_is_gone(writers: Workspace) -> None:
    ws = writers
    model = run_experiment(ws, RunRequest(experiment="noop")).manifest
    sync_index(ws)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run_id = new_run_id()
        start = _start_record(ws, model, run_id=run_id, pid=other.pid)
        ws.objects.set_ref(f"active/{run_id}", start)
        ws.objects.set_ref(f"pending/{run_id}", start)
        sync_index(ws)
        row = ws.index().get(run_id)
        assert row is not None and row.status is RunStatus.RUNNING
        assert ws.objects.get_ref(f"runs/{run_id}") is None
    finally:
        other.kill()
        other.wait()
    sync_index(ws)
    row = ws.index().get(run_id)
    assert row is not None and row.status is RunStatus.LOST
    assert row.manifest == str(ws.objects.get_ref(f"runs/{run_id}"))
    assert ws.objects.get_ref(f"active/{run_id}") is None
    assert list(ws.objects.list_refs("pending/")) == []


def test_a_live_process_that_may_not_be_inspected_keeps_its_run_going(
    writers: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    ws = writers
    model = run_experiment(ws, RunRequest(experiment="noop")).manifest
    run_id = new_run_id()
    start = _start_record(ws, model, run_id=run_id, pid=os.getpid())
    ws.objects.set_ref(f"pending/{run_id}", start)

    def denied(pid: int) -> None:
        raise psutil.AccessDenied(pid)

    monkeypatch.setattr(psutil, "Process", denied)
    sync_index(ws)
    row = ws.index().get(run_id)
    assert row is not None and row.status is RunStatus.RUNNING


def test_the_index_lists_the_manifests_of_just_the_runs_asked_for(writers: Workspace) -> None:
    index = writers.index()
    memory = MemoryRunIndex()
    for each in (index, memory):
        each.upsert([make_summary("0aaaaaaaaa01"), make_summary("0aaaaaaaaa02", manifest=None)])
        wanted = ["0aaaaaaaaa02", "0unknown0001", "0aaaaaaaaa01", "0aaaaaaaaa02"]
        assert each.ids_with_manifest(wanted) == {
            "0aaaaaaaaa01": make_summary("0aaaaaaaaa01").manifest,
            "0aaaaaaaaa02": None,
        }
        assert each.ids_with_manifest([]) == {}
        assert set(each.ids_with_manifest()) == {"0aaaaaaaaa01", "0aaaaaaaaa02"}


# -- the retry that keeps "database is locked" from surfacing ---------------------------------


def _locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError(
        "BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")
    )


def test_a_transaction_that_met_another_writer_is_run_again(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    attempts: list[int] = []

    def work(conn: object) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _locked()  # as SQLite reports it when the busy handler was skipped
        return "done"

    assert transaction(engine, work) == "done"
    assert len(attempts) == 3
    engine.dispose()


def test_a_lock_that_outlasts_the_busy_timeout_is_a_concurrent_update(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 0)
    engine = make_engine(sqlite_url)

    def work(conn: object) -> None:
        raise _locked()

    with pytest.raises(ConcurrentUpdate, match="retry when it is done"):
        transaction(engine, work)
    engine.dispose()


def test_other_failures_are_not_run_again(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    attempts: list[int] = []

    def work(conn: object) -> None:
        attempts.append(1)
        raise sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))

    with pytest.raises(IndexUnavailable, match="disk I/O error"):
        transaction(engine, work)
    assert len(attempts) == 1
    engine.dispose()


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("orig", "transient"),
    [
        pytest.param(sqlite3.OperationalError("database is locked"), True, id="sqlite-busy"),
        pytest.param(sqlite3.OperationalError("database table is locked"), True, id="sqlite-lock"),
        pytest.param(sqlite3.OperationalError("no such table: x"), False, id="sqlite-other"),
        pytest.param(_PgError("40P01"), True, id="pg-deadlock"),
        pytest.param(_PgError("40001"), True, id="pg-serialization"),
        pytest.param(_PgError("08006"), False, id="pg-connection"),
    ],
)
def test_only_contention_counts_as_transient(orig: Exception, transient: bool) -> None:
    assert is_transient(sa_exc.OperationalError("SQL", {}, orig)) is transient
