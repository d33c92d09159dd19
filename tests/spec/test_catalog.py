"""The parameter catalog: declarations, defaults and value checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keel.model.params import ParamKind
from keel.spec import BadValue, ParamSpec, ProjectSpec, check_value


def _param(**fields: object) -> ParamSpec:
    return ParamSpec.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "value", "expected"),
    [
        pytest.param({"type": "int"}, 7, 7, id="int"),
        pytest.param({"type": "float"}, 1, 1.0, id="float-accepts-an-int"),
        pytest.param({"type": "float"}, 1e-3, 0.001, id="float"),
        pytest.param({"type": "bool"}, False, False, id="bool"),
        pytest.param({"type": "str"}, "NO", "NO", id="str"),
        pytest.param({"type": "path"}, "data/x.csv", "data/x.csv", id="path"),
        pytest.param({"type": "choice", "choices": ["a", "b"]}, "b", "b", id="choice"),
        pytest.param({"type": "choice", "choices": [1, 2]}, 2, 2, id="numeric-choice"),
        pytest.param({"type": "list"}, ["a", 1], ["a", 1], id="list-of-anything"),
        pytest.param(
            {"type": "list"}, [[1, 2], {"k": None}], [[1, 2], {"k": None}], id="nested-list"
        ),
        pytest.param({"type": "list", "items": "float"}, [1, 2.5], [1.0, 2.5], id="float-list"),
        pytest.param({"type": "int", "min": 1, "max": 5}, 5, 5, id="max-is-inclusive"),
    ],
)
def test_a_valid_value_is_returned_normalised(
    fields: dict[str, object], value: object, expected: object
) -> None:
    checked = check_value(_param(**fields), value)
    assert checked == expected
    assert type(checked) is type(expected)


@pytest.mark.parametrize(
    ("fields", "value", "message"),
    [
        pytest.param({"type": "int"}, 2.0, "expected an integer, got 2.0", id="int-given-float"),
        pytest.param({"type": "int"}, True, "expected an integer, got true", id="int-given-bool"),
        pytest.param({"type": "float"}, "1", "expected a number, got '1' (text)", id="float-text"),
        pytest.param(
            {"type": "float"},
            float("inf"),
            "expected a finite number, got inf",
            id="float-infinite",
        ),
        pytest.param(
            {"type": "bool"},
            "yes",
            "expected true or false, got 'yes' (text)",
            id="bool-given-yes-text",
        ),
        pytest.param({"type": "bool"}, 1, "expected true or false, got 1", id="bool-given-1"),
        pytest.param({"type": "str"}, 5, "expected text, got 5", id="str-given-number"),
        pytest.param({"type": "path"}, "", "expected a path, got '' (text)", id="empty-path"),
        pytest.param(
            {"type": "int", "min": 1, "max": 5000},
            0,
            "0 is out of range: must be between 1 and 5000",
            id="below-range",
        ),
        pytest.param(
            {"type": "float", "min": 0.5},
            0.25,
            "0.25 is out of range: must be at least 0.5",
            id="below-min",
        ),
        pytest.param(
            {"type": "int", "max": 3}, 4, "4 is out of range: must be at most 3", id="above-max"
        ),
        pytest.param(
            {"type": "choice", "choices": ["logreg", "forest"]},
            "svm",
            "'svm' is not one of the choices: logreg, forest",
            id="bad-choice",
        ),
        pytest.param(
            {"type": "choice", "choices": [1, 2]},
            True,
            "true is not one of the choices: 1, 2",
            id="bool-is-not-the-number-1",
        ),
        pytest.param({"type": "list"}, "a,b", "expected a list, got 'a,b' (text)", id="not-list"),
        pytest.param({"type": "str"}, {"a": 1}, "expected text, got a mapping", id="str-mapping"),
        pytest.param({"type": "int"}, None, "expected an integer, got null", id="int-null"),
        pytest.param(
            {"type": "list"},
            [1, float("nan")],
            "a list may hold only text, finite numbers, booleans, null and lists",
            id="list-with-nan",
        ),
        pytest.param(
            {"type": "list", "items": "int"},
            [1, "x"],
            "item 1: expected an integer, got 'x' (text)",
            id="bad-list-item",
        ),
    ],
)
def test_a_bad_value_says_what_is_wrong(
    fields: dict[str, object], value: object, message: str
) -> None:
    checked = check_value(_param(**fields), value)
    assert isinstance(checked, BadValue)
    assert checked.message == message


def test_a_near_miss_choice_gets_a_suggestion() -> None:
    checked = check_value(_param(type="choice", choices=["logreg", "forest"]), "forst")
    assert checked == BadValue(
        "'forst' is not one of the choices: logreg, forest", "did you mean 'forest'?"
    )


def test_the_catalog_keeps_declaration_order_and_normalises_defaults(
    make_project: Callable[[str], ProjectSpec],
) -> None:
    project = make_project(
        """\
        project: p
        params:
          b: {type: float, default: 2, unit: s, doc: Wait}
          a: {type: list, items: int, default: [1, 2]}
          r: {type: int}
        """
    )
    assert list(project.params) == ["b", "a", "r"]
    assert project.params["b"].default == 2.0 and isinstance(project.params["b"].default, float)
    assert project.params["b"].unit == "s" and project.params["b"].doc == "Wait"
    assert project.params["a"].items is ParamKind.INT
    assert project.params["r"].required


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        pytest.param(
            "{type: choice, default: a}",
            "keel.yaml:3: params.x.choices: a choice parameter needs a non-empty list of choices",
            id="choice-without-choices",
        ),
        pytest.param(
            "{type: choice, choices: [], default: a}",
            "keel.yaml:3: params.x.choices: a choice parameter needs a non-empty list of choices",
            id="choice-with-empty-choices",
        ),
        pytest.param(
            "{type: choice, choices: [a, a]}",
            "keel.yaml:3: params.x.choices[1]: choice a is listed twice",
            id="dup-choice",
        ),
        pytest.param(
            "{type: int, min: 5, max: 1}",
            "keel.yaml:3: params.x.min: min (5) is greater than max (1)",
            id="min>max",
        ),
        pytest.param(
            "{type: float, default: 1, log: true}",
            "keel.yaml:3: params.x.log: log: true needs a positive min; set min above 0",
            id="log-without-min",
        ),
        pytest.param(
            "{type: float, min: 0, default: 1, log: true}",
            "keel.yaml:3: params.x.log: log: true needs a positive min; set min above 0",
            id="log-with-zero-min",
        ),
        pytest.param(
            "{type: str, log: true}",
            "keel.yaml:3: params.x.log: log applies only to int and float parameters",
            id="log-on-str",
        ),
        pytest.param(
            "{type: choice, choices: [a, [b]]}",
            "keel.yaml:3: params.x.choices[1]: choices must be text, numbers or booleans",
            id="list-as-choice",
        ),
        pytest.param(
            "{type: str, min: 1}",
            "keel.yaml:3: params.x.min: min applies only to int and float parameters",
            id="min-on-str",
        ),
        pytest.param(
            "{type: str, choices: [a]}",
            "keel.yaml:3: params.x.choices: choices applies only to choice parameters",
            id="choices-on-str",
        ),
        pytest.param(
            "{type: int, items: int}",
            "keel.yaml:3: params.x.items: items applies only to list parameters",
            id="items-on-int",
        ),
        pytest.param(
            "{type: list, items: list}",
            "keel.yaml:3: params.x.items: list items must be one of: int, float, bool, str, path",
            id="list-of-lists",
        ),
        pytest.param(
            "{type: int, default: null}",
            "keel.yaml:3: params.x.default: default is null; remove the key to make the "
            "parameter required",
            id="null-default",
        ),
        pytest.param(
            "{type: int, default: 2.5}",
            "keel.yaml:3: params.x.default: expected an integer, got 2.5",
            id="int-with-float-default",
        ),
        pytest.param(
            "{type: bool, default: 'yes'}",
            "keel.yaml:3: params.x.default: expected true or false, got 'yes' (text); "
            "write true or false without quotes",
            id="bool-with-yes-text",
        ),
        pytest.param(
            "{type: integer}",
            "keel.yaml:3: params.x.type: must be one of: int, float, bool, str, choice, "
            "list, path; got 'integer' (text); did you mean 'int'?",
            id="unknown-type",
        ),
        pytest.param(
            "{default: 1}", "keel.yaml:3: params.x.type: required key is missing", id="missing-type"
        ),
        pytest.param(
            "{type: int, mni: 1}",
            "keel.yaml:3: params.x.mni: unknown key; did you mean 'min'?",
            id="unknown-key",
        ),
        pytest.param(
            "{type: int, min: '1'}",
            "keel.yaml:3: params.x.min: expected a number, got '1' (text)",
            id="text-bound",
        ),
        pytest.param("5", "keel.yaml:3: params.x: expected a mapping, got 5", id="not-a-mapping"),
    ],
)
def test_a_bad_declaration_is_reported_at_its_line(
    make_problems: Callable[[str], list[str]], entry: str, problem: str
) -> None:
    assert make_problems(f"project: p\nparams:\n  x: {entry}\n") == [problem]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        pytest.param("seed", "'seed' is reserved; {seed} is always the run seed", id="reserved"),
        pytest.param(
            "learning-rate",
            "'learning-rate' is not a valid parameter name; use "
            "letters, digits and _, not starting with a digit",
            id="dash",
        ),
        pytest.param(
            "2x",
            "'2x' is not a valid parameter name; use letters, digits and _, not "
            "starting with a digit",
            id="leading-digit",
        ),
    ],
)
def test_a_parameter_name_must_work_as_a_placeholder(
    make_problems: Callable[[str], list[str]], name: str, problem: str
) -> None:
    text = f"project: p\nparams:\n  {name}: {{type: int, default: 1}}\n"
    assert make_problems(text) == [f"keel.yaml:3: params.{name}: {problem}"]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        pytest.param({"type": "int", "min": 1, "max": 5000}, "[1, 5000]", id="closed"),
        pytest.param({"type": "float", "min": 0.0001, "log": True}, ">= 0.0001 (log)", id="log"),
        pytest.param({"type": "int", "max": 0}, "<= 0", id="max-zero"),
        pytest.param({"type": "choice", "choices": ["a", True, 1.5]}, "a, true, 1.5", id="choice"),
        pytest.param({"type": "str"}, "", id="none"),
    ],
)
def test_range_text_shows_the_valid_values(fields: dict[str, object], text: str) -> None:
    assert _param(**fields).range_text() == text
