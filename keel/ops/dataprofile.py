"""Profiles of tabular data (CSV, Parquet): summarised, stored and found again.

A version's profile is computed once, when it is added (:mod:`keel.ops.datacheck`), and stored
as a canonical JSON object, so that comparing versions (:mod:`keel.ops.datadiff`) reads two
small objects, never the data. Each table's profile is also remembered in the project cache by
the table file's digest (``.keel/cache/profiles/``), so that `keel check` can compare a changed
input with earlier content profiled before (a dataset version of the same content, when it was
added), or kept in the object store. Finding and reading tables is :mod:`keel.ops.tables`.

pandas, pyarrow and numpy are imported only by the functions that read or summarise data; a
missing ``keel[data]`` extra raises :class:`~keel.errors.MissingExtra` naming it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import canonical_json, loads
from keel.base.digest import Digest, hash_file
from keel.compare.schema import (
    EXACT_VALUES,
    PROFILE_FORMAT,
    QUANTILES,
    TOP_VALUES,
    ColumnProfile,
    DataProfile,
    Histogram,
    TableProfile,
)
from keel.errors import UserError
from keel.model.dataset import TreeEntry, tree_entries
from keel.ops.tables import read_table, table_files, table_format

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    from numpy.typing import NDArray

    from keel.ops.workspace import Workspace
    from keel.spec.contract import Contract

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 10
"""Bins of a numeric column's histogram: its deciles, unless an earlier version fixed them."""


# -- summarising -----------------------------------------------------------------------------


def logical_dtype(dtype: object) -> str:
    """``int``, ``float``, ``str``, ``bool`` or ``datetime`` for a pandas dtype (else its name)."""
    from pandas.api import types  # type: ignore[import-untyped,unused-ignore]

    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int"
    if types.is_float_dtype(dtype):
        return "float"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_string_dtype(dtype) or isinstance(dtype, types.CategoricalDtype):
        return "str"
    return str(dtype)


def profile_frame(
    frame: pd.DataFrame, *, path: str, fmt: str, digest: str, reference: TableProfile | None
) -> TableProfile:
    """Summarise every column of ``frame``.

    A numeric column that ``reference`` (the same table in the previous version) also has is
    binned by the reference's histogram edges, so the two versions' PSI is exact.
    """
    columns: dict[str, ColumnProfile] = {}
    for name in frame.columns:
        ref = reference.columns.get(str(name)) if reference is not None else None
        edges = ref.histogram.edges if ref is not None and ref.histogram is not None else None
        columns[str(name)] = profile_series(frame[name], edges=edges)
    return TableProfile(path=path, format=fmt, digest=digest, rows=len(frame), columns=columns)


def profile_series(series: pd.Series, *, edges: tuple[float, ...] | None = None) -> ColumnProfile:
    """Summarise one column: numeric (int, float, datetime) or categorical (anything else)."""
    import numpy as np

    dtype = logical_dtype(series.dtype)
    if dtype in ("int", "float"):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    elif dtype == "datetime":
        values = _epoch_seconds(series)
    else:
        return _categorical(series, dtype)
    return numeric_profile(values, dtype=dtype, edges=edges)


def _epoch_seconds(series: pd.Series) -> NDArray[np.float64]:
    import numpy as np

    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = series.to_numpy(dtype="datetime64[ns]")
    seconds: NDArray[np.float64] = stamps.astype("int64") / 1e9
    seconds[np.isnat(stamps)] = np.nan
    return seconds


def numeric_profile(
    values: NDArray[np.float64], *, dtype: str, edges: tuple[float, ...] | None = None
) -> ColumnProfile:
    """Summarise numbers (NaN is null; infinities are counted apart and not summarised)."""
    import numpy as np

    nulls = int(np.isnan(values).sum())
    finite = values[np.isfinite(values)]
    infinite = len(values) - nulls - len(finite)
    n = len(finite)
    if n == 0:
        return ColumnProfile(dtype=dtype, count=0, nulls=nulls, infinite=infinite, distinct=0)
    ordered = np.sort(finite)
    position = np.linspace(0.0, n - 1, QUANTILES)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    quantiles = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    distinct = 1 + int(np.count_nonzero(np.diff(ordered)))
    top: tuple[tuple[str | float, int], ...] = ()
    if distinct <= EXACT_VALUES:
        uniques, counts = np.unique(ordered, return_counts=True)
        pairs = sorted(zip(uniques.tolist(), counts.tolist(), strict=True), key=lambda p: -p[1])
        top = tuple((float(v), int(c)) for v, c in pairs)
    bins = edges or _decile_edges(quantiles)
    return ColumnProfile(
        dtype=dtype,
        count=n,
        nulls=nulls,
        infinite=infinite,
        min=float(ordered[0]),
        max=float(ordered[-1]),
        mean=float(np.mean(ordered)),
        std=float(np.std(ordered, ddof=1)) if n > 1 else 0.0,
        quantiles=tuple(float(q) for q in quantiles),
        histogram=Histogram(edges=bins, counts=_bin_counts(ordered, bins)),
        distinct=distinct,
        top=top,
    )


