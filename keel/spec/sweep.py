"""Declared sweeps (keel.yaml ``sweeps:``) and the axis grammar shared with ``keel sweep -p``.

An axis is written as explicit values or as one of these expressions:

- ``range(stop)``, ``range(start, stop[, step])``: int parameters, Python's semantics;
- ``linspace(a, b, n)``: float parameters, ``n`` evenly spaced values from ``a`` to ``b``;
- ``uniform(a, b)``, ``loguniform(a, b)``: float parameters, sampled (random and optuna only);
- ``randint(a, b)``: int parameters, sampled from ``a`` to ``b`` inclusive.

Values from expressions are checked against the catalog (type, min/max) like any other value.
Floats an expression computes are rounded to 12 significant digits (:func:`tidy_float`), so
they print and compare cleanly. In keel.yaml a list gives the values and a string is an
expression; on the command line (``keel.resolve.axes``) values are separated by commas, or by
``;`` for list parameters.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, Field, JsonValue

from keel.base.suggest import closest, did_you_mean
from keel.model.params import ParamKind
from keel.model.sweep import Axis, AxisKind, FoldStrategy, Strategy
from keel.spec.catalog import BadValue, ParamSpec, check_value
from keel.spec.experiment import ExperimentSpec, path_problem
from keel.spec.problems import KeyPath, Problems, describe_value
from keel.spec.schema import NAME, Section, SpecModel

STRATEGIES: tuple[Strategy, ...] = ("grid", "random", "optuna")
FOLD_STRATEGIES: tuple[FoldStrategy, ...] = ("kfold", "stratified", "group")
AXIS_FUNCTIONS = ("range", "linspace", "uniform", "loguniform", "randint")
MAX_AXIS_VALUES = 100_000
"""The most values one axis may hold (``range(10**9)`` is refused before it fills memory)."""

_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)$", re.DOTALL)
_EXPRESSIONS = "range(...), linspace(...), uniform(...), loguniform(...) or randint(...)"


def tidy_float(value: float) -> float:
    """``value`` rounded to 12 significant digits: ``0.30000000000000004`` becomes ``0.3``."""
    return float(f"{value:.12g}")


def _folds_shorthand(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"k": value}
    return value


class FoldsDecl(SpecModel):
    """Cross-validation of a declared sweep: ``folds: 5`` or ``folds: {k: 5, ...}``."""

    k: int = Field(ge=2)
    strategy: FoldStrategy = "kfold"
    data: str | None = None
    label: str | None = None
    group: str | None = None


class SweepDecl(SpecModel):
    """One sweep as declared. After loading, list axes hold checked, normalised values."""

    experiment: str
    params: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    strategy: Strategy | None = None
    trials: int | None = Field(default=None, ge=1)
    seeds: int | None = Field(default=None, ge=1)
    folds: Annotated[FoldsDecl | None, BeforeValidator(_folds_shorthand)] = None
    seed: int | None = Field(default=None, ge=0)
    metric: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    why: str | None = None


def check_sweeps(
    raw: Mapping[str, JsonValue],
    *,
    experiments: Mapping[str, ExperimentSpec],
    declared_experiments: Collection[str],
    catalog: Mapping[str, ParamSpec],
    problems: Problems,
) -> dict[str, SweepDecl]:
    """Validate the ``sweeps`` section against the experiments and the catalog.

    Args:
        raw: the section as plain data.
        experiments: the valid experiments.
        declared_experiments: every experiment name, valid or not (a broken one is reported
            once, where it is declared).
        catalog: the valid catalog entries.
        problems: where problems are recorded.
    """
    sweeps: dict[str, SweepDecl] = {}
    for name, entry in raw.items():
        path: KeyPath = ("sweeps", name)
        decl = problems.validate(SweepDecl, {} if entry is None else entry, path=path)
        if decl is None:
            continue
        if not NAME.match(name):
            problems.add(
                path, f"'{name}' is not a valid sweep name", hint="use letters, digits, _ and -"
            )
        exp = experiments.get(decl.experiment)
        if exp is None:
            if decl.experiment not in declared_experiments:
                problems.add(
                    (*path, "experiment"),
                    f"unknown experiment '{decl.experiment}'",
                    hint=did_you_mean(decl.experiment, declared_experiments),
                )
            continue
        params = _check_axes(decl, exp, path=path, catalog=catalog, problems=problems)
        _check_metric(decl, exp, path=path, problems=problems)
        _check_folds(decl.folds, path=(*path, "folds"), problems=problems)
        sweeps[name] = decl.model_copy(update={"params": params})
    return sweeps


def _check_axes(
    decl: SweepDecl,
    exp: ExperimentSpec,
    *,
    path: KeyPath,
    catalog: Mapping[str, ParamSpec],
    problems: Problems,
) -> dict[str, JsonValue]:
    checked: dict[str, JsonValue] = {}
    for name, value in decl.params.items():
        key = (*path, "params", name)
        if name not in exp.param_names:
            if name in catalog:
                problems.add(
                    key,
                    f"parameter '{name}' is not used by experiment '{decl.experiment}'",
                    hint=f"add it to experiments.{decl.experiment}.params",
                )
            else:
                problems.add(
                    key, f"unknown parameter '{name}'", hint=did_you_mean(name, exp.param_names)
                )
            continue
        if name not in catalog:
            continue  # a broken catalog entry is reported where it is declared
        axis = declared_axis(catalog[name], name=name, value=value)
        if isinstance(axis, BadValue):
            problems.add(key, axis.message, hint=axis.hint)
        else:
            checked[name] = list(axis.values) if isinstance(value, list) else value
    return checked


def _check_metric(
    decl: SweepDecl, exp: ExperimentSpec, *, path: KeyPath, problems: Problems
) -> None:
    if decl.metric is not None and decl.metric not in exp.metrics:
        problems.add(
            (*path, "metric"),
            f"'{decl.metric}' is not a metric of experiment '{decl.experiment}'",
            hint=did_you_mean(decl.metric, exp.metrics),
        )


def _check_folds(folds: FoldsDecl | None, *, path: KeyPath, problems: Problems) -> None:
    if folds is None:
        return
    if folds.strategy == "stratified" and folds.label is None:
        problems.add(
            (*path, "strategy"),
            "stratified folds need a label column",
            hint="add label: COLUMN (the class of each row)",
        )
    if folds.strategy == "group" and folds.group is None:
        problems.add(
            (*path, "strategy"),
            "group folds need a group column",
            hint="add group: COLUMN (rows of one group stay in one fold)",
        )
    if folds.data is not None:
        reason = path_problem(folds.data)
        if reason is not None:
            problems.add((*path, "data"), reason)


def declared_axis(param: ParamSpec, *, name: str, value: JsonValue) -> Axis | BadValue:
    """The axis a keel.yaml sweep declares: a list of values, or an expression string."""
    if isinstance(value, list):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return values_axis(param, name=name, text=text, values=value)
    if isinstance(value, str):
        axis = function_axis(param, name=name, text=value)
        if axis is not None:
            return axis
        return BadValue(
            f"'{value}' is not an axis expression",
            f"write the values as a YAML list such as [a, b], or use {_EXPRESSIONS}",
        )
    return BadValue(
        f"expected a list of values or an axis expression, got {describe_value(value)}",
        "write a list, even for one value: [v]",
    )


def values_axis(
    param: ParamSpec, *, name: str, text: str, values: Sequence[object]
) -> Axis | BadValue:
    """An axis of explicit values, each checked against the catalog; none may repeat."""
    if not values:
        return BadValue("no values given", f"give at least one value, or use {_EXPRESSIONS}")
    if len(values) > MAX_AXIS_VALUES:
        return BadValue(f"{len(values)} values is more than an axis may hold ({MAX_AXIS_VALUES})")
    checked: list[JsonValue] = []
    seen: set[str] = set()
    for value in values:
        result = check_value(param, value)
        if isinstance(result, BadValue):
            return result
        token = json.dumps(result, sort_keys=True)
        if token in seen:
            return BadValue(f"value {_show(result)} is listed twice", "give each value once")
        seen.add(token)
        checked.append(result)
    return Axis(name=name, kind="values", text=text, values=tuple(checked))


def function_axis(param: ParamSpec, *, name: str, text: str) -> Axis | BadValue | None:
    """The axis ``text`` describes if it is an expression such as ``range(1,5)``, else None.

    Text and path parameters take text like ``f(x)`` as a value; for other parameters an
    unknown function name is an error.
    """
    match = _CALL.match(text.strip())
    if match is None or param.type in (ParamKind.STR, ParamKind.PATH):
        return None
    func, inner = match.group(1), match.group(2)
    if func not in AXIS_FUNCTIONS:
        if param.type not in (ParamKind.INT, ParamKind.FLOAT):
            return None
        near = closest(func, AXIS_FUNCTIONS)
        return BadValue(
            f"unknown axis function '{func}()'",
            f"did you mean '{near}(...)'?" if near else f"use {_EXPRESSIONS}",
        )
    args = [part.strip() for part in inner.split(",")] if inner.strip() else []
    return _FUNCTIONS[func](param, _Call(name=name, func=func, text=text.strip(), args=args))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Call:
    """One parsed expression: the parameter's name, the function and its argument texts."""

    name: str
    func: str
    text: str
    args: list[str]

    def kind_problem(self, param: ParamSpec, want: ParamKind) -> BadValue | None:
        """Why the function does not apply to ``param``'s type, or None when it does."""
        if param.type is want:
            return None
        other = "linspace(a,b,n)" if want is ParamKind.INT else "range(start,stop)"
        hint = (
            f"for {_kind(param)} parameter use {other}, or list the values"
            if param.type in (ParamKind.INT, ParamKind.FLOAT)
            else "list the values"
        )
        return BadValue(
            f"{self.func}() applies to {want.value} parameters; "
            f"'{self.name}' is {_kind(param)} parameter",
            hint,
        )

    def numbers(self, kinds: str) -> list[int | float] | BadValue:
        """The arguments read as numbers: ``kinds`` has ``i`` (int) or ``f`` (float) for each."""
        signature = _SIGNATURES[self.func]
        if len(self.args) != len(kinds):
            return BadValue(f"{self.func}() takes {len(kinds)} arguments: {signature}")
        numbers: list[int | float] = []
        for kind, arg in zip(kinds, self.args, strict=True):
            number = _number(arg, integer=kind == "i")
            if number is None:
                what = "an integer" if kind == "i" else "a finite number"
                return BadValue(
                    f"{self.func}(): expected {what}, got '{arg}'", f"write {signature}"
                )
            numbers.append(number)
        return numbers


