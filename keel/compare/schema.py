"""A table's shape: its profile (columns, dtypes, statistics) and how its schema evolves.

Pure. A **profile** summarises a table once, when a dataset version is added, so that two
versions can be compared without reading either again: per column the count, nulls, min/max,
mean/std, 101 percentiles and a decile histogram (numeric), or the most frequent values
(categorical), plus the row count and the schema (column → logical dtype).
:mod:`keel.ops.dataprofile` computes profiles; :mod:`keel.compare.datadrift` compares them.

Schema evolution compares two schemas. Adding a column is compatible unless the contract refuses
nulls in it (rows of earlier versions have no value for it); dropping or renaming a column, or
changing its dtype, is breaking: a reader of the earlier version no longer finds what it read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from keel.base.canonical import JsonValue
from keel.errors import UserError

PROFILE_FORMAT = 1
"""Version of the stored profile; changes whenever a field changes meaning."""

QUANTILES = 101
"""Percentiles stored per numeric column: probabilities 0, 0.01, ..., 1."""

TOP_VALUES = 100
"""Most frequent values stored per categorical column."""

EXACT_VALUES = 20
"""A numeric column with at most this many distinct values also stores every value's count."""

NUMERIC = frozenset({"int", "float", "datetime"})
"""Logical dtypes profiled as numbers (datetimes as seconds since 1970-01-01 UTC)."""


