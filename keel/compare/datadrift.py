"""Data drift: how far a table's values moved between two profiles, and the version diff.

Pure, over stored profiles (:mod:`keel.compare.schema`); numpy is imported only by the functions
that compute, so importing this module costs nothing.

Statistics and thresholds (docs/contracts.md explains them for users):

- **PSI** (population stability index), ``Σ (q - p) · ln(q / p)`` over bins, with shares below
  ``PSI_FLOOR`` raised to it so that an empty bin does not make it infinite. A numeric column
  is binned by the earlier version's histogram (outer bins open); a categorical one by the
  values known on both sides plus one bucket for the rest. Below 0.1 a column is *stable*, 0.1
  to 0.2 *moderate*, 0.2 or more *drifted*.
- **KS** (Kolmogorov–Smirnov statistic), the largest gap between the two cumulative
  distributions of a numeric column. Exact when both sides list every distinct value, else
  read off the percentiles (within about 0.01). 0.1 or more is *drifted*. It is used as a
  distance, not a test: on a million rows any shift is "significant", so keel thresholds the
  statistic, never a p-value.
- **Null share**: a change of 0.1 or more in the share of nulls is *drifted*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue
from keel.compare.schema import (
    ColumnProfile,
    DataProfile,
    SchemaDiff,
    TableProfile,
    Value,
    compare_schemas,
    round_stat,
)
from keel.errors import MissingExtra

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PSI_MODERATE = 0.1
"""PSI from which a column's drift is *moderate*."""

PSI_DRIFTED = 0.2
"""PSI from which a column is *drifted*."""

KS_DRIFTED = 0.1
"""Kolmogorov–Smirnov statistic from which a numeric column is *drifted*."""

NULL_SHARE_DRIFTED = 0.1
"""Change in the share of nulls from which a column is *drifted*."""

PSI_FLOOR = 1e-4
"""Smallest share a PSI bin counts with."""

SHIFTS_SHOWN = 5
"""How many of the largest category share changes a column's drift keeps."""


def require_numpy() -> None:
    """Raise MissingExtra, naming the extra to install, when numpy is not importable."""
    try:
        import numpy  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            "data statistics need numpy, which is not installed: pip install 'keel[data]'"
        ) from exc


# -- drift statistics ----------------------------------------------------------------------


