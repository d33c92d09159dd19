"""The parameter catalog: every knob declared once, with its type, default and valid values."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, JsonValue

from keel.base.suggest import closest
from keel.model.params import ParamKind
from keel.spec.problems import KeyPath, Problems, describe_value, format_number
from keel.spec.schema import Number, Seq, SpecModel

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""Shape of a parameter name: usable as a ``{placeholder}`` and in ``KEEL_PARAM_<NAME>``."""

RESERVED = frozenset({"seed"})
"""Names a parameter cannot take: ``{seed}`` is the run seed."""

ITEM_KINDS = (ParamKind.INT, ParamKind.FLOAT, ParamKind.BOOL, ParamKind.STR, ParamKind.PATH)
"""Element types a ``list`` parameter may declare in ``items``."""


class ParamSpec(SpecModel):
    """One catalog entry. A parameter without a default must be given a value for every run."""

    type: Annotated[ParamKind, Field(strict=False)]
    default: JsonValue = None
    min: Number | None = None
    max: Number | None = None
    choices: Seq[JsonValue] | None = None
    log: bool = False
    unit: str | None = None
    doc: str | None = None
    items: Annotated[ParamKind | None, Field(strict=False)] = None

    @property
    def required(self) -> bool:
        """True when the catalog gives no default."""
        return self.default is None

    def range_text(self) -> str:
        """The valid values in words: ``[1, 5000]``, ``>= 0.1 (log)``, ``logreg, forest``."""
        if self.choices is not None:
            return ", ".join(_show(c) for c in self.choices)
        if self.min is not None and self.max is not None:
            text = f"[{format_number(self.min)}, {format_number(self.max)}]"
        elif self.min is not None:
            text = f">= {format_number(self.min)}"
        elif self.max is not None:
            text = f"<= {format_number(self.max)}"
        else:
            return ""
        return f"{text} (log)" if self.log else text


@dataclass(frozen=True, slots=True)
class BadValue:
    """Why a value does not fit its parameter, with an optional hint."""

    message: str
    hint: str | None = None


def check_value(param: ParamSpec, value: object) -> JsonValue | BadValue:
    """Check ``value`` against ``param``; return it normalised (floats as float) or a BadValue."""
    if param.type is ParamKind.CHOICE:
        return _check_choice(param, value)
    if param.type is ParamKind.LIST:
        return _check_list(param, value)
    checked = check_kind(param.type, value)
    if isinstance(checked, BadValue) or param.type not in (ParamKind.INT, ParamKind.FLOAT):
        return checked
    bad = _range_problem(param, value)
    return checked if bad is None else bad


def check_kind(kind: ParamKind, value: object) -> JsonValue | BadValue:
    """Check that ``value`` has the scalar type ``kind``, one of :data:`ITEM_KINDS`."""
    return _KIND_CHECKS[kind](value)


def _want(what: str, value: object, hint: str | None = None) -> BadValue:
    return BadValue(f"expected {what}, got {describe_value(value)}", hint)


def _int(value: object) -> JsonValue | BadValue:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _want("an integer", value)


def _float(value: object) -> JsonValue | BadValue:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _want("a number", value)
    if not math.isfinite(value):
        return _want("a finite number", value)
    return float(value)


def _bool(value: object) -> JsonValue | BadValue:
    if isinstance(value, bool):
        return value
    hint = "write true or false without quotes" if isinstance(value, str) else None
    return _want("true or false", value, hint)


def _str(value: object) -> JsonValue | BadValue:
    return value if isinstance(value, str) else _want("text", value, "quote the value")


def _path(value: object) -> JsonValue | BadValue:
    if isinstance(value, str) and value:
        return value
    return _want("a path", value)


_KIND_CHECKS: dict[ParamKind, Callable[[object], JsonValue | BadValue]] = {
    ParamKind.INT: _int,
    ParamKind.FLOAT: _float,
    ParamKind.BOOL: _bool,
    ParamKind.STR: _str,
    ParamKind.PATH: _path,
}


def _range_problem(param: ParamSpec, value: object) -> BadValue | None:
    """Why a number is outside ``[min, max]`` (shown as the user wrote it), else None."""
    assert isinstance(value, int | float)
    low, high = param.min, param.max
    if (low is None or value >= low) and (high is None or value <= high):
        return None
    got = format_number(value)
    if low is not None and high is not None:
        return BadValue(f"{got} is out of range: must be between {_show(low)} and {_show(high)}")
    if low is not None:
        return BadValue(f"{got} is out of range: must be at least {_show(low)}")
    return BadValue(f"{got} is out of range: must be at most {_show(high)}")


def _same(a: object, b: object) -> bool:
    """Equality that keeps booleans, numbers and text apart (``True != 1``, ``'1' != 1``)."""
    return (
        isinstance(a, bool) == isinstance(b, bool)
        and isinstance(a, str) == isinstance(b, str)
        and a == b
    )


