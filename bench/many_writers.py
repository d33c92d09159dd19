"""Measure many writers at once: N processes x M runs into one project, store and index.

Each process runs a trivial experiment (``true``) M times through ``keel.ops.run`` and, every
``--sync-every`` runs, lists runs (which ingests every process's pending refs into the index).
The figures are total wall time and runs per second, per index backend: SQLite (the default
file in the store) and, when ``KEEL_TEST_POSTGRES_URL`` is set, PostgreSQL (a fresh schema,
dropped afterwards). After each backend the script checks that nothing was lost: every run
sealed in ``runs/`` and in the index, nothing pending, no errors in any process.

Usage::

    python bench/many_writers.py [--processes 16] [--runs 500] [--sync-every 25]
                                 [--start fork|spawn|mixed] [--backend sqlite|postgres|all]

Exits 1 when a run was lost or a process saw an error (the first errors are printed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keel.ops.listing import list_runs
from keel.ops.run import RunRequest, run_experiment
from keel.ops.sync import sync_index
from keel.ops.workspace import INDEX_URL_ENV, Workspace

KEEL_YAML = """\
project: many
experiments:
  noop:
    command: "true"
profiles:
  dev: {}
"""
PG_ENV = "KEEL_TEST_POSTGRES_URL"


def _writer(
    project: str,
    environ: Mapping[str, str],
    runs: int,
    sync_every: int,
    results: multiprocessing.Queue[tuple[int, list[str]]],
) -> None:
    errors: list[str] = []
    done = 0
    try:
        ws = Workspace.open(Path(project), environ=environ)
        for i in range(1, runs + 1):
            run_experiment(ws, RunRequest(experiment="noop"))
            done += 1
            if i % sync_every == 0:
                list_runs(ws, limit=5)
        ws.close()
    except Exception:
        errors.append(traceback.format_exc())
    results.put((done, errors))


@contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped on exit."""
    import sqlalchemy as sa

    schema = f"keel_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _measure(backend: str, index_url: str | None, args: argparse.Namespace) -> bool:
    """Run one backend; print its figures; True when nothing was lost."""
    folder = Path(tempfile.mkdtemp(prefix="keel-many-writers-"))
    try:
        project = folder / "many"
        project.mkdir()
        (project / "keel.yaml").write_text(KEEL_YAML)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        if index_url is not None:
            environ[INDEX_URL_ENV] = index_url
        parent = Workspace.open(project, environ=environ)
        sync_index(parent)
        parent.index().latest()  # the index exists and is open before any writer starts
        methods = ["fork", "spawn"] if args.start == "mixed" else [args.start]
        results: multiprocessing.Queue[tuple[int, list[str]]] = multiprocessing.get_context(
            "spawn"
        ).Queue()
        started = time.perf_counter()
        procs = []
        for n in range(args.processes):
            ctx: Any = multiprocessing.get_context(methods[n % len(methods)])  # any start method
            proc = ctx.Process(
                target=_writer,
                args=(str(project), environ, args.runs, args.sync_every, results),
            )
            proc.start()
            procs.append(proc)
        reports = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
        sync_index(parent)
        elapsed = time.perf_counter() - started
        return _report(backend, parent, reports, elapsed, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(
    backend: str,
    ws: Workspace,
    reports: list[tuple[int, list[str]]],
    elapsed: float,
    args: argparse.Namespace,
) -> bool:
    expected = args.processes * args.runs
    ran = sum(done for done, _ in reports)
    errors = [e for _, errs in reports for e in errs]
    sealed = sum(1 for _ in ws.objects.list_refs("runs/"))
    pending = sum(1 for _ in ws.objects.list_refs("pending/"))
    indexed = ws.index().ids_with_manifest()
    in_index = sum(1 for digest in indexed.values() if digest is not None)
    ws.close()
    print(
        f"{backend:>8}: {args.processes} x {args.runs} = {expected} runs in {elapsed:.1f} s, "
        f"{ran / elapsed:.1f} runs/s ({args.start}, sync every {args.sync_every})"
    )
    ok = not errors and ran == sealed == in_index == expected and pending == 0
    if not ok:
        print(
            f"{backend:>8}: LOST RUNS OR ERRORS: ran {ran}, sealed {sealed}, indexed {in_index},"
            f" pending {pending}, errors {len(errors)}"
        )
        for error in errors[:3]:
            print(error, file=sys.stderr)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--runs", type=int, default=500, help="runs per process")
    parser.add_argument("--sync-every", type=int, default=25)
    parser.add_argument("--start", choices=["fork", "spawn", "mixed"], default="mixed")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    args = parser.parse_args(argv)
    ok = True
    if args.backend in ("sqlite", "all"):
        ok &= _measure("sqlite", None, args)
    if args.backend in ("postgres", "all"):
        url = os.environ.get(PG_ENV)
        if url:
            with _postgres_schema(url) as scoped:
                ok &= _measure("postgres", scoped, args)
        else:
            print(f"postgres: skipped ({PG_ENV} is not set)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