class DriftStatus(StrEnum):
    """How far a column moved."""

    STABLE = "stable"
    MODERATE = "moderate"
    DRIFTED = "drifted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Shift:
    """A value whose share of a column's non-null values changed."""

    value: Value
    old: float
    new: float

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {"value": self.value, "old": round_stat(self.old), "new": round_stat(self.new)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDrift:
    """The drift statistics of one column present, with one dtype, in both versions."""

    column: str
    old: ColumnProfile
    new: ColumnProfile
    psi: float | None = None
    ks: float | None = None
    ks_exact: bool = False
    shifts: tuple[Shift, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """Which thresholds the column crossed (empty when it did not drift)."""
        found = []
        if self.psi is not None and self.psi >= PSI_DRIFTED:
            found.append(f"PSI {self.psi:.3f} ≥ {PSI_DRIFTED}")
        if self.ks is not None and self.ks >= KS_DRIFTED:
            found.append(f"KS {self.ks:.3f} ≥ {KS_DRIFTED}")
        old, new = self.old.null_share, self.new.null_share
        if abs(new - old) >= NULL_SHARE_DRIFTED:
            found.append(f"null share {old:.1%} → {new:.1%}")
        return tuple(found)

    @property
    def status(self) -> DriftStatus:
        """Drifted when any threshold is crossed; moderate for a PSI from 0.1 to 0.2."""
        if self.reasons:
            return DriftStatus.DRIFTED
        if self.psi is not None and self.psi >= PSI_MODERATE:
            return DriftStatus.MODERATE
        return DriftStatus.STABLE

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "column": self.column,
            "dtype": self.new.dtype,
            "status": self.status.value,
            "psi": round_stat(self.psi),
            "ks": round_stat(self.ks),
            "ks_exact": self.ks_exact,
            "null_share": {
                "old": round_stat(self.old.null_share),
                "new": round_stat(self.new.null_share),
            },
            "reasons": list(self.reasons),
            "old": self.old.summary(),
            "new": self.new.summary(),
            "shifts": [s.to_json() for s in self.shifts],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TableDrift:
    """How one table changed: its schema, its row count and each column's drift."""

    path: str
    old_path: str
    old_rows: int
    new_rows: int
    schema: SchemaDiff = field(default_factory=SchemaDiff)
    columns: tuple[ColumnDrift, ...] = ()
    unchanged: bool = False

    @property
    def drifted(self) -> tuple[ColumnDrift, ...]:
        """The columns whose status is drifted."""
        return tuple(c for c in self.columns if c.status is DriftStatus.DRIFTED)

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "path": self.path,
            "old_path": self.old_path,
            "unchanged": self.unchanged,
            "rows": {
                "old": self.old_rows,
                "new": self.new_rows,
                "change": self.new_rows - self.old_rows,
            },
            "schema": self.schema.to_json(),
            "columns": [c.to_json() for c in self.columns],
            "drifted": [c.column for c in self.drifted],
        }


def thresholds() -> dict[str, JsonValue]:
    """The thresholds, as reported with every comparison."""
    return {
        "psi_moderate": PSI_MODERATE,
        "psi_drifted": PSI_DRIFTED,
        "ks_drifted": KS_DRIFTED,
        "null_share_drifted": NULL_SHARE_DRIFTED,
    }


def compare_tables(
    old: TableProfile, new: TableProfile, *, not_nullable: frozenset[str] = frozenset()
) -> TableDrift:
    """Schema changes, row counts and drift statistics from ``old`` to ``new``.

    Columns present in both with one dtype get statistics; the others are schema changes.

    Raises:
        keel.errors.MissingExtra: numpy is not installed.
    """
    require_numpy()
    schema = compare_schemas(
        old.schema,
        new.schema,
        not_nullable=not_nullable,
        same_content=lambda a, b: old.columns[a].same_content(new.columns[b]),
    )
    columns = tuple(
        compare_columns(name, old.columns[name], column)
        for name, column in new.columns.items()
        if name in old.columns and old.columns[name].dtype == column.dtype
    )
    return TableDrift(
        path=new.path,
        old_path=old.path,
        old_rows=old.rows,
        new_rows=new.rows,
        schema=schema,
        columns=columns,
        unchanged=old.digest == new.digest,
    )


def compare_columns(name: str, old: ColumnProfile, new: ColumnProfile) -> ColumnDrift:
    """PSI and KS (numeric) or PSI and the largest share changes (categorical) of one column."""
    require_numpy()
    if not old.count or not new.count:
        return ColumnDrift(column=name, old=old, new=new)
    if not new.numeric:
        value, shifts = _psi_categories(old, new)
        return ColumnDrift(column=name, old=old, new=new, psi=value, shifts=shifts)
    if old.complete and new.complete:
        value, shifts = _psi_categories(old, new)
        ks = _ks(old, new, [float(v) for v, _ in (*old.top, *new.top)])
        return ColumnDrift(
            column=name, old=old, new=new, psi=value, ks=ks, ks_exact=True, shifts=shifts
        )
    ks = _ks(old, new, [*old.quantiles, *new.quantiles])
    return ColumnDrift(column=name, old=old, new=new, psi=_psi_histogram(old, new), ks=ks)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two share vectors over the same bins (each sums to 1)."""
    import numpy as np

    p = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    q = np.maximum(np.asarray(actual, dtype=float), PSI_FLOOR)
    return max(0.0, float(np.sum((q - p) * np.log(q / p))))


def _psi_histogram(old: ColumnProfile, new: ColumnProfile) -> float:
    """PSI over ``old``'s bins: ``new``'s shares are its own counts when it was binned by the
    same edges (versions added one after another are), else read off its distribution."""
    import numpy as np

    hist = old.histogram
    if hist is None:
        return 0.0
    p = np.asarray(hist.counts, dtype=float) / max(sum(hist.counts), 1)
    if new.histogram is not None and new.histogram.edges == hist.edges:
        q = np.asarray(new.histogram.counts, dtype=float) / max(sum(new.histogram.counts), 1)
    else:
        inner = np.asarray(hist.edges[1:-1], dtype=float)
        q = np.diff(np.concatenate(([0.0], _cdf(new, inner, strict=True), [1.0])))
    return psi(p.tolist(), q.tolist())


def _ks(old: ColumnProfile, new: ColumnProfile, points: list[float]) -> float:
    """The largest gap between the two distributions, on both sides of every point (the
    percentiles, or the values, of either side: where the gap can be largest)."""
    import numpy as np

    x = np.unique(np.asarray(points, dtype=float))
    gaps = [
        np.abs(_cdf(old, x, strict=strict) - _cdf(new, x, strict=strict)).max()
        for strict in (False, True)
    ]
    return float(max(gaps))


def _cdf(profile: ColumnProfile, x: NDArray[np.float64], *, strict: bool) -> NDArray[np.float64]:
    """P(X < x) when ``strict``, else P(X ≤ x): exact from a complete ``top``, else
    interpolated between the percentiles."""
    import numpy as np

    if profile.complete:
        values = np.asarray([float(v) for v, _ in profile.top])
        counts = np.asarray([c for _, c in profile.top], dtype=float)
        order = np.argsort(values)
        cumulative = np.concatenate(([0.0], np.cumsum(counts[order]) / counts.sum()))
        index = np.searchsorted(values[order], x, side="left" if strict else "right")
        exact: NDArray[np.float64] = cumulative[index]
        return exact
    q = np.asarray(profile.quantiles, dtype=float)
    probs = np.linspace(0.0, 1.0, len(q))
    # A value repeated in the percentiles is an atom: P(X < v) is the first probability that
    # names it and P(X ≤ v) the last. np.interp needs each x once, so keep that one.
    first = np.unique(q, return_index=True)[1]
    last = len(q) - 1 - np.unique(q[::-1], return_index=True)[1]
    keep = np.sort(first if strict else last)
    interpolated: NDArray[np.float64] = np.interp(x, q[keep], probs[keep], left=0.0, right=1.0)
    return interpolated


def _psi_categories(old: ColumnProfile, new: ColumnProfile) -> tuple[float, tuple[Shift, ...]]:
    """PSI over the values whose count is known on both sides, plus one bucket for the rest,
    and the largest changes in share among those values.

    A side knows a value's count when it lists the value, or lists every value (the count is
    then 0). The rest bucket holds everything else, so the buckets cover both sides exactly.
    """
    a, b = old.frequencies(), new.frequencies()
    known = [
        v for v in dict.fromkeys([*a, *b]) if (v in a or old.complete) and (v in b or new.complete)
    ]
    p = [a.get(v, 0) / old.count for v in known]
    q = [b.get(v, 0) / new.count for v in known]
    rest_p, rest_q = 1.0 - sum(p), 1.0 - sum(q)
    if rest_p > 1e-9 or rest_q > 1e-9:
        p.append(max(rest_p, 0.0))
        q.append(max(rest_q, 0.0))
    shifts = [Shift(value=v, old=x, new=y) for v, x, y in zip(known, p, q, strict=False) if x != y]
    shifts.sort(key=lambda s: (-abs(s.new - s.old), str(s.value)))
    return psi(p, q), tuple(shifts[:SHIFTS_SHOWN])


# -- two versions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    """A file of a version: its path in the version, digest and size."""

    path: str
    digest: str
    size: int | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {"path": self.path, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesDiff:
    """Files added, removed and changed (same path, other content) between two versions."""

    added: tuple[FileEntry, ...] = ()
    removed: tuple[FileEntry, ...] = ()
    changed: tuple[tuple[FileEntry, FileEntry], ...] = ()
    unchanged: int = 0

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "added": [f.to_json() for f in self.added],
            "removed": [f.to_json() for f in self.removed],
            "changed": [
                {"path": new.path, "old": old.to_json(), "new": new.to_json()}
                for old, new in self.changed
            ],
            "unchanged": self.unchanged,
        }


def compare_files(old: Sequence[FileEntry], new: Sequence[FileEntry]) -> FilesDiff:
    """Match files by path: added, removed, changed and the number unchanged."""
    before = {f.path: f for f in old}
    after = {f.path: f for f in new}
    both = [p for p in sorted(after) if p in before]
    changed = tuple((before[p], after[p]) for p in both if before[p].digest != after[p].digest)
    return FilesDiff(
        added=tuple(after[p] for p in sorted(after) if p not in before),
        removed=tuple(before[p] for p in sorted(before) if p not in after),
        changed=changed,
        unchanged=len(both) - len(changed),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DataDiff:
    """What changed between two versions of a dataset: files, schema, rows and drift.

    ``schema`` compares the versions' columns over all their tables; ``tables`` pairs tables
    by path (or the single table of each side, whatever its name) and compares each pair.
    """

    name: str
    old: str
    new: str
    files: FilesDiff
    schema: SchemaDiff = field(default_factory=SchemaDiff)
    tables: tuple[TableDrift, ...] = ()
    added_tables: tuple[str, ...] = ()
    removed_tables: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def drifted(self) -> tuple[tuple[str, str], ...]:
        """(table, column) of every drifted column."""
        return tuple((t.path, c.column) for t in self.tables for c in t.drifted)

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form of `keel data diff`."""
        return {
            "dataset": self.name,
            "old": self.old,
            "new": self.new,
            "files": self.files.to_json(),
            "schema": self.schema.to_json(),
            "tables": [t.to_json() for t in self.tables],
            "added_tables": list(self.added_tables),
            "removed_tables": list(self.removed_tables),
            "drifted": [{"table": t, "column": c} for t, c in self.drifted],
            "thresholds": thresholds(),
            "notes": list(self.notes),
        }


