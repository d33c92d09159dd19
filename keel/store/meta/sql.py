"""SqlRunIndex: the RunIndex over SQLite or PostgreSQL (SQLAlchemy Core).

Many processes write one index at once (parallel trials, each ``keel ls`` ingesting pending
runs), often the same run at the same time. ``upsert`` is therefore one idempotent
``INSERT .. ON CONFLICT (id) DO UPDATE`` of the run rows, in run-id order, before their child
rows are replaced: on PostgreSQL that row lock makes concurrent upserts of one run take turns
(and the fixed order keeps two batches from deadlocking); on SQLite ``BEGIN IMMEDIATE``
already makes writers take turns. Transient lock failures are retried (see
:func:`keel.store.meta.engine.transaction`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from keel.base.canonical import loads
from keel.model.run import RunStatus, RunSummary
from keel.store.meta.base import RunQuery, encode_param, normalized, param_match
from keel.store.meta.engine import WRITE, display_url, make_engine, transaction
from keel.store.meta.schema import ensure_schema
from keel.store.meta.tables import CHILD_TABLES, run_metrics, run_params, run_tags, runs

T = TypeVar("T")

_BATCH = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit
_SCALARS = tuple(c.name for c in runs.columns)


class SqlRunIndex:
    """A RunIndex in a SQL database; construct it with :func:`keel.store.meta.open_index`.

    Opening checks the schema (and creates it in a fresh database). Connections are made in the
    process that uses them, so an index opened before a fork keeps working in the child.
    """

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        self._writer = self._engine.execution_options(**WRITE)
        self._pid = os.getpid()
        try:
            ensure_schema(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlRunIndex({display_url(self._engine)!r})"

    def upsert(self, summaries: Sequence[RunSummary]) -> None:
        """Insert or replace runs in one transaction (child rows are replaced too).

        Safe to run concurrently from many processes, for the same runs too: the run rows
        are upserted first, in id order, which locks them until this transaction ends.
        """
        fresh = {s.id: normalized(s) for s in summaries}
        if not fresh:
            return
        ordered = [fresh[run_id] for run_id in sorted(fresh)]

        def write(conn: sa.Connection) -> None:
            _upsert_runs(conn, ordered)
            for ids in _batches([s.id for s in ordered]):
                for table in CHILD_TABLES:
                    conn.execute(sa.delete(table).where(table.c.run_id.in_(ids)))
            _insert_children(conn, ordered)

        self._run(write, write=True)

    def get(self, run_id: str) -> RunSummary | None:
        """The run with exactly this id, or None."""
        found = self._select(sa.select(runs).where(runs.c.id == run_id))
        return found[0] if found else None

    def find_prefix(self, prefix: str, limit: int = 20) -> list[RunSummary]:
        """Runs whose id starts with ``prefix`` (case-sensitive), in id order."""
        exact = sa.func.substr(runs.c.id, 1, len(prefix)) == prefix  # LIKE ignores case in SQLite
        stmt = sa.select(runs).where(runs.c.id.startswith(prefix, autoescape=True), exact)
        return self._select(stmt.order_by(runs.c.id).limit(limit))

    def latest(self, experiment: str | None = None) -> RunSummary | None:
        """The most recently created run (of ``experiment``, when given)."""
        found = self.query(RunQuery(experiment=experiment, limit=1))
        return found[0] if found else None

    def query(self, q: RunQuery) -> list[RunSummary]:
        """Runs matching ``q``, ordered as :class:`~keel.store.meta.base.RunQuery` describes."""
        return self._select(_query_statement(q))

    def ids_with_manifest(self, ids: Collection[str] | None = None) -> dict[str, str | None]:
        """Every run id (or those of ``ids`` that are indexed) with its manifest digest."""
        stmt = sa.select(runs.c.id, runs.c.manifest)

        def read(conn: sa.Connection) -> dict[str, str | None]:
            if ids is None:
                return {row.id: row.manifest for row in conn.execute(stmt)}
            found: dict[str, str | None] = {}
            for batch in _batches(sorted(set(ids))):
                rows = conn.execute(stmt.where(runs.c.id.in_(batch)))
                found.update((row.id, row.manifest) for row in rows)
            return found

        return self._run(read, write=False)

    def clear(self) -> None:
        """Remove every run."""

        def remove(conn: sa.Connection) -> None:
            for table in (*CHILD_TABLES, runs):
                conn.execute(sa.delete(table))

        self._run(remove, write=True)

    def close(self) -> None:
        """Close pooled connections."""
        self._engine.dispose()

    def _run(self, work: Callable[[sa.Connection], T], *, write: bool) -> T:
        """``work`` in one transaction (retried when another writer was in the way)."""
        if os.getpid() != self._pid:
            # Forked: drop, without closing, the parent's pooled connections (closing would
            # end the parent's sessions too); this process opens its own from here on.
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return transaction(self._writer if write else self._engine, work)

    def _select(self, stmt: sa.Select[Any]) -> list[RunSummary]:
        def read(conn: sa.Connection) -> tuple[Sequence[sa.RowMapping], _Children]:
            rows = conn.execute(stmt).mappings().all()
            return rows, _children(conn, [row["id"] for row in rows])

        rows, children = self._run(read, write=False)
        return [_summary(row, children) for row in rows]


def _query_statement(q: RunQuery) -> sa.Select[Any]:
    stmt = sa.select(runs).where(*_filters(q))
    newest: list[sa.ColumnElement[Any]] = [runs.c.created_at.desc(), runs.c.id.desc()]
    order: list[sa.ColumnElement[Any]]
    if q.sort_metric is None:
        order = newest if q.descending else [runs.c.created_at.asc(), runs.c.id.asc()]
    else:
        metric = run_metrics.alias("sort_metric")
        stmt = stmt.outerjoin(
            metric, sa.and_(metric.c.run_id == runs.c.id, metric.c.name == q.sort_metric)
        )
        value = metric.c.value
        missing_last = sa.case((value.is_(None), 1), else_=0)
        order = [missing_last, value.desc() if q.descending else value.asc(), *newest]
    stmt = stmt.order_by(*order)
    return stmt if q.limit is None else stmt.limit(q.limit)


def _filters(q: RunQuery) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if q.experiment is not None:
        found.append(runs.c.experiment == q.experiment)
    if q.status is not None:
        found.append(runs.c.status == RunStatus(q.status).value)
    for name, wanted in q.params.items():
        match = param_match(wanted)
        value: sa.ColumnElement[bool] = run_params.c.value_json.in_(match.texts)
        if match.number is not None:
            value = sa.or_(value, run_params.c.value_num == match.number)
        found.append(
            sa.exists().where(run_params.c.run_id == runs.c.id, run_params.c.name == name, value)
        )
    for tag in sorted(set(q.tags)):
        found.append(sa.exists().where(run_tags.c.run_id == runs.c.id, run_tags.c.tag == tag))
    return found


def _upsert_runs(conn: sa.Connection, summaries: Sequence[RunSummary]) -> None:
    """Insert the run rows, or update every column of those that exist (rows in given order)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(runs)
    stmt = insert.on_conflict_do_update(
        index_elements=[runs.c.id],
        set_={name: insert.excluded[name] for name in _SCALARS if name != "id"},
    )
    rows = []
    for s in summaries:
        row = {name: getattr(s, name) for name in _SCALARS}
        row["status"] = RunStatus(s.status).value
        rows.append(row)
    conn.execute(stmt, rows)


