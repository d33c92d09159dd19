"""Data contracts: what a tabular dataset (CSV, Parquet) promises about its columns and rows.

A contract is a small YAML file::

    columns:
      age: {dtype: float, min: 0, max: 120, nullable: false}
      income: {dtype: float, min: 0}
      segment: {dtype: str, allowed: [a, b, c]}
      id: {dtype: int, unique: true}
    rows: {min: 1, max: 10000000}

Loading it is plain validation, like keel.yaml: every problem is gathered and reported with its
file, line and key, and an unknown key names the closest valid one. Checking data against it
happens in :mod:`keel.ops.datacheck`. A contract is stored as canonical JSON
(:meth:`Contract.to_json`), so two files that say the same thing share one digest.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, JsonValue

from keel.errors import Problem, UserError, ValidationError
from keel.spec.problems import KeyPath, Problems, describe_value, format_number
from keel.spec.schema import Number, Section, Seq, SpecModel
from keel.spec.yamlload import read_yaml

CONTRACT_FORMAT = 1
"""Version of the stored JSON form; changes whenever a field changes meaning."""


class ColumnType(StrEnum):
    """The logical type of a column, whatever the file format stores."""

    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    DATETIME = "datetime"


_NUMERIC = (ColumnType.INT, ColumnType.FLOAT)
_SCALAR_TYPES: dict[ColumnType, tuple[type, ...]] = {
    ColumnType.INT: (int,),
    ColumnType.FLOAT: (int, float),
    ColumnType.STR: (str,),
    ColumnType.BOOL: (bool,),
}

Scalar = str | bool | int | float
"""A value an ``allowed`` list may hold (booleans come first so they are never read as 1 or 0)."""


class ColumnContract(SpecModel):
    """What one column promises. Every check is optional; nulls are allowed unless refused."""

    dtype: Annotated[ColumnType | None, Field(strict=False)] = None
    nullable: bool = True
    unique: bool = False
    required: bool = True
    min: Number | None = None
    max: Number | None = None
    allowed: Seq[Scalar] | None = None
    pattern: str | None = None


class RowsContract(SpecModel):
    """Bounds on the number of rows of each table."""

    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None


class Contract(SpecModel):
    """A whole contract: the declared columns, row bounds, and whether other columns may exist."""

    columns: Section[dict[str, ColumnContract]] = Field(default_factory=dict)
    rows: RowsContract | None = None
    strict: bool = False

    @property
    def not_nullable(self) -> frozenset[str]:
        """Columns that must never hold a null."""
        return frozenset(n for n, c in self.columns.items() if not c.nullable)

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form: every field spelt out, plus ``contract_format``."""
        data: dict[str, JsonValue] = self.model_dump(mode="json")
        data["contract_format"] = CONTRACT_FORMAT
        return data

    @classmethod
    def from_json(cls, data: JsonValue, *, where: str) -> Contract:
        """Read back :meth:`to_json`.

        Raises:
            keel.errors.UserError: the data is not a contract this keel can read.
        """
        if not isinstance(data, dict) or data.get("contract_format") != CONTRACT_FORMAT:
            found = data.get("contract_format") if isinstance(data, dict) else None
            raise UserError(
                f"{where} is not a contract in format {CONTRACT_FORMAT} (found {found!r}); "
                "it was written by another keel version: upgrade keel"
            )
        body = {k: v for k, v in data.items() if k != "contract_format"}
        problems = Problems(where)
        contract = problems.validate(cls, body, path=())
        problems.raise_if_any()
        assert contract is not None
        return contract


def load_contract(path: Path) -> Contract:
    """Read and validate a contract file.

    Raises:
        keel.errors.UserError: the file cannot be read.
        keel.errors.ValidationError: listing every problem, each with its file, line and key.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(
            f"cannot read the contract {path}: {exc.strerror or exc}; check the path"
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = Problem(file=path.name, line=line, message="the file is not valid UTF-8 text")
        raise ValidationError([problem]) from exc
    return parse_contract(text, file=path.name)


def parse_contract(text: str, *, file: str) -> Contract:
    """Validate contract YAML ``text``; problems are reported against ``file``.

    Raises:
        keel.errors.ValidationError: listing every problem, each with its line and key.
    """
    problems = Problems(file)
    doc = read_yaml(text, problems)
    problems.lines = doc.lines
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else "not a mapping"
        problems.add((), f"the contract is {what}", hint="start it with `columns:`", line=1)
        problems.raise_if_any()
    contract = problems.validate(Contract, doc.data, path=())
    if contract is not None:
        _check_meaning(contract, problems)
    problems.raise_if_any()
    assert contract is not None
    return contract


def _check_meaning(contract: Contract, problems: Problems) -> None:
    """Checks that need more than one key: bounds in order, checks that fit the dtype."""
    for name, column in contract.columns.items():
        _check_column(column, ("columns", name), problems)
    rows = contract.rows
    if rows is not None and rows.min is not None and rows.max is not None and rows.min > rows.max:
        problems.add(("rows", "min"), f"min {rows.min} is greater than max {rows.max}")


def _check_column(column: ColumnContract, path: KeyPath, problems: Problems) -> None:
    dtype = column.dtype
    for key in ("min", "max"):
        if getattr(column, key) is not None and dtype is not None and dtype not in _NUMERIC:
            problems.add((*path, key), f"{key} applies to int and float columns, not {dtype}")
    low, high = column.min, column.max
    if low is not None and high is not None and low > high:
        problems.add(
            (*path, "min"), f"min {format_number(low)} is greater than max {format_number(high)}"
        )
    if column.pattern is not None:
        if dtype is not None and dtype is not ColumnType.STR:
            problems.add((*path, "pattern"), f"pattern applies to str columns, not {dtype}")
        _check_pattern(column.pattern, (*path, "pattern"), problems)
    if column.allowed is not None and dtype in _SCALAR_TYPES:
        _check_allowed(column.allowed, dtype, (*path, "allowed"), problems)


def _check_pattern(pattern: str, path: KeyPath, problems: Problems) -> None:
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        problems.add(path, f"not a valid regular expression: {exc}")


def _check_allowed(
    allowed: tuple[Scalar, ...], dtype: ColumnType, path: KeyPath, problems: Problems
) -> None:
    kinds = _SCALAR_TYPES[dtype]
    for index, value in enumerate(allowed):
        fits = isinstance(value, kinds) and (
            dtype is ColumnType.BOOL or not isinstance(value, bool)
        )
        if not fits:
            hint = "quote it" if dtype is ColumnType.STR else None
            problems.add(
                (*path, index),
                f"{describe_value(value)} is not a {dtype} value",
                hint=hint,
            )
