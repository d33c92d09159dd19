"""Tables on disk (CSV, Parquet): which files are tables, and reading one into a DataFrame.

A file is a table by its suffix (:data:`TABLE_FORMATS`); a folder's tables are the CSV and
Parquet files below it. :func:`read_table` turns a file that does not parse into a
:class:`~keel.errors.ValidationError` naming the line at fault. Summarising tables is
:mod:`keel.ops.dataprofile`; checking them against contracts is :mod:`keel.ops.datacheck`.

pandas, pyarrow and numpy are imported only by the functions that read data; a missing
``keel[data]`` extra raises :class:`~keel.errors.MissingExtra` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from keel.base.digest import iter_tree_files
from keel.errors import MissingExtra, Problem, UserError, ValidationError

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""File suffixes read as tables, and their format."""

EXTRA_HINT = "pip install 'keel[data]'"
"""How to install the ``keel[data]`` extra that reading and summarising tables needs."""

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
            f"tabular data support (contracts, profiles) is not installed: {EXTRA_HINT}"
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