Value = str | float
"""A value counted in a profile: text for categorical columns, a number for numeric ones."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Histogram:
    """Counts between fixed edges; values below the first or above the last edge count in the
    outer bins, so a later version binned by these edges loses nothing."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnProfile:
    """One column's summary. ``count`` is its non-null (finite) values; ``top`` its most
    frequent values with their counts, most frequent first."""

    dtype: str
    count: int
    nulls: int = 0
    infinite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: tuple[float, ...] = ()
    histogram: Histogram | None = None
    distinct: int | None = None
    top: tuple[tuple[Value, int], ...] = ()

    @property
    def numeric(self) -> bool:
        """True for int, float and datetime columns."""
        return self.dtype in NUMERIC

    @property
    def complete(self) -> bool:
        """True when ``top`` lists every distinct value."""
        return self.distinct is not None and len(self.top) == self.distinct

    @property
    def null_share(self) -> float:
        """Nulls as a share of all rows (0 for an empty column)."""
        rows = self.count + self.nulls + self.infinite
        return self.nulls / rows if rows else 0.0

    def frequencies(self) -> dict[Value, int]:
        """``top`` as a mapping."""
        return dict(self.top)

    def same_content(self, other: ColumnProfile) -> bool:
        """True when both summaries describe the same values (histogram bins aside, which an
        earlier version may have fixed)."""
        return replace(self, histogram=None) == replace(other, histogram=None)

    def summary(self) -> dict[str, JsonValue]:
        """The figures a diff shows: count, nulls, distinct, min, max, mean, std."""
        out: dict[str, JsonValue] = {"count": self.count, "nulls": self.nulls}
        if self.distinct is not None:
            out["distinct"] = self.distinct
        if self.numeric:
            for key in ("min", "max", "mean", "std"):
                out[key] = round_stat(getattr(self, key))
        return out

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form (keys that hold nothing are left out)."""
        out: dict[str, JsonValue] = {"dtype": self.dtype, "count": self.count, "nulls": self.nulls}
        if self.infinite:
            out["infinite"] = self.infinite
        for key in ("min", "max", "mean", "std", "distinct"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.quantiles:
            out["quantiles"] = list(self.quantiles)
        if self.histogram is not None:
            out["histogram"] = {
                "edges": list(self.histogram.edges),
                "counts": list(self.histogram.counts),
            }
        if self.top:
            out["top"] = [[v, c] for v, c in self.top]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> ColumnProfile:
        """Read back :meth:`to_json` (raises KeyError, TypeError or ValueError when damaged)."""
        hist = data.get("histogram")
        histogram = None
        if isinstance(hist, dict):
            histogram = Histogram(
                edges=_floats(hist["edges"]), counts=tuple(_int(c) for c in _list(hist["counts"]))
            )
        top = tuple((_value(pair[0]), _int(pair[1])) for pair in _pairs(data.get("top", [])))
        return cls(
            dtype=str(data["dtype"]),
            count=_int(data["count"]),
            nulls=_int(data.get("nulls", 0)),
            infinite=_int(data.get("infinite", 0)),
            min=_float(data.get("min")),
            max=_float(data.get("max")),
            mean=_float(data.get("mean")),
            std=_float(data.get("std")),
            quantiles=_floats(data.get("quantiles", [])),
            histogram=histogram,
            distinct=None if data.get("distinct") is None else _int(data["distinct"]),
            top=top,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TableProfile:
    """One table (a CSV or Parquet file): where it is in the version, its digest and columns."""

    path: str
    format: str
    digest: str
    rows: int
    columns: dict[str, ColumnProfile]

    @property
    def schema(self) -> dict[str, str]:
        """Column name → logical dtype, in file order."""
        return {name: column.dtype for name, column in self.columns.items()}

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form: ``schema`` maps names to dtypes; ``columns`` keeps the file's order
        (canonical JSON sorts the keys of a mapping)."""
        return {
            "path": self.path,
            "format": self.format,
            "digest": self.digest,
            "rows": self.rows,
            "schema": dict(self.schema),
            "columns": [{"name": name, **c.to_json()} for name, c in self.columns.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> TableProfile:
        """Read back :meth:`to_json` (raises KeyError, TypeError or ValueError when damaged)."""
        columns = [_dict(c) for c in _list(data["columns"])]
        return cls(
            path=str(data["path"]),
            format=str(data["format"]),
            digest=str(data["digest"]),
            rows=_int(data["rows"]),
            columns={str(c["name"]): ColumnProfile.from_json(c) for c in columns},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DataProfile:
    """The profile of a dataset version: one entry per table, sorted by path."""

    tables: tuple[TableProfile, ...]

    @property
    def schema(self) -> dict[str, str]:
        """The columns of every table together (see :func:`keel.compare.schema.merge_schemas`)."""
        return merge_schemas(t.schema for t in self.tables)

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form, with ``profile_format``."""
        return {
            "profile_format": PROFILE_FORMAT,
            "tables": [t.to_json() for t in self.tables],
        }

    @classmethod
    def from_json(cls, data: JsonValue, *, where: str) -> DataProfile:
        """Read back :meth:`to_json`.

        Raises:
            keel.errors.UserError: a newer format, or data that is not a profile.
        """
        found = data.get("profile_format") if isinstance(data, dict) else None
        if found != PROFILE_FORMAT:
            raise UserError(
                f"{where} is not a data profile in format {PROFILE_FORMAT} (found {found!r}): "
                "it was written by another keel version; upgrade keel"
            )
        assert isinstance(data, dict)
        try:
            tables = tuple(TableProfile.from_json(_dict(t)) for t in _list(data["tables"]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise UserError(
                f"{where} is a damaged data profile ({exc}); run `keel verify`"
            ) from exc
        return cls(tables=tables)


def _list(value: JsonValue) -> list[JsonValue]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _dict(value: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return value


def _pairs(value: JsonValue) -> list[list[JsonValue]]:
    pairs = [_list(p) for p in _list(value)]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("top entries must be [value, count] pairs")
    return pairs


def _int(value: JsonValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _float(value: JsonValue) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _floats(value: JsonValue) -> tuple[float, ...]:
    numbers = tuple(_float(v) for v in _list(value))
    if any(n is None for n in numbers):
        raise TypeError("expected numbers, got null")
    return tuple(n for n in numbers if n is not None)


def _value(value: JsonValue) -> Value:
    if isinstance(value, str):
        return value
    number = _float(value)
    assert number is not None
    return number


def round_stat(value: float | None) -> float | None:
    """A statistic rounded to 6 significant digits for display and JSON."""
    if value is None or not math.isfinite(value):
        return value
    return float(f"{value:.6g}")


# -- schema evolution --------------------------------------------------------------------


class SchemaChangeKind(StrEnum):
    """How one column changed."""

    ADDED = "added"
    DROPPED = "dropped"
    RENAMED = "renamed"
    RETYPED = "retyped"


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaChange:
    """One column's change; ``column`` is its earlier name (its new name when added)."""

    kind: SchemaChangeKind
    column: str
    old: str | None
    new: str | None
    breaking: bool
    renamed_to: str | None = None

    @property
    def message(self) -> str:
        """The change in one phrase."""
        if self.kind is SchemaChangeKind.ADDED:
            if self.breaking:
                return (
                    f"column '{self.column}' added ({self.new}, not nullable): "
                    "earlier rows have no value for it"
                )
            return f"column '{self.column}' added ({self.new})"
        if self.kind is SchemaChangeKind.DROPPED:
            return f"column '{self.column}' dropped (was {self.old})"
        if self.kind is SchemaChangeKind.RENAMED:
            return f"column '{self.column}' renamed to '{self.renamed_to}' ({self.new})"
        return f"column '{self.column}' dtype changed: {self.old} → {self.new}"

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "column": self.column,
            "change": self.kind.value,
            "old": self.old,
            "new": self.new,
            "renamed_to": self.renamed_to,
            "breaking": self.breaking,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaDiff:
    """Every column change between two schemas; falsy when the schemas are the same."""

    changes: tuple[SchemaChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def breaking(self) -> tuple[SchemaChange, ...]:
        """The changes that break a reader of the earlier version."""
        return tuple(c for c in self.changes if c.breaking)

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "breaking": bool(self.breaking),
            "changes": [c.to_json() for c in self.changes],
        }


def compare_schemas(
    old: Mapping[str, str],
    new: Mapping[str, str],
    *,
    not_nullable: Collection[str] = (),
    same_content: Callable[[str, str], bool] | None = None,
) -> SchemaDiff:
    """The changes from ``old`` to ``new`` (column → dtype), earlier column order first.

    Args:
        old: the earlier schema.
        new: the later schema.
        not_nullable: columns the contract refuses nulls in; adding one of them is breaking.
        same_content: ``(old column, new column) -> bool``; a dropped column and an added one of
            the same dtype for which it is true are reported as one rename.
    """
    dropped = [c for c in old if c not in new]
    added = [c for c in new if c not in old]
    renames = _renames(dropped, added, old, new, same_content)
    changes: list[SchemaChange] = []
    for column, dtype in old.items():
        if column in renames:
            target = renames[column]
            changes.append(
                SchemaChange(
                    kind=SchemaChangeKind.RENAMED,
                    column=column,
                    old=dtype,
                    new=new[target],
                    renamed_to=target,
                    breaking=True,
                )
            )
        elif column not in new:
            changes.append(
                SchemaChange(
                    kind=SchemaChangeKind.DROPPED, column=column, old=dtype, new=None, breaking=True
                )
            )
        elif new[column] != dtype:
            changes.append(
                SchemaChange(
                    kind=SchemaChangeKind.RETYPED,
                    column=column,
                    old=dtype,
                    new=new[column],
                    breaking=True,
                )
            )
    taken = set(renames.values())
    for column in added:
        if column not in taken:
            changes.append(
                SchemaChange(
                    kind=SchemaChangeKind.ADDED,
                    column=column,
                    old=None,
                    new=new[column],
                    breaking=column in not_nullable,
                )
            )
    return SchemaDiff(changes=tuple(changes))


def _renames(
    dropped: list[str],
    added: list[str],
    old: Mapping[str, str],
    new: Mapping[str, str],
    same_content: Callable[[str, str], bool] | None,
) -> dict[str, str]:
    """Pairs (dropped → added) of one dtype whose content matches; each column used once."""
    if same_content is None:
        return {}
    pairs: dict[str, str] = {}
    free = list(added)
    for column in dropped:
        for candidate in free:
            if old[column] == new[candidate] and same_content(column, candidate):
                pairs[column] = candidate
                free.remove(candidate)
                break
    return pairs


def merge_schemas(schemas: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """One schema for several tables (a folder's files); a column typed differently across
    tables gets its dtypes joined, sorted, with ``|`` (``int|str``)."""
    found: dict[str, set[str]] = {}
    for schema in schemas:
        for column, dtype in schema.items():
            found.setdefault(column, set()).add(dtype)
    return {column: "|".join(sorted(dtypes)) for column, dtypes in found.items()}