def _check_choice(param: ParamSpec, value: object) -> JsonValue | BadValue:
    choices = param.choices or ()
    for choice in choices:
        if _same(choice, value):
            return choice
    shown = [_show(c) for c in choices]
    near = closest(_show(value), shown)
    got = f"'{value}'" if isinstance(value, str) else describe_value(value)
    return BadValue(
        f"{got} is not one of the choices: {', '.join(shown)}",
        f"did you mean '{near}'?" if near else None,
    )


def _check_list(param: ParamSpec, value: object) -> JsonValue | BadValue:
    if not isinstance(value, list | tuple):
        return _want("a list", value, "write it as [a, b]")
    if param.items is None:
        if not _json_safe(value):
            return BadValue("a list may hold only text, finite numbers, booleans, null and lists")
        return [_plain(item) for item in value]
    checked: list[JsonValue] = []
    for index, item in enumerate(value):
        result = check_kind(param.items, item)
        if isinstance(result, BadValue):
            return BadValue(f"item {index}: {result.message}", result.hint)
        checked.append(result)
    return checked


def _json_safe(value: object) -> bool:
    """True for data that canonical JSON can hold (no NaN or infinity, no other objects)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if value is None or isinstance(value, str | int):
        return True
    if isinstance(value, list | tuple):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def _plain(value: object) -> JsonValue:
    """A copy of JSON-safe data with tuples as lists."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    assert value is None or isinstance(value, str | int | float)  # checked by _json_safe
    return value


def _show(value: object) -> str:
    """A value as a user would type it: ``forest``, ``1.0``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)


def check_catalog(raw: Mapping[str, JsonValue], problems: Problems) -> dict[str, ParamSpec]:
    """Validate the ``params`` section; record problems and return the valid entries."""
    catalog: dict[str, ParamSpec] = {}
    for name, entry in raw.items():
        path: KeyPath = ("params", name)
        param = problems.validate(ParamSpec, entry, path=path)
        if param is None:
            continue
        _check_name(name, path, problems)
        if _check_declaration(param, path, problems):
            checked = _check_default(param, path, problems)
            if checked is not None:
                catalog[name] = checked
    return catalog


def _check_name(name: str, path: KeyPath, problems: Problems) -> None:
    if not IDENTIFIER.match(name):
        problems.add(
            path,
            f"'{name}' is not a valid parameter name",
            hint="use letters, digits and _, not starting with a digit",
        )
    elif name in RESERVED:
        problems.add(path, f"'{name}' is reserved", hint="{seed} is always the run seed")


def _check_declaration(param: ParamSpec, path: KeyPath, problems: Problems) -> bool:
    """Check the fields that depend on ``type``; False when the entry is unusable."""
    before = len(problems.found)
    kind = param.type
    numeric = kind in (ParamKind.INT, ParamKind.FLOAT)
    for key in ("min", "max"):
        if getattr(param, key) is not None and not numeric:
            problems.add((*path, key), f"{key} applies only to int and float parameters")
    if param.min is not None and param.max is not None and param.min > param.max:
        problems.add(
            (*path, "min"), f"min ({_show(param.min)}) is greater than max ({_show(param.max)})"
        )
    if param.log and not numeric:
        problems.add((*path, "log"), "log applies only to int and float parameters")
    elif param.log and (param.min is None or param.min <= 0):
        problems.add((*path, "log"), "log: true needs a positive min", hint="set min above 0")
    _check_choices(param, path, problems)
    if param.items is not None and kind is not ParamKind.LIST:
        problems.add((*path, "items"), "items applies only to list parameters")
    elif param.items is not None and param.items not in ITEM_KINDS:
        kinds = ", ".join(k.value for k in ITEM_KINDS)
        problems.add((*path, "items"), f"list items must be one of: {kinds}")
    return len(problems.found) == before


def _check_choices(param: ParamSpec, path: KeyPath, problems: Problems) -> None:
    if param.type is not ParamKind.CHOICE:
        if param.choices is not None:
            problems.add((*path, "choices"), "choices applies only to choice parameters")
        return
    if not param.choices:
        problems.add((*path, "choices"), "a choice parameter needs a non-empty list of choices")
        return
    for index, choice in enumerate(param.choices):
        if not isinstance(choice, str | int | float | bool):
            problems.add((*path, "choices", index), "choices must be text, numbers or booleans")
        elif any(_same(choice, other) for other in param.choices[:index]):
            problems.add((*path, "choices", index), f"choice {_show(choice)} is listed twice")


def _check_default(param: ParamSpec, path: KeyPath, problems: Problems) -> ParamSpec | None:
    """Check the default against the declaration; return the entry with it normalised."""
    if param.default is None:
        if "default" in param.model_fields_set:
            problems.add(
                (*path, "default"),
                "default is null",
                hint="remove the key to make the parameter required",
            )
            return None
        return param
    checked = check_value(param, param.default)
    if isinstance(checked, BadValue):
        problems.add((*path, "default"), checked.message, hint=checked.hint)
        return None
    return param.model_copy(update={"default": checked})