_SIGNATURES = {
    "range": "range(stop) or range(start,stop[,step])",
    "linspace": "linspace(first,last,count)",
    "uniform": "uniform(low,high)",
    "loguniform": "loguniform(low,high)",
    "randint": "randint(low,high)",
}


def _number(text: str, *, integer: bool) -> int | float | None:
    try:
        if integer:
            return int(text, 10)
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _range(param: ParamSpec, call: _Call) -> Axis | BadValue:
    wrong = call.kind_problem(param, ParamKind.INT)
    if wrong is not None:
        return wrong
    if not 1 <= len(call.args) <= 3:
        return BadValue(f"range() takes 1 to 3 integers: {_SIGNATURES['range']}")
    numbers = call.numbers("i" * len(call.args))
    if isinstance(numbers, BadValue):
        return numbers
    bounds = [int(n) for n in numbers]
    if len(bounds) == 3 and bounds[2] == 0:
        return BadValue(f"{call.text}: the step must not be 0")
    values = range(*bounds)
    if not values:
        return BadValue(
            f"{call.text} is empty",
            "range(start,stop) counts from start up to stop-1: range(1,5) is 1, 2, 3, 4",
        )
    if len(values) > MAX_AXIS_VALUES:
        return BadValue(f"{call.text} has {len(values)} values; an axis may hold {MAX_AXIS_VALUES}")
    return _computed(param, call, list(values))