def _decile_edges(quantiles: NDArray[np.float64]) -> tuple[float, ...]:
    import numpy as np

    step = (QUANTILES - 1) // HISTOGRAM_BINS
    edges = np.unique(quantiles[::step])
    return tuple(float(e) for e in (edges if len(edges) > 1 else np.repeat(edges, 2)))


def _bin_counts(ordered: NDArray[np.float64], edges: tuple[float, ...]) -> tuple[int, ...]:
    """Counts in ``[e_i, e_i+1)``; the first and last bins also hold what lies beyond."""
    import numpy as np

    inner = np.searchsorted(ordered, np.asarray(edges[1:-1]), side="left")
    bounds = np.concatenate(([0], inner, [len(ordered)]))
    return tuple(int(c) for c in np.diff(bounds))


def _categorical(series: pd.Series, dtype: str) -> ColumnProfile:
    """Counts of the most frequent values; ties at the cut are broken by the value's text."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    values = series.dropna()
    if not pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        values = values.map(_text)
    counts = values.value_counts()  # most frequent first
    tally = counts.to_numpy()
    keys = counts.index
    if not tally.all():  # a categorical dtype also counts its unused categories
        keys, tally = keys[tally > 0], tally[tally > 0]
    if len(tally) <= TOP_VALUES:
        chosen = list(zip(keys.tolist(), tally.tolist(), strict=True))
    else:
        cut = int(tally[TOP_VALUES - 1])
        above = int(np.count_nonzero(tally > cut))
        tied = np.sort(np.asarray(keys[tally == cut], dtype=str))[: TOP_VALUES - above]
        chosen = list(zip(keys[:above].tolist(), tally[:above].tolist(), strict=True))
        chosen += [(key, cut) for key in tied.tolist()]
    top = sorted(((str(v), int(c)) for v, c in chosen), key=lambda p: (-p[1], p[0]))
    return ColumnProfile(
        dtype=dtype,
        count=len(values),
        nulls=len(series) - len(values),
        distinct=len(tally),
        top=tuple(top),
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- storing and remembering -----------------------------------------------------------------


def store_profile(ws: Workspace, profile: DataProfile) -> Digest:
    """Put a version's profile in the object store; remember each table's by its digest."""
    for table in profile.tables:
        remember(ws, table)
    return ws.objects.put_bytes(canonical_json(profile.to_json()))


def load_profile(ws: Workspace, digest: str) -> DataProfile:
    """Read a stored profile back.

    Raises:
        keel.errors.ObjectNotFound: it is not in the store.
        keel.errors.UserError: it is not a profile this keel can read.
    """
    data = loads(ws.objects.get_bytes(Digest.parse(digest)))
    return DataProfile.from_json(data, where=f"profile {digest}")


def _memo(ws: Workspace, digest: str) -> Path:
    return ws.cache_dir / "profiles" / f"v{PROFILE_FORMAT}-{Digest.parse(digest).hexdigest}.json"


def remember(ws: Workspace, table: TableProfile) -> None:
    """Keep a table's profile in the project cache, by the table file's digest."""
    try:
        data = canonical_json(table.to_json())
        atomic_write_bytes(_memo(ws, table.digest), data, durable=False)
    except OSError as exc:  # a read-only project still works, only slower
        log.debug("profile of %s not cached: %s", table.path, exc)


def recall(ws: Workspace, digest: str, *, path: str) -> TableProfile | None:
    """The remembered profile of the table file with ``digest``, named ``path``; or None."""
    try:
        data = loads(_memo(ws, digest).read_bytes())
        if not isinstance(data, dict):
            return None
        return replace(TableProfile.from_json(data), path=path)
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None


def profile_file(
    ws: Workspace,
    file: Path,
    *,
    path: str,
    digest: str | None = None,
    text_columns: Collection[str] = (),
    fmt: str | None = None,
) -> TableProfile:
    """The profile of one table file: remembered, or read, summarised and remembered."""
    digest = digest or str(hash_file(file)[0])
    found = recall(ws, digest, path=path)
    if found is not None:
        return found
    fmt = table_format(file.name) or fmt or "csv"
    frame = read_table(file, shown=path, text_columns=text_columns, fmt=fmt)
    table = profile_frame(frame, path=path, fmt=fmt, digest=digest, reference=None)
    remember(ws, table)
    return table


def profile_path(
    ws: Workspace, path: Path, *, text_columns: Collection[str] = (), fmt: str | None = None
) -> DataProfile | None:
    """The profile of a file or folder on disk; None when it holds no table.

    ``fmt`` is the format of a file whose name has no known suffix.
    """
    tables = table_files(path, fmt=fmt)
    if not tables:
        return None
    return DataProfile(
        tables=tuple(
            profile_file(ws, f, path=rel, text_columns=text_columns, fmt=fmt) for rel, f in tables
        )
    )


def version_profile(ws: Workspace, digest: str) -> DataProfile | None:
    """The stored profile of a dataset version (of any dataset) whose content is ``digest``."""
    from keel.model.dataset import REF_PREFIX, VERSION_LENGTH
    from keel.ops.datastore import load_version

    short = Digest.parse(digest).hexdigest[:VERSION_LENGTH]
    for ref, record in ws.objects.list_refs(REF_PREFIX):
        if ref.rpartition("/")[2] != short:
            continue
        version = load_version(ws, record)
        if version.digest == digest and version.profile is not None:
            return load_profile(ws, version.profile)
    return None


def profile_stored(ws: Workspace, *, digest: str, kind: str, name: str) -> DataProfile | None:
    """The profile of content in the object store (a file, or a folder's tree object).

    None when it holds no table or is not stored. ``name`` is the file's name (for its format).
    """
    if kind == "file":
        if table_format(name) is None:
            return None
        table = _stored_table(ws, digest=digest, path=name)
        return None if table is None else DataProfile(tables=(table,))
    if kind != "dir" or not ws.objects.has(Digest.parse(digest)):
        return None
    tables = []
    for path, entry in stored_tree(ws, digest).items():
        if table_format(path) is None:
            continue
        table = _stored_table(ws, digest=entry.digest, path=path)
        if table is None:
            return None
        tables.append(table)
    return DataProfile(tables=tuple(tables)) if tables else None


def _stored_table(ws: Workspace, *, digest: str, path: str) -> TableProfile | None:
    found = recall(ws, digest, path=path)
    if found is not None or not ws.objects.has(Digest.parse(digest)):
        return found
    with _materialised(ws, digest, PurePosixPath(path).name) as file:
        return profile_file(ws, file, path=path, digest=digest)


@contextmanager
def _materialised(ws: Workspace, digest: str, name: str) -> Iterator[Path]:
    """A stored object as a temporary file called ``name`` (its suffix says its format)."""
    with tempfile.TemporaryDirectory(prefix="keel-profile-") as tmp:
        file = Path(tmp) / name
        ws.objects.copy_to(Digest.parse(digest), file)
        yield file


def stored_tree(ws: Workspace, digest: str) -> dict[str, TreeEntry]:
    """The files of a stored tree object, by path, sorted.

    Raises:
        keel.errors.ObjectNotFound: the tree object is not stored.
        keel.errors.UserError: the object is not a tree.
    """
    entries = tree_entries(loads(ws.objects.get_bytes(Digest.parse(digest))), digest=digest)
    return dict(sorted(entries.items()))


def stored_contract(ws: Workspace, digest: str | Digest) -> Contract:
    """Read a stored contract back.

    Raises:
        keel.errors.ObjectNotFound: it is not in the store.
        keel.errors.UserError: it is not a contract this keel can read.
    """
    from keel.spec.contract import Contract

    data = loads(ws.objects.get_bytes(Digest.parse(str(digest))))
    return Contract.from_json(data, where=f"contract {digest}")
