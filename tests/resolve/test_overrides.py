"""Reading ``-p name=value`` text by the parameter's type."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.resolve import arg_text, parse_override
from keel.spec import BadValue, ParamSpec


def _param(**fields: object) -> ParamSpec:
    return ParamSpec.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "text", "value"),
    [
        pytest.param({"type": "int"}, "7", 7, id="int"),
        pytest.param({"type": "int"}, " -3 ", -3, id="int-with-spaces"),
        pytest.param({"type": "float"}, "0.5", 0.5, id="float"),
        pytest.param({"type": "float"}, "1e-3", 0.001, id="float-exponent"),
        pytest.param({"type": "float"}, "2", 2.0, id="float-from-integer-text"),
        pytest.param({"type": "bool"}, "true", True, id="true"),
        pytest.param({"type": "bool"}, "FALSE", False, id="FALSE"),
        pytest.param({"type": "bool"}, "yes", True, id="yes"),
        pytest.param({"type": "bool"}, "no", False, id="no"),
        pytest.param({"type": "bool"}, "1", True, id="one"),
        pytest.param({"type": "bool"}, "0", False, id="zero"),
        pytest.param(
            {"type": "choice", "choices": ["logreg", "forest"]}, "forest", "forest", id="choice"
        ),
        pytest.param({"type": "choice", "choices": [16, 32]}, "32", 32, id="numeric-choice"),
        pytest.param({"type": "choice", "choices": [0.5, 1.0]}, "1.0", 1.0, id="float-choice"),
        pytest.param(
            {"type": "choice", "choices": [True, False]}, "false", False, id="bool-choice"
        ),
        pytest.param({"type": "list"}, "a,b", ["a", "b"], id="comma-list"),
        pytest.param({"type": "list"}, "a, b ,c", ["a", "b", "c"], id="comma-list-spaces"),
        pytest.param({"type": "list"}, "", [], id="empty-list"),
        pytest.param({"type": "list"}, "[1, 2]", [1, 2], id="json-list"),
        pytest.param({"type": "list", "items": "int"}, "1,2", [1, 2], id="int-items"),
        pytest.param(
            {"type": "list", "items": "float"}, "[1, 2.5]", [1.0, 2.5], id="json-float-items"
        ),
        pytest.param({"type": "list", "items": "bool"}, "yes,0", [True, False], id="bool-items"),
        pytest.param({"type": "path"}, "data/x.csv", "data/x.csv", id="path"),
        pytest.param({"type": "str"}, " spaced ", " spaced ", id="str-kept-as-given"),
    ],
)
def test_override_text_is_read_by_the_parameter_type(
    fields: dict[str, object], text: str, value: object
) -> None:
    parsed = parse_override(_param(**fields), text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("fields", "text", "message"),
    [
        pytest.param(
            {"type": "int"}, "1.5", "expected an integer, got '1.5'", id="int-given-float"
        ),
        pytest.param({"type": "int"}, "1e3", "expected an integer, got '1e3'", id="int-exponent"),
        pytest.param({"type": "float"}, "abc", "expected a number, got 'abc'", id="float-text"),
        pytest.param({"type": "float"}, "nan", "expected a finite number, got nan", id="nan"),
        pytest.param(
            {"type": "bool"}, "maybe", "expected true or false, got 'maybe'", id="bool-maybe"
        ),
        pytest.param(
            {"type": "choice", "choices": ["a", "b"]},
            "c",
            "'c' is not one of the choices: a, b",
            id="bad-choice",
        ),
        pytest.param(
            {"type": "list"}, "[1,", "'[1,' is not a JSON list: Expecting value", id="broken-json"
        ),
        pytest.param(
            {"type": "list"},
            "[1",
            "'[1' is not a JSON list: Expecting ',' delimiter",
            id="unclosed-json",
        ),
        pytest.param(
            {"type": "list", "items": "int"},
            "1,x",
            "item 1: expected an integer, got 'x'",
            id="bad-item",
        ),
        pytest.param(
            {"type": "int", "min": 1, "max": 10},
            "11",
            "11 is out of range: must be between 1 and 10",
            id="out-of-range",
        ),
        pytest.param({"type": "path"}, "", "expected a path, got '' (text)", id="empty-path"),
    ],
)
def test_bad_override_text_says_what_is_wrong(
    fields: dict[str, object], text: str, message: str
) -> None:
    parsed = parse_override(_param(**fields), text)
    assert isinstance(parsed, BadValue)
    assert parsed.message == message


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_written_as_an_argument_reads_back_the_same(value: float) -> None:
    assert parse_override(_param(type="float"), arg_text(value)) == value


@given(st.integers())
def test_an_int_written_as_an_argument_reads_back_the_same(value: int) -> None:
    assert parse_override(_param(type="int"), arg_text(value)) == value
