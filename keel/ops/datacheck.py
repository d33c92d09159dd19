"""Checking tabular data against its contract: when a version is added, before a run, on demand.

:func:`validate_version` is what `keel data add` runs before it stores a version: it checks the
data against the contract (given, or the previous version's), profiles every table, refuses a
breaking schema change unless a reason is given, and stores the contract and profile objects.
:func:`check_before_run` checks an input against its version's contract before a run uses it.

Each table is read with pandas, its declared dtypes are converted here (so a value that does
not fit is reported with its row), and pandera runs the value checks. Every failure names the
table, the column and the check, with the first failing values and their rows (row 1 is the
first data row; in a CSV file, the line after the header).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.canonical import canonical_json
from keel.base.digest import Digest, hash_file
from keel.compare.datadrift import compare_schema
from keel.compare.schema import DataProfile, TableProfile
from keel.errors import Problem, UserError, ValidationError
from keel.ops.dataprofile import (
    load_profile,
    logical_dtype,
    profile_frame,
    store_profile,
    stored_contract,
)
from keel.ops.tables import (
    data_extra_installed,
    read_table,
    require_data_extra,
    table_files,
    table_format,
)
from keel.spec.contract import ColumnContract, ColumnType, Contract, load_contract
from keel.spec.problems import format_number

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from keel.model.dataset import DatasetVersion
    from keel.ops.workspace import Workspace

EXAMPLES = 5
"""Failing values shown per check."""

ROWS_PER_VALUE = 3
"""Rows shown per failing value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataCheck:
    """The outcome of checking a version's tables against its contract; falsy when it failed."""

    version: str
    tables: int
    rows: int
    problems: tuple[Problem, ...] = ()

    def __bool__(self) -> bool:
        return not self.problems


def validate_version(
    ws: Workspace,
    *,
    name: str,
    path: Path,
    contract_file: Path | None,
    previous: DatasetVersion | None,
    breaking: str | None,
) -> tuple[str | None, str | None]:
    """Check and profile a dataset version before `keel data add` stores it.

    The contract is ``contract_file`` or, when none is given, the previous version's. The data
    (a CSV or Parquet file, or every such file in a folder) must satisfy it; its profile is
    computed and its schema compared with the previous version's profile.

    Args:
        ws: the project.
        name: the dataset.
        path: the file or folder being added.
        contract_file: a contract YAML file, or None.
        previous: the dataset's latest version, or None for the first.
        breaking: the reason given for a breaking schema change (recorded by the caller).

    Returns:
        The digests of the stored contract and profile objects (None for none; data without a
        table has no profile).

    Raises:
        keel.errors.ValidationError: the contract file is invalid, a CSV does not parse, or the
            data breaks the contract (every failure listed).
        keel.errors.UserError: a breaking schema change without ``breaking``, an empty reason,
            or a contract given for data that holds no table.
        keel.errors.MissingExtra: ``keel[data]`` is not installed and a contract applies
            (without one, the version is stored without a profile).
    """
    if breaking is not None and not breaking.strip():
        raise UserError("--breaking needs a reason: say why this version may break its readers")
    contract = _contract(ws, contract_file, previous)
    tables = table_files(path)
    reference = load_profile(ws, previous.profile) if previous and previous.profile else None
    if not tables:
        if contract_file is not None:
            raise UserError(
                f"{name}: the contract applies to CSV and Parquet tables, and {path} holds none"
            )
        _check_evolution(name, reference, DataProfile(tables=()), None, breaking)
        return None, None
    if contract is None and not data_extra_installed():
        return None, None  # stored without a profile: `keel data diff` compares files only
    profile, problems = _profile_checked(tables, contract, reference)
    if problems:
        raise ValidationError(problems)
    _check_evolution(name, reference, profile, contract, breaking)
    stored = None if contract is None else ws.objects.put_bytes(canonical_json(contract.to_json()))
    return (None if stored is None else str(stored)), str(store_profile(ws, profile))


def _contract(
    ws: Workspace, contract_file: Path | None, previous: DatasetVersion | None
) -> Contract | None:
    if contract_file is not None:
        return load_contract(contract_file)
    if previous is not None and previous.contract is not None:
        return stored_contract(ws, previous.contract)
    return None