def _linspace(param: ParamSpec, call: _Call) -> Axis | BadValue:
    wrong = call.kind_problem(param, ParamKind.FLOAT)
    if wrong is not None:
        return wrong
    numbers = call.numbers("ffi")
    if isinstance(numbers, BadValue):
        return numbers
    first, last, count = float(numbers[0]), float(numbers[1]), int(numbers[2])
    if not 1 <= count <= MAX_AXIS_VALUES:
        return BadValue(f"{call.text}: count must be between 1 and {MAX_AXIS_VALUES}")
    if count == 1:
        return _computed(param, call, [first])
    step = (last - first) / (count - 1)
    values = [tidy_float(first + i * step) for i in range(count - 1)] + [last]
    return _computed(param, call, values)


def _computed(param: ParamSpec, call: _Call, values: list[int] | list[float]) -> Axis | BadValue:
    """The values of an expression, each checked; a bad one is named with the expression."""
    for value in values:
        bad = check_value(param, value)
        if isinstance(bad, BadValue):
            return BadValue(f"{call.text} gives {_show(value)}: {bad.message}", bad.hint)
    axis = values_axis(param, name=call.name, text=call.text, values=values)
    if isinstance(axis, BadValue):  # linspace with a tiny step can round values together
        return BadValue(f"{call.text}: {axis.message}", "use fewer values or a wider interval")
    return axis


def _interval(param: ParamSpec, call: _Call) -> Axis | BadValue:
    """``uniform``, ``loguniform`` and ``randint``: a sampled interval inside the catalog's."""
    integer = call.func == "randint"
    wrong = call.kind_problem(param, ParamKind.INT if integer else ParamKind.FLOAT)
    if wrong is not None:
        return wrong
    numbers = call.numbers("ii" if integer else "ff")
    if isinstance(numbers, BadValue):
        return numbers
    low, high = numbers
    if high < low or (high == low and not integer):
        word = "above" if integer else "at or above"
        return BadValue(f"{call.text}: low is {word} high", f"write {_SIGNATURES[call.func]}")
    if call.func == "loguniform" and low <= 0:
        return BadValue(f"{call.text}: loguniform needs low above 0", "use uniform(a,b) instead")
    for bound in (low, high):
        bad = check_value(param, bound)
        if isinstance(bad, BadValue):
            return BadValue(f"{call.text}: {bad.message}", bad.hint)
    if not integer:
        low, high = float(low), float(high)
    return Axis(name=call.name, kind=_INTERVALS[call.func], text=call.text, low=low, high=high)


_INTERVALS: dict[str, AxisKind] = {
    "uniform": "uniform",
    "loguniform": "loguniform",
    "randint": "randint",
}

_FUNCTIONS: dict[str, Callable[[ParamSpec, _Call], Axis | BadValue]] = {
    "range": _range,
    "linspace": _linspace,
    "uniform": _interval,
    "loguniform": _interval,
    "randint": _interval,
}


def _kind(param: ParamSpec) -> str:
    """``an int``, ``a float``, ``a choice``: the parameter's type with its article."""
    kind = param.type.value
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