def compare_schema(
    old: DataProfile, new: DataProfile, *, not_nullable: frozenset[str] = frozenset()
) -> SchemaDiff:
    """Schema changes between two versions, over the columns of all their tables."""
    before = {n: c for t in old.tables for n, c in t.columns.items()}
    after = {n: c for t in new.tables for n, c in t.columns.items()}
    return compare_schemas(
        old.schema,
        new.schema,
        not_nullable=not_nullable,
        same_content=lambda a, b: before[a].same_content(after[b]),
    )


def compare_profiles(
    old: DataProfile, new: DataProfile, *, not_nullable: frozenset[str] = frozenset()
) -> tuple[tuple[TableDrift, ...], tuple[str, ...], tuple[str, ...]]:
    """Compare tables paired by path (or the only table of each side): the drift of each
    pair, and the paths of the tables only the new or only the old version has."""
    before = {t.path: t for t in old.tables}
    after = {t.path: t for t in new.tables}
    pairs = [(before[p], after[p]) for p in after if p in before]
    only_new = [p for p in after if p not in before]
    only_old = [p for p in before if p not in after]
    if len(only_new) == 1 and len(only_old) == 1 and not pairs:
        pairs.append((before[only_old.pop()], after[only_new.pop()]))
    drift = tuple(compare_tables(a, b, not_nullable=not_nullable) for a, b in pairs)
    return drift, tuple(only_new), tuple(only_old)