def _profile_checked(
    tables: Sequence[tuple[str, Path]], contract: Contract | None, reference: DataProfile | None
) -> tuple[DataProfile, list[Problem]]:
    """Read, check and profile every table; the problems of all of them together."""
    require_data_extra()
    profiles: list[TableProfile] = []
    problems: list[Problem] = []
    for rel, file in tables:
        frame = read_table(file, shown=rel, text_columns=_text_columns(contract))
        if contract is not None:
            frame, found = check_frame(frame, contract, shown=rel)
            problems.extend(found)
        if problems:
            continue  # nothing is stored: profiling what failed is wasted work
        digest = str(hash_file(file)[0])
        ref = _reference_table(reference, rel, single=len(tables) == 1)
        fmt = table_format(rel) or "csv"
        profiles.append(profile_frame(frame, path=rel, fmt=fmt, digest=digest, reference=ref))
    return DataProfile(tables=tuple(profiles)), problems


def _reference_table(
    profile: DataProfile | None, path: str, *, single: bool
) -> TableProfile | None:
    """The previous version's table at ``path`` (or its only table, when both have one)."""
    if profile is None:
        return None
    for table in profile.tables:
        if table.path == path:
            return table
    return profile.tables[0] if single and len(profile.tables) == 1 else None


def _check_evolution(
    name: str,
    before: DataProfile | None,
    after: DataProfile,
    contract: Contract | None,
    breaking: str | None,
) -> None:
    """Refuse a breaking schema change from the previous version unless a reason is given."""
    if before is None or breaking is not None:
        return
    not_nullable = contract.not_nullable if contract is not None else frozenset()
    changes = compare_schema(before, after, not_nullable=not_nullable).breaking
    if changes:
        found = "; ".join(c.message for c in changes)
        raise UserError(
            f"{name}: breaking schema change from the previous version: {found}. If it is "
            'intended, add the version with --breaking "REASON" (the reason is recorded)'
        )


def check_before_run(
    ws: Workspace, *, name: str, version_record: DatasetVersion, path: Path
) -> None:
    """Check the data at ``path`` against ``version_record``'s contract before a run reads it.

    Raises:
        keel.errors.ValidationError: listing every failure (none when the version has no
            contract).
        keel.errors.MissingExtra: ``keel[data]`` is not installed (only asked for when there
            is a contract).
    """
    if version_record.contract is None:
        return
    contract = stored_contract(ws, version_record.contract)
    fmt = _file_format(ws, version_record)
    base = _relative(ws, path)
    tables = [
        (f"{base if path.is_file() else f'{base}/{rel}'} (dataset {name})", file)
        for rel, file in table_files(path, fmt=fmt)
    ]
    result = _check_tables(version_record.ref, tables, contract, fmt=fmt)
    if result.problems:
        raise ValidationError(result.problems)


def check_version(ws: Workspace, version: DatasetVersion, *, path: Path | None = None) -> DataCheck:
    """Check a version's stored tables (or the file or folder at ``path``) against its contract.

    Raises:
        keel.errors.UserError: the version has no contract, or holds no table.
        keel.errors.ValidationError: a CSV does not parse.
        keel.errors.MissingExtra: ``keel[data]`` is not installed.
    """
    shown = version.ref
    if version.contract is None:
        raise UserError(
            f"{shown} has no contract to check: give one with "
            f"`keel data add {version.name} PATH --contract FILE`"
        )
    contract = stored_contract(ws, version.contract)
    if path is not None:
        fmt = _file_format(ws, version)
        return _check_tables(shown, table_files(path, fmt=fmt), contract, fmt=fmt)
    with _stored_tables(ws, version) as tables:
        if not tables:
            raise UserError(f"{shown} holds no CSV or Parquet table to check")
        return _check_tables(shown, tables, contract)


def _relative(ws: Workspace, path: Path) -> str:
    """``path`` relative to the project when inside it."""
    try:
        return path.absolute().relative_to(ws.root).as_posix()
    except ValueError:
        return str(path)


def _file_format(ws: Workspace, version: DatasetVersion) -> str | None:
    """The table format of a file version (a checkout may be named without a suffix)."""
    if version.kind != "file" or version.profile is None:
        return None
    tables = load_profile(ws, version.profile).tables
    return tables[0].format if tables else None


@contextmanager
def _stored_tables(ws: Workspace, version: DatasetVersion) -> Iterator[list[tuple[str, Path]]]:
    """A version's tables copied from the object store into a temporary folder."""
    from keel.ops.datastore import version_files

    wanted = [(p, e.digest) for p, e in version_files(ws, version).items() if table_format(p)]
    with tempfile.TemporaryDirectory(prefix="keel-check-") as tmp:
        tables = []
        for rel, object_digest in wanted:
            file = Path(tmp).joinpath(*rel.split("/"))
            ws.objects.copy_to(Digest.parse(object_digest), file)
            tables.append((rel, file))
        yield tables