def _insert_children(conn: sa.Connection, summaries: Iterable[RunSummary]) -> None:
    param_rows: list[dict[str, Any]] = []
    metric_rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    for s in summaries:
        for name, value in s.params.items():
            text, number = encode_param(value)
            param_rows.append(
                {"run_id": s.id, "name": name, "value_json": text, "value_num": number}
            )
        for name, metric in s.metrics.items():
            stored = None if math.isnan(metric) else metric  # SQLite cannot store NaN
            metric_rows.append({"run_id": s.id, "name": name, "value": stored})
        tag_rows.extend({"run_id": s.id, "tag": tag} for tag in s.tags)
    for table, rows in (
        (run_params, param_rows),
        (run_metrics, metric_rows),
        (run_tags, tag_rows),
    ):
        if rows:
            conn.execute(sa.insert(table), rows)


_Children = tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]], dict[str, list[str]]]


def _children(conn: sa.Connection, ids: list[str]) -> _Children:
    params: dict[str, dict[str, Any]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    tags: dict[str, list[str]] = {i: [] for i in ids}
    for batch in _batches(ids):
        for row in conn.execute(sa.select(run_params).where(run_params.c.run_id.in_(batch))):
            params[row.run_id][row.name] = loads(row.value_json)
        for row in conn.execute(sa.select(run_metrics).where(run_metrics.c.run_id.in_(batch))):
            metrics[row.run_id][row.name] = math.nan if row.value is None else row.value
        for row in conn.execute(sa.select(run_tags).where(run_tags.c.run_id.in_(batch))):
            tags[row.run_id].append(row.tag)
    return params, metrics, tags


def _summary(row: sa.RowMapping, children: _Children) -> RunSummary:
    params, metrics, tags = children
    run_id = row["id"]
    fields = {name: row[name] for name in _SCALARS}
    fields["status"] = RunStatus(row["status"])
    return RunSummary(
        **fields,
        params=params[run_id],
        metrics=metrics[run_id],
        tags=tuple(sorted(tags[run_id])),
    )


def _batches(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]
