"""Profiles of tabular data (CSV, Parquet): read, summarised, stored, found again and compared.

A version's profile is computed once, when it is added (:mod:`keel.ops.datacheck`), and stored
as a canonical JSON object; `keel data diff` (:func:`diff_versions`) then reads two small
objects, never the data. Each table's profile is also remembered in the project cache by the
table file's digest (``.keel/cache/profiles/``), so that `keel check`
(:func:`add_data_statistics`) can compare a changed input with earlier content profiled before
(a dataset version of the same content, when it was added), or kept in the object store.

pandas, pyarrow and numpy are imported only by the functions that read or summarise data; a
missing ``keel[data]`` extra raises :class:`~keel.errors.MissingExtra` naming it.

NOTE: past 500 lines: reading, summarising and finding profiles again share the table-file
helpers; comparing versions (`keel data diff`, `keel check`) is the last ~130 lines and is the
part to move out first when this grows.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import canonical_json, loads
from keel.base.digest import Digest, hash_file, iter_tree_files
from keel.compare.datadrift import (
    DataDiff,
    FileEntry,
    FilesDiff,
    compare_files,
    compare_profiles,
    compare_schema,
)
from keel.compare.drift_facets import Change, Drift, DriftKind, input_subject
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
from keel.errors import MissingExtra, Problem, UserError, ValidationError
from keel.model.dataset import TreeEntry, tree_entries
from keel.spec.lockfile import InputState

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    from numpy.typing import NDArray

    from keel.model.dataset import DatasetVersion
    from keel.ops.workspace import Workspace
    from keel.spec.contract import Contract

log = logging.getLogger(__name__)

TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""File suffixes read as tables, and their format."""

HISTOGRAM_BINS = 10
"""Bins of a numeric column's histogram: its deciles, unless an earlier version fixed them."""

_EXTRA_HINT = "pip install 'keel[data]'"
_CSV_LINE = re.compile(r"\s*in line (\d+)")
_CSV_ROW = re.compile(r"starting at row (\d+)")


def data_extra_installed() -> bool:
    """True when pandas, pyarrow and numpy import (``keel[data]``)."""
    try:
        require_data_extra()
    except MissingExtra:
        return False
    return True


def require_data_extra() -> None:
    """Raise MissingExtra naming ``keel[data]`` unless pandas, pyarrow and numpy import."""
    try:
        import numpy  # noqa: F401
        import pandas  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
        import pyarrow  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            f"tabular data support (contracts, profiles) is not installed: {_EXTRA_HINT}"
        ) from exc


def table_format(name: str) -> str | None:
    """``csv`` or ``parquet`` from a file name's suffix; None for anything else."""
    return TABLE_FORMATS.get(PurePosixPath(name).suffix.lower())


def table_files(path: Path, *, fmt: str | None = None) -> list[tuple[str, Path]]:
    """The tables of a file or folder as (path inside the version, file), sorted by path.

    A file is its own single table (named by its file name) when its suffix, or else ``fmt``,
    says it is one; a folder holds every CSV and Parquet file below it.
    """
    if path.is_file():
        return [(path.name, path)] if table_format(path.name) or fmt else []
    if not path.is_dir():
        return []
    return [
        (file.relative_to(path).as_posix(), file)
        for file in iter_tree_files(path)
        if table_format(file.name)
    ]


# -- reading ---------------------------------------------------------------------------------


def read_table(
    file: Path, *, shown: str, text_columns: Collection[str] = (), fmt: str | None = None
) -> pd.DataFrame:
    """Read one CSV or Parquet file into a DataFrame.

    Args:
        file: the file; its suffix says the format (else ``fmt``, else CSV).
        shown: how errors name the file.
        text_columns: CSV columns read as text whatever they look like (``007`` stays
            ``007``); the others are inferred.
        fmt: ``csv`` or ``parquet`` for a file whose name has no known suffix.

    Raises:
        keel.errors.MissingExtra: ``keel[data]`` is not installed.
        keel.errors.ValidationError: a CSV that does not parse, with the line at fault.
        keel.errors.UserError: a file that cannot be read, or is not Parquet.
    """
    require_data_extra()
    if (table_format(file.name) or fmt) == "parquet":
        return _read_parquet(file, shown)
    return _read_csv(file, shown, text_columns)


def _read_csv(file: Path, shown: str, text_columns: Collection[str]) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    dtype = dict.fromkeys(text_columns, "str")
    try:
        # low_memory=False: one pass over the file, so a column's dtype is inferred from all of
        # it (and pandas has no reason to warn about mixed types).
        return pd.read_csv(file, dtype=dtype or None, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        problem = Problem(
            file=shown,
            line=1,
            message="the file is empty",
            hint="a CSV table starts with a header line",
        )
        raise ValidationError([problem]) from exc
    except pd.errors.ParserError as exc:
        raise ValidationError([_parse_problem(str(exc), shown)]) from exc
    except UnicodeDecodeError as exc:
        problem = Problem(
            file=shown,
            line=_first_bad_line(file),
            message="not UTF-8 text",
            hint="save the file as UTF-8",
        )
        raise ValidationError([problem]) from exc
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror or exc}") from exc