def _check_tables(
    shown: str,
    tables: Sequence[tuple[str, Path]],
    contract: Contract,
    *,
    fmt: str | None = None,
) -> DataCheck:
    require_data_extra()
    problems: list[Problem] = []
    rows = 0
    for rel, file in tables:
        text = _text_columns(contract)
        frame = read_table(file, shown=rel, text_columns=text, fmt=fmt)
        problems.extend(check_frame(frame, contract, shown=rel)[1])
        rows += len(frame)
    return DataCheck(version=shown, tables=len(tables), rows=rows, problems=tuple(problems))


def _text_columns(contract: Contract | None) -> list[str]:
    """Columns a CSV reader must keep as text (``007`` is not the number 7)."""
    if contract is None:
        return []
    return [n for n, c in contract.columns.items() if c.dtype is ColumnType.STR]


# -- one table -------------------------------------------------------------------------------


def check_frame(
    frame: pd.DataFrame, contract: Contract, *, shown: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check one table: dtypes (converting values that fit), then pandera's checks, then rows.

    Returns:
        The table with the declared dtypes, and every failure (empty when it passed).
    """
    problems: list[Problem] = []
    unusable: set[str] = set()
    for name, column in contract.columns.items():
        if column.dtype is None or name not in frame.columns:
            continue
        converted, failure = _convert(frame[name], column.dtype)
        if failure is None:
            frame[name] = converted
        else:
            unusable.add(name)
            problems.append(
                Problem(file=shown, key=name, message=f"dtype {column.dtype}: {failure}")
            )
    problems.extend(_pandera_problems(frame, contract, shown=shown, skip_values=unusable))
    order = {name: index for index, name in enumerate(contract.columns)}
    problems.sort(key=lambda p: order.get(p.key or "", -1))  # table-wide first, then by column
    problems.extend(_row_problems(len(frame), contract, shown=shown))
    return frame, problems


def _convert(series: pd.Series, want: ColumnType) -> tuple[pd.Series, str | None]:
    """The column converted to ``want``, or why it cannot be (with the failing values)."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    have = logical_dtype(series.dtype)
    if have == want.value:
        return series, None
    present = series.notna()
    if want in (ColumnType.INT, ColumnType.FLOAT) and have in ("int", "float", "str"):
        numbers = series if have != "str" else pd.to_numeric(series, errors="coerce")
        bad = present & numbers.isna()
        if want is ColumnType.INT:
            finite = numbers.where(np.isfinite(numbers.astype("float64")))
            bad |= present & (finite.isna() | (finite != np.floor(finite)))
        if bad.any():
            noun = "an integer" if want is ColumnType.INT else "a number"
            return series, _examples(series, bad, f"not {noun}")
        return numbers.astype("Int64" if want is ColumnType.INT else "float64"), None
    if want is ColumnType.BOOL and have in ("int", "str"):
        text = series.astype("str").str.lower() if have == "str" else series.astype("str")
        values = text.map({"true": True, "false": False, "1": True, "0": False})
        bad = present & values.isna()
        if bad.any():
            return series, _examples(series, bad, "not true or false")
        return values.astype("boolean"), None
    if want is ColumnType.DATETIME and have == "str":
        stamps = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
        bad = present & stamps.isna()
        if bad.any():
            return series, _examples(series, bad, "not an ISO 8601 date or time")
        return stamps, None
    return series, f"the column holds {have} values"


def _examples(series: pd.Series, bad: pd.Series, what: str) -> str:
    """``3 values are not a number: 'x' (row 2), ...``."""
    import numpy as np

    positions = np.flatnonzero(bad.to_numpy(dtype=bool))
    cases = [(series.iloc[int(p)], int(p) + 1) for p in positions]
    count = len(positions)
    verb = "value is" if count == 1 else "values are"
    return f"{count} {verb} {what}: {_format_cases(cases)}"


def _format_cases(cases: Sequence[tuple[object, int | None]]) -> str:
    """The first few failing values, each with its first rows: ``-1.0 (rows 2, 7), 'z' (row 3)``."""
    rows_of: dict[str, list[int]] = {}
    for value, row in cases:
        rows = rows_of.setdefault(_show(value), [])
        if row is not None:
            rows.append(row)
    parts = []
    for shown, rows in list(rows_of.items())[:EXAMPLES]:
        if not rows:
            parts.append(shown)
            continue
        listed = ", ".join(str(r) for r in rows[:ROWS_PER_VALUE])
        more = ", ..." if len(rows) > ROWS_PER_VALUE else ""
        parts.append(f"{shown} (row{'s' if len(rows) > 1 else ''} {listed}{more})")
    if len(rows_of) > EXAMPLES:
        parts.append("...")
    return ", ".join(parts)


def _show(value: object) -> str:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return "null"
    if isinstance(value, str):
        return repr(value)
    if hasattr(value, "item"):
        value = value.item()
    return format_number(value) if isinstance(value, int | float) else str(value)


def _row_problems(rows: int, contract: Contract, *, shown: str) -> list[Problem]:
    bounds = contract.rows
    if bounds is None:
        return []
    if bounds.min is not None and rows < bounds.min:
        wanted = f"at least {bounds.min}"
    elif bounds.max is not None and rows > bounds.max:
        wanted = f"at most {bounds.max}"
    else:
        return []
    return [Problem(file=shown, key="rows", message=f"{rows} rows; the contract wants {wanted}")]


# -- pandera ---------------------------------------------------------------------------------


def _checks(column: ColumnContract) -> list[tuple[str, str, object]]:
    """(pandera builtin check, shown as, argument) for a column's value checks, in order."""
    found: list[tuple[str, str, object]] = []
    if column.min is not None:
        found.append(("ge", f"min {format_number(column.min)}", column.min))
    if column.max is not None:
        found.append(("le", f"max {format_number(column.max)}", column.max))
    if column.allowed is not None:
        shown = ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in column.allowed)
        found.append(("isin", f"allowed [{shown}]", list(column.allowed)))
    if column.pattern is not None:
        found.append(("str_matches", f"pattern '{column.pattern}'", column.pattern))
    return found


