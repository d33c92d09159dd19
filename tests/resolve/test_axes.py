"""Axes: ``-p NAME=EXPR`` and keel.yaml axis values read by the parameter's catalog type."""

from __future__ import annotations

import pytest

from keel.base.canonical import JsonValue
from keel.model.sweep import Axis, AxisKind
from keel.resolve.axes import Fixed, parse_axis
from keel.spec.catalog import BadValue, ParamSpec
from keel.spec.sweep import MAX_AXIS_VALUES, declared_axis, tidy_float

PARAMS = {
    "lr": ParamSpec.model_validate({"type": "float", "min": 0.0001, "max": 10}),
    "epochs": ParamSpec.model_validate({"type": "int", "min": 1, "max": 100}),
    "offset": ParamSpec.model_validate({"type": "int"}),
    "mode": ParamSpec.model_validate({"type": "choice", "choices": ["fast", "slow", 3]}),
    "flag": ParamSpec.model_validate({"type": "bool"}),
    "feats": ParamSpec.model_validate({"type": "list", "items": "str"}),
    "sizes": ParamSpec.model_validate({"type": "list", "items": "int"}),
    "label": ParamSpec.model_validate({"type": "str"}),
}


def _axis(name: str, text: str) -> Axis | Fixed | BadValue:
    return parse_axis(PARAMS[name], name=name, text=text)


@pytest.mark.parametrize(
    ("name", "text", "values"),
    [
        pytest.param("lr", "0.01,0.1,1", (0.01, 0.1, 1.0), id="floats"),
        pytest.param("lr", " 1e-3 , 2 ", (0.001, 2.0), id="spaces-and-exponents"),
        pytest.param("epochs", "range(1,4)", (1, 2, 3), id="range-start-stop"),
        pytest.param("offset", "range(3)", (0, 1, 2), id="range-stop"),
        pytest.param("epochs", "range(90,101,5)", (90, 95, 100), id="range-step"),
        pytest.param("offset", "range(10, 0, -4)", (10, 6, 2), id="range-counting-down"),
        pytest.param("epochs", "5,1,3", (5, 1, 3), id="ints-keep-their-order"),
        pytest.param("lr", "linspace(0.1,0.3,3)", (0.1, 0.2, 0.3), id="linspace-tidy"),
        pytest.param("lr", "linspace(1,2,5)", (1.0, 1.25, 1.5, 1.75, 2.0), id="linspace"),
        pytest.param("lr", "linspace(0.5,9,1)", (0.5,), id="linspace-one"),
        pytest.param("mode", "fast,3", ("fast", 3), id="choices-as-written"),
        pytest.param("flag", "true,false", (True, False), id="bools"),
        pytest.param("feats", "a,b;c", (["a", "b"], ["c"]), id="lists-split-on-semicolon"),
        pytest.param("sizes", "[1,2];3,4", ([1, 2], [3, 4]), id="int-lists-json-or-commas"),
        pytest.param("label", "x,y(1)", ("x", "y(1)"), id="texts"),
    ],
)
def test_values_axes_hold_typed_checked_values(
    name: str, text: str, values: tuple[JsonValue, ...]
) -> None:
    axis = _axis(name, text)
    assert axis == Axis(name=name, kind="values", text=text.strip(), values=values)


@pytest.mark.parametrize(
    ("name", "text", "kind", "low", "high"),
    [
        pytest.param("lr", "uniform(0.1,1)", "uniform", 0.1, 1.0, id="uniform"),
        pytest.param("lr", "loguniform(1e-4, 10)", "loguniform", 0.0001, 10.0, id="loguniform"),
        pytest.param("epochs", "randint(1,5)", "randint", 1, 5, id="randint"),
        pytest.param("epochs", "randint(4,4)", "randint", 4, 4, id="randint-one-value"),
    ],
)
def test_sampled_axes_keep_their_interval(
    name: str, text: str, kind: AxisKind, low: float, high: float
) -> None:
    assert _axis(name, text) == Axis(name=name, kind=kind, text=text, low=low, high=high)


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        pytest.param("lr", "0.5", 0.5, id="float"),
        pytest.param("feats", "a,b", ["a", "b"], id="one-list"),
        pytest.param("label", "f(x)", "f(x)", id="text-that-looks-like-a-call"),
        pytest.param("mode", "slow", "slow", id="choice"),
    ],
)
def test_a_single_value_is_fixed_not_swept(name: str, text: str, value: JsonValue) -> None:
    assert _axis(name, text) == Fixed(value=value, text=text)


