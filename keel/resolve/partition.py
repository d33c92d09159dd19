"""Cross-validation folds: split the rows of a table into ``k`` test sets, reproducibly.

The split depends only on the table's rows (and label or group column), ``k``, the strategy and
the sweep's root seed: the same inputs give the same folds on every machine and Python version
(``random.Random`` seeded with an int is stable across versions). Rows are numbered from 0 in
file order, after the header; blank lines are skipped (as pandas does by default).

- ``kfold``: the row numbers are shuffled, then cut into ``k`` contiguous parts whose sizes
  differ by at most one (the first ``rows % k`` parts get the extra row).
- ``stratified``: each class (label value, in sorted order) is shuffled and dealt round-robin,
  continuing where the previous class stopped, so every fold keeps the class proportions (each
  class's count per fold differs by at most one) and the folds' sizes stay balanced. A class
  with fewer than ``k`` rows is allowed: some folds then have none of it.
- ``group``: the groups (sorted, then shuffled) are given one at a time to the fold with the
  fewest rows so far (the lowest-numbered on a tie), so a group never spans two folds.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.base.canonical import canonical_json
from keel.base.digest import hash_bytes, hash_file
from keel.base.seedseq import child_seed
from keel.base.suggest import did_you_mean
from keel.errors import KeelError, MissingExtra, UserError
from keel.model.sweep import FoldSpec, Partition

PARTITION_STREAM = 2**20 + 2
"""Spawn key of the seed that shuffles rows into folds; no replicate uses it (see sweep.py)."""

_PARQUET = (".parquet", ".pq")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Table:
    """The rows to split: how many, and the column a strategy needs (as text), if any."""

    rows: int
    column: list[str] | None


def compute_partition(
    root: Path, folds: FoldSpec, *, seed: int
) -> tuple[Partition, list[list[int]]]:
    """Split the rows of ``folds.data`` (relative to ``root``) into ``folds.k`` test sets.

    Args:
        root: the project folder.
        folds: what to split and how; ``data`` must be set (``parse_sweep`` fills it).
        seed: the sweep's root seed; the shuffle uses its child stream ``PARTITION_STREAM``.

    Returns:
        The partition (``digest`` and ``indices`` are both the digest of the canonical JSON of
        the test lists, as ``blake3:<hex>``) and the sorted test row numbers of each fold.

    Raises:
        keel.errors.UserError: the file is missing or unreadable, a column is missing, or
            there are fewer rows (or groups) than folds.
        keel.errors.MissingExtra: a Parquet file without pyarrow installed.
    """
    if folds.data is None:
        raise UserError("--folds needs --fold-data PATH: the rows to split")
    path = root / folds.data
    column = {"stratified": folds.label, "group": folds.group}.get(folds.strategy)
    table = _read(path, folds.data, column)
    rng = random.Random(child_seed(seed, PARTITION_STREAM))
    if folds.strategy == "kfold":
        tests = _kfold(table.rows, folds.k, rng, what=folds.data)
    elif folds.strategy == "stratified":
        assert table.column is not None
        tests = _stratified(table.column, folds.k, rng, what=folds.data)
    else:
        assert table.column is not None
        tests = _grouped(table.column, folds.k, rng, what=folds.data, column=str(folds.group))
    tests = [sorted(test) for test in tests]
    digest = str(hash_bytes(canonical_json(tests)))
    partition = Partition(
        k=folds.k,
        strategy=folds.strategy,
        rows=table.rows,
        digest=digest,
        indices=digest,
        data=folds.data,
        data_digest=str(hash_file(path)[0]),
    )
    return partition, tests


def fold_indices(test_lists: list[list[int]], fold: int) -> tuple[list[int], list[int]]:
    """``(train, test)`` row numbers of ``fold``, each sorted: test is that fold's list,
    train every other fold's rows.

    Raises:
        keel.errors.KeelError: ``fold`` is not between 0 and ``len(test_lists) - 1``.
    """
    if not 0 <= fold < len(test_lists):
        raise KeelError(f"fold {fold} does not exist: there are {len(test_lists)} folds")
    test = sorted(test_lists[fold])
    train = sorted(row for index, rows in enumerate(test_lists) if index != fold for row in rows)
    return train, test


def _kfold(rows: int, k: int, rng: random.Random, *, what: str) -> list[list[int]]:
    _enough(rows, k, what=what, unit="rows")
    order = list(range(rows))
    rng.shuffle(order)
    size, extra = divmod(rows, k)
    tests: list[list[int]] = []
    start = 0
    for fold in range(k):
        end = start + size + (1 if fold < extra else 0)
        tests.append(order[start:end])
        start = end
    return tests


def _stratified(labels: list[str], k: int, rng: random.Random, *, what: str) -> list[list[int]]:
    _enough(len(labels), k, what=what, unit="rows")
    tests: list[list[int]] = [[] for _ in range(k)]
    position = 0
    for members in _by_value(labels):
        rng.shuffle(members)
        for row in members:
            tests[position % k].append(row)
            position += 1
    return tests


def _grouped(
    groups: list[str], k: int, rng: random.Random, *, what: str, column: str
) -> list[list[int]]:
    by_group = dict(zip(sorted(set(groups)), _by_value(groups), strict=True))
    _enough(len(by_group), k, what=f"column '{column}' of {what}", unit="groups")
    names = sorted(by_group)
    rng.shuffle(names)
    tests: list[list[int]] = [[] for _ in range(k)]
    for name in names:
        smallest = min(range(k), key=lambda fold: len(tests[fold]))
        tests[smallest].extend(by_group[name])
    return tests


def _by_value(values: list[str]) -> list[list[int]]:
    """Row numbers of each distinct value, values in sorted order."""
    rows: dict[str, list[int]] = {}
    for index, value in enumerate(values):
        rows.setdefault(value, []).append(index)
    return [rows[value] for value in sorted(rows)]


def _enough(count: int, k: int, *, what: str, unit: str) -> None:
    if count < k:
        hint = f"; use --folds {count} or fewer" if count >= 2 else ""
        raise UserError(f"cannot split {what} into {k} folds: it has only {count} {unit}{hint}")


def _read(path: Path, name: str, column: str | None) -> _Table:
    if not path.is_file():
        raise UserError(f"fold data '{name}' does not exist in {path.parent}: check --fold-data")
    if path.suffix.lower() in _PARQUET:
        return _read_parquet(path, name, column)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return _read_csv(csv.reader(fh, delimiter=delimiter), name, column)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read fold data '{name}': {exc}") from exc


def _read_csv(reader: Iterator[list[str]], name: str, column: str | None) -> _Table:
    header = next(reader, None)
    if header is None:
        raise UserError(f"fold data '{name}' is empty: it needs a header row, then the rows")
    at = None if column is None else _column_index(header, column, name)
    rows = 0
    values: list[str] = []
    for line, record in enumerate(reader, start=2):
        if not record:
            continue
        if at is not None:
            if at >= len(record):
                raise UserError(f"{name}:{line}: the row has no '{column}' value")
            values.append(record[at])
        rows += 1
    return _Table(rows=rows, column=values if at is not None else None)


def _column_index(header: Sequence[str], column: str, name: str) -> int:
    names = [h.strip() for h in header]
    if column not in names:
        raise UserError(
            f"fold data '{name}' has no column '{column}'; {did_you_mean(column, names)}"
        )
    return names.index(column)


def _read_parquet(path: Path, name: str, column: str | None) -> _Table:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise MissingExtra(
            f"fold data '{name}' is Parquet, which needs pyarrow: pip install 'keel[data]'"
        ) from exc
    try:
        if column is None:
            return _Table(rows=int(pq.read_metadata(path).num_rows), column=None)
        _column_index(list(pq.read_schema(path).names), column, name)
        table: Any = pq.read_table(path, columns=[column])
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UserError(f"cannot read fold data '{name}': {exc}") from exc
    values = ["" if v is None else str(v) for v in table.column(column).to_pylist()]
    return _Table(rows=int(table.num_rows), column=values)