def _parse_problem(text: str, shown: str) -> Problem:
    """A located problem from a pandas CSV parser message."""
    message = text.strip().removeprefix("Error tokenizing data. C error: ")
    line = None
    if match := _CSV_LINE.search(message):
        line = int(match.group(1))
        message = message[: match.start()] + message[match.end() :]
    elif match := _CSV_ROW.search(message):
        line = int(match.group(1)) + 1  # the parser counts rows from 0, the header included
        message = message[: match.start()].rstrip()
    if message[1:2].islower():  # 'Expected ...' reads on after a colon; 'EOF ...' stays
        message = message[:1].lower() + message[1:]
    return Problem(
        file=shown,
        line=line,
        message=f"not valid CSV: {message}",
        hint="quote fields that contain the delimiter, a quote or a line break",
    )


def _first_bad_line(file: Path) -> int:
    """The first line of ``file`` that is not UTF-8."""
    with open(file, "rb") as fh:
        for number, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _read_parquet(file: Path, shown: str) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    try:
        return pd.read_parquet(file, engine="pyarrow")
    except (pa.ArrowException, ValueError) as exc:
        raise UserError(f"{shown} is not a readable Parquet file: {exc}") from exc
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror or exc}") from exc


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
    from keel.ops.data import load_version

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


# -- comparing versions ----------------------------------------------------------------------


def diff_versions(ws: Workspace, old: DatasetVersion, new: DatasetVersion) -> DataDiff:
    """What changed from ``old`` to ``new``: files (from their tree objects), then for tables
    the schema, row counts and per-column drift, from the stored profiles alone.

    Raises:
        keel.errors.ObjectNotFound: a tree, profile or contract object is not in the store.
        keel.errors.MissingExtra: numpy (``keel[data]``) is not installed.
    """
    before = None if old.profile is None else load_profile(ws, str(old.profile))
    after = None if new.profile is None else load_profile(ws, str(new.profile))
    files = compare_files(_files(ws, old), _files(ws, new))
    notes = tuple(
        f"{v.ref} has no profile: it holds no CSV or Parquet table"
        for v, p in ((old, before), (new, after))
        if p is None
    )
    diff = DataDiff(name=new.name, old=old.ref, new=new.ref, files=files, notes=notes)
    if before is None or after is None:
        return diff
    not_nullable = (
        frozenset() if new.contract is None else stored_contract(ws, new.contract).not_nullable
    )
    tables, added, removed = compare_profiles(before, after, not_nullable=not_nullable)
    schema = compare_schema(before, after, not_nullable=not_nullable)
    return replace(diff, schema=schema, tables=tables, added_tables=added, removed_tables=removed)


def _files(ws: Workspace, version: DatasetVersion) -> list[FileEntry]:
    """A version's files: its tree's entries, or the one file it is."""
    from keel.ops.data import version_files

    return [
        FileEntry(path=path, digest=entry.digest, size=entry.size)
        for path, entry in sorted(version_files(ws, version).items())
    ]


# -- `keel check` ----------------------------------------------------------------------------


def add_data_statistics(
    ws: Workspace,
    items: tuple[Drift, ...],
    *,
    old_inputs: tuple[InputState, ...],
    new_inputs: tuple[InputState, ...],
    root: Path,
) -> tuple[tuple[Drift, ...], tuple[str, ...]]:
    """Attach drift statistics to each changed input whose earlier content can be profiled.

    Each content is a dataset version's (its stored profile), or is profiled: the earlier one
    from the project cache (content profiled before) or the object store, the current one from
    disk. Inputs that are not tables, or whose earlier content is unknown, are left as they are.

    Returns:
        The items (with ``data`` set where computed) and notes on statistics that failed.
    """
    before = {input_subject(i.path): i for i in old_inputs}
    after = {input_subject(i.path): i for i in new_inputs}
    out: list[Drift] = []
    notes: list[str] = []
    for item in items:
        old, new = before.get(item.subject), after.get(item.subject)
        data = None
        if item.kind is DriftKind.DATA and item.change is Change.CHANGED and old and new:
            try:
                data = _input_drift(ws, old, new, root=root)
            except MissingExtra:
                notes.append(f"data drift statistics need pandas and numpy: {_EXTRA_HINT}")
            except UserError as exc:
                notes.append(f"{item.subject}: no drift statistics ({exc})")
        out.append(item if data is None else replace(item, data=data))
    return tuple(out), tuple(dict.fromkeys(notes))


def _input_drift(ws: Workspace, old: InputState, new: InputState, *, root: Path) -> DataDiff | None:
    """Statistics of one changed input; None when either content cannot be profiled."""
    if old.digest is None or new.digest is None or new.kind not in ("file", "dir"):
        return None
    name = PurePosixPath(old.path).name
    before = version_profile(ws, old.digest) or profile_stored(
        ws, digest=old.digest, kind=old.kind, name=name
    )
    if before is None:
        return None
    after = version_profile(ws, new.digest)
    if after is None:
        text = {c for t in before.tables for c, dtype in t.schema.items() if dtype == "str"}
        single = before.tables[0].format if new.kind == "file" and len(before.tables) == 1 else None
        after = profile_path(ws, root / new.path, text_columns=text, fmt=single)
    if after is None:
        return None
    tables, added, removed = compare_profiles(before, after)
    return DataDiff(
        name=new.path,
        old=Digest.parse(old.digest).short,
        new=Digest.parse(new.digest).short,
        files=FilesDiff(),
        schema=compare_schema(before, after),
        tables=tables,
        added_tables=added,
        removed_tables=removed,
    )
