"""Data contract files: the documented form, and every problem located by file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.errors import UserError, ValidationError
from keel.spec.contract import (
    ColumnContract,
    ColumnType,
    Contract,
    RowsContract,
    load_contract,
    parse_contract,
)

ISSUE_FORM = """\
columns:
  age: {dtype: float, min: 0, max: 120, nullable: false}
  income: {dtype: float, min: 0}
  segment: {dtype: str, allowed: [a, b, c]}
  id: {dtype: int, unique: true}
rows: {min: 1, max: 10000000}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_contract(textwrap.dedent(text), file="contract.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_documented_form_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(ISSUE_FORM)
    contract = load_contract(path)
    assert contract.columns == {
        "age": ColumnContract(dtype=ColumnType.FLOAT, min=0, max=120, nullable=False),
        "income": ColumnContract(dtype=ColumnType.FLOAT, min=0),
        "segment": ColumnContract(dtype=ColumnType.STR, allowed=("a", "b", "c")),
        "id": ColumnContract(dtype=ColumnType.INT, unique=True),
    }
    assert contract.rows == RowsContract(min=1, max=10_000_000)
    assert contract.strict is False
    assert contract.not_nullable == {"age"}


def test_columns_are_nullable_and_required_unless_the_contract_says_otherwise() -> None:
    column = parse_contract("columns:\n  x: {}\n", file="c.yaml").columns["x"]
    assert column.nullable is True and column.required is True and column.unique is False


def test_the_stored_form_round_trips_and_ignores_how_the_yaml_was_written() -> None:
    flow = parse_contract(ISSUE_FORM, file="a.yaml")
    block = parse_contract(
        textwrap.dedent("""\
            rows:
              max: 10000000
              min: 1
            columns:
              age:
                nullable: false
                dtype: float
                max: 120
                min: 0
              income: {min: 0, dtype: float}
              segment: {dtype: str, allowed: [a, b, c]}
              id: {unique: true, dtype: int}
            """),
        file="b.yaml",
    )
    assert canonical_json(flow.to_json()) == canonical_json(block.to_json())
    assert flow.to_json()["contract_format"] == 1
    assert Contract.from_json(flow.to_json(), where="contract x") == flow


def test_a_stored_contract_in_another_format_is_refused_with_what_to_do() -> None:
    with pytest.raises(UserError, match=r"contract x is not a contract in format 1 .*upgrade keel"):
        Contract.from_json({"contract_format": 99, "columns": {}}, where="contract x")


def test_an_unknown_check_is_one_line_naming_file_line_key_and_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text("columns:\n  age:\n    dtype: float\n    maxx: 120\n")
    with pytest.raises(ValidationError) as caught:
        load_contract(path)
    assert (
        str(caught.value) == "contract.yaml:4: columns.age.maxx: unknown key; did you mean 'max'?"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "colums: {}\n",
            "contract.yaml:1: colums: unknown key; did you mean 'columns'?",
            id="top-level-key",
        ),
        pytest.param(
            "columns:\n  age: {dtype: flaot}\n",
            "contract.yaml:2: columns.age.dtype: must be one of: int, float, str, bool, "
            "datetime; got 'flaot' (text); did you mean 'float'?",
            id="dtype",
        ),
        pytest.param(
            "rows: {minimum: 1}\n",
            "contract.yaml:1: rows.minimum: unknown key; did you mean 'min'?",
            id="rows-key",
        ),
        pytest.param(
            "columns:\n  a: {nullable: no}\n",
            "contract.yaml:2: columns.a.nullable: expected true or false, got 'no' (text); "
            "write true or false without quotes (YAML 1.2 reads yes/no/on/off as text)",
            id="yes-no-is-text",
        ),
        pytest.param(
            "columns:\n  a: {min: true}\n",
            "contract.yaml:2: columns.a.min: expected a number, got true",
            id="bool-bound",
        ),
        pytest.param(
            "rows: {min: -1}\n",
            "contract.yaml:1: rows.min: must be at least 0, got -1",
            id="negative-rows",
        ),
    ],
)
def test_a_bad_key_or_value_is_located_with_a_hint(text: str, expected: str) -> None:
    assert _problems(text) == [expected]


def test_checks_that_do_not_fit_together_are_all_reported_with_their_lines() -> None:
    found = _problems("""\
        columns:
          a:
            dtype: str
            min: 1
            pattern: '('
            allowed: [1, x]
          b: {dtype: int, min: 5, max: 1}
          c: {dtype: int, pattern: 'x'}
        rows: {min: 5, max: 1}
        """)
    assert found == [
        "contract.yaml:4: columns.a.min: min applies to int and float columns, not str",
        "contract.yaml:5: columns.a.pattern: not a valid regular expression: "
        "missing ), unterminated subpattern at position 0",
        "contract.yaml:6: columns.a.allowed[0]: 1 is not a str value; quote it",
        "contract.yaml:7: columns.b.min: min 5 is greater than max 1",
        "contract.yaml:8: columns.c.pattern: pattern applies to str columns, not int",
        "contract.yaml:9: rows.min: min 5 is greater than max 1",
    ]


def test_an_empty_or_shapeless_contract_says_how_to_start() -> None:
    assert _problems("") == ["contract.yaml:1: the contract is empty; start it with `columns:`"]
    assert _problems("- a\n") == [
        "contract.yaml:1: the contract is not a mapping; start it with `columns:`"
    ]


def test_a_contract_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_bytes(b"columns:\n  caf\xe9: {}\n")
    with pytest.raises(ValidationError, match=r"^contract.yaml:2: the file is not valid UTF-8"):
        load_contract(path)


def test_a_missing_contract_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"cannot read the contract .*nope.yaml"):
        load_contract(tmp_path / "nope.yaml")