@pytest.mark.parametrize(
    ("name", "text", "message", "hint"),
    [
        pytest.param(
            "lr", "", "no values given", "write -p lr=a,b, or an expression such as range(1,5)",
            id="empty",
        ),
        pytest.param(
            "feats", " ", "no values given",
            "write -p feats=a;b, or an expression such as range(1,5)", id="empty-list-param",
        ),
        pytest.param(
            "lr", "0.1,,1", "value 2 of '0.1,,1' is empty", "remove the extra ','", id="hole"
        ),
        pytest.param("lr", "0.1,x", "expected a number, got 'x'", "write it like 0.5 or 1e-3",
                     id="not-a-number"),
        pytest.param("epochs", "1,2.5", "expected an integer, got '2.5'", None, id="not-an-int"),
        pytest.param(
            "lr", "0.1,50", "50.0 is out of range: must be between 0.0001 and 10", None,
            id="out-of-range",
        ),
        pytest.param("lr", "1,1.0", "value 1.0 is listed twice", "give each value once",
                     id="repeat"),
        pytest.param(
            "mode", "fast,slwo", "'slwo' is not one of the choices: fast, slow, 3",
            "did you mean 'slow'?", id="bad-choice",
        ),
        pytest.param(
            "epochs", "range(5,1)", "range(5,1) is empty",
            "range(start,stop) counts from start up to stop-1: range(1,5) is 1, 2, 3, 4",
            id="empty-range",
        ),
        pytest.param("epochs", "range(1,9,0)", "range(1,9,0): the step must not be 0", None,
                     id="zero-step"),
        pytest.param(
            "epochs", "range(0,3)", "range(0,3) gives 0: 0 is out of range: must be between 1 "
            "and 100", None, id="range-below-min",
        ),
        pytest.param(
            "epochs", "range(1.5)", "range(): expected an integer, got '1.5'",
            "write range(stop) or range(start,stop[,step])", id="range-of-a-float",
        ),
        pytest.param(
            "epochs", "range()", "range() takes 1 to 3 integers: range(stop) or "
            "range(start,stop[,step])", None, id="range-without-arguments",
        ),
        pytest.param(
            "offset", f"range({MAX_AXIS_VALUES + 1})",
            f"range({MAX_AXIS_VALUES + 1}) has {MAX_AXIS_VALUES + 1} values; an axis may hold "
            f"{MAX_AXIS_VALUES}", None, id="huge-range",
        ),
        pytest.param(
            "lr", "range(1,3)",
            "range() applies to int parameters; 'lr' is a float parameter",
            "for a float parameter use linspace(a,b,n), or list the values", id="range-on-float",
        ),
        pytest.param(
            "lr", "linspace(0,1)", "linspace() takes 3 arguments: linspace(first,last,count)",
            None, id="linspace-arguments",
        ),
        pytest.param(
            "lr", "linspace(0.1,1,0)", "linspace(0.1,1,0): count must be between 1 and 100000",
            None, id="linspace-count",
        ),
        pytest.param(
            "lr", "uniform(1,0.1)", "uniform(1,0.1): low is at or above high",
            "write uniform(low,high)", id="uniform-backwards",
        ),
        pytest.param(
            "lr", "uniform(0.1,nan)", "uniform(): expected a finite number, got 'nan'",
            "write uniform(low,high)", id="uniform-nan",
        ),
        pytest.param(
            "lr", "uniform(0.1,100)",
            "uniform(0.1,100): 100.0 is out of range: must be between 0.0001 and 10", None,
            id="uniform-beyond-max",
        ),
        pytest.param(
            "lr", "loguniform(0,1)", "loguniform(0,1): loguniform needs low above 0",
            "use uniform(a,b) instead", id="loguniform-at-zero",
        ),
        pytest.param(
            "epochs", "randint(5,1)", "randint(5,1): low is above high",
            "write randint(low,high)", id="randint-backwards",
        ),
        pytest.param(
            "epochs", "uniform(1,5)",
            "uniform() applies to float parameters; 'epochs' is an int parameter",
            "for an int parameter use range(start,stop), or list the values",
            id="uniform-on-int",
        ),
        pytest.param(
            "mode", "randint(1,2)",
            "randint() applies to int parameters; 'mode' is a choice parameter",
            "list the values", id="randint-on-choice",
        ),
        pytest.param(
            "lr", "rnge(1,3)", "unknown axis function 'rnge()'", "did you mean 'range(...)'?",
            id="misspelt-function",
        ),
        pytest.param(
            "epochs", "steps(1,3)", "unknown axis function 'steps()'",
            "use range(...), linspace(...), uniform(...), loguniform(...) or randint(...)",
            id="unknown-function",
        ),
    ],
)  # fmt: skip
def test_bad_axes_say_what_is_wrong_and_how_to_write_them(
    name: str, text: str, message: str, hint: str | None
) -> None:
    assert _axis(name, text) == BadValue(message, hint)


def test_keel_yaml_axes_are_lists_or_expressions() -> None:
    lr = PARAMS["lr"]
    assert declared_axis(lr, name="lr", value=[1, 0.5]) == Axis(
        name="lr", kind="values", text="[1,0.5]", values=(1.0, 0.5)
    )
    assert declared_axis(lr, name="lr", value="uniform(0.1,1)") == Axis(
        name="lr", kind="uniform", text="uniform(0.1,1)", low=0.1, high=1.0
    )
    assert declared_axis(lr, name="lr", value="0.1,1") == BadValue(
        "'0.1,1' is not an axis expression",
        "write the values as a YAML list such as [a, b], or use range(...), linspace(...), "
        "uniform(...), loguniform(...) or randint(...)",
    )
    assert declared_axis(lr, name="lr", value=0.1) == BadValue(
        "expected a list of values or an axis expression, got 0.1",
        "write a list, even for one value: [v]",
    )
    assert declared_axis(PARAMS["feats"], name="feats", value=[["a"], ["a", "b"]]) == Axis(
        name="feats", kind="values", text='[["a"],["a","b"]]', values=(["a"], ["a", "b"])
    )


@pytest.mark.parametrize(
    ("value", "tidy"),
    [
        pytest.param(0.1 + 0.2, 0.3, id="sum"),
        pytest.param(1 / 3, 0.333333333333, id="third"),
        pytest.param(123456.7890123456, 123456.789012, id="large"),
        pytest.param(2.0, 2.0, id="exact"),
    ],
)
def test_computed_floats_keep_12_significant_digits(value: float, tidy: float) -> None:
    assert tidy_float(value) == tidy