def _pandera_problems(
    frame: pd.DataFrame, contract: Contract, *, shown: str, skip_values: set[str]
) -> list[Problem]:
    """Run the contract's column checks with pandera (lazily: every failure, not the first)."""
    import pandera.pandas as pa

    names: dict[str, list[str]] = {}
    columns = {}
    for name, column in contract.columns.items():
        checks = [] if name in skip_values else _checks(column)
        names[name] = [text for _, text, _ in checks]
        columns[name] = pa.Column(
            checks=[getattr(pa.Check, method)(arg) for method, _, arg in checks],
            nullable=column.nullable,
            unique=column.unique,
            required=column.required,
        )
    schema = pa.DataFrameSchema(columns, strict=contract.strict)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _translate(exc.failure_cases, names, shown=shown)
    return []


def _translate(cases: pd.DataFrame, names: dict[str, list[str]], *, shown: str) -> list[Problem]:
    """One problem per failing (column, check), with examples, from pandera's failure cases."""
    grouped: dict[tuple[str, str], list[tuple[object, int | None]]] = {}
    for column, check, number, value, index in zip(
        cases["column"],
        cases["check"],
        cases["check_number"],
        cases["failure_case"],
        cases["index"],
        strict=True,
    ):
        key = _check_name(column, check, number, names)
        row = None if index is None or index != index else int(index) + 1
        grouped.setdefault(key, []).append((value, row))
    first = {"column_in_dataframe": 0, "column_in_schema": 1}  # missing, then extra columns
    ordered = sorted(grouped.items(), key=lambda item: first.get(item[0][1], 2))
    return [_problem(column, check, found, shown=shown) for (column, check), found in ordered]


def _check_name(
    column: object, check: object, number: object, names: dict[str, list[str]]
) -> tuple[str, str]:
    """(column, how the contract says the check) for one pandera failure case."""
    text = str(check)
    if text in ("column_in_dataframe", "column_in_schema"):
        return "", text
    name = str(column)
    known = names.get(name, [])
    if isinstance(number, int | float) and number == number and 0 <= int(number) < len(known):
        return name, known[int(number)]
    return name, {"not_nullable": "nullable false", "field_uniqueness": "unique"}.get(text, text)


def _problem(
    column: str, check: str, cases: list[tuple[object, int | None]], *, shown: str
) -> Problem:
    names = ", ".join(repr(str(v)) for v, _ in cases)
    if check == "column_in_dataframe":
        hint = "the contract requires them (or set `required: false`)"
        return Problem(file=shown, key="columns", message=f"missing: {names}", hint=hint)
    if check == "column_in_schema":
        hint = "the contract is strict: declare them, or set `strict: false`"
        return Problem(
            file=shown, key="columns", message=f"not in the contract: {names}", hint=hint
        )
    count = len(cases)
    if check == "nullable false":
        numbers = [r for _, r in cases if r is not None]
        listed = ", ".join(map(str, numbers[:EXAMPLES])) + (", ..." if count > EXAMPLES else "")
        nulls = f"{count} null{'s' if count > 1 else ''}"
        where = f"row{'s' if count > 1 else ''} {listed}"
        return Problem(file=shown, key=column, message=f"nullable false: {nulls} ({where})")
    what = "repeat a value" if check == "unique" else ("fail" if count > 1 else "fails")
    rows = f"{count} rows" if count > 1 else "1 row"
    message = f"{check}: {rows} {what}: {_format_cases(cases)}"
    return Problem(file=shown, key=column, message=message)
