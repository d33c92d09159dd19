"""Read one ``keel sweep -p NAME=EXPR`` as a fixed value or an axis of the parameter's type.

``EXPR`` is one of:

- ``a,b,c``: values, each read like ``keel run -p`` reads a value (by the parameter's catalog
  type) and checked against min/max/choices. List parameters separate their values with ``;``
  (``-p features=a,b;a,b,c`` is two lists), since ``,`` separates a list's items.
- a single value (no separator): a fixed value for every trial, exactly like ``keel run -p``.
- an expression: ``range(...)``, ``linspace(...)``, ``uniform(...)``, ``loguniform(...)``,
  ``randint(...)`` (see :mod:`keel.spec.sweep`).

Text values cannot contain the separator: a sweep over texts with commas is declared as a
YAML list in keel.yaml instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.base.canonical import JsonValue
from keel.model.params import ParamKind
from keel.model.sweep import Axis
from keel.resolve.overrides import parse_override
from keel.spec.catalog import BadValue, ParamSpec
from keel.spec.sweep import function_axis, values_axis


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixed:
    """``-p NAME=value`` with one value: the same for every trial (``text`` as written)."""

    value: JsonValue
    text: str


def separator(param: ParamSpec) -> str:
    """What separates the values of an axis of ``param``: ``;`` for lists, else ``,``."""
    return ";" if param.type is ParamKind.LIST else ","


def parse_axis(param: ParamSpec, *, name: str, text: str) -> Axis | Fixed | BadValue:
    """Read ``text`` (what follows ``NAME=``) for the catalog parameter ``param``.

    Returns:
        An :class:`~keel.model.sweep.Axis` for several values or an expression, a
        :class:`Fixed` for a single value, or a :class:`~keel.spec.catalog.BadValue` saying
        what is wrong and how to write it.
    """
    stripped = text.strip()
    sep = separator(param)
    if not stripped:
        return BadValue(
            "no values given", f"write -p {name}=a{sep}b, or an expression such as range(1,5)"
        )
    axis = function_axis(param, name=name, text=stripped)
    if axis is not None:
        return axis
    parts = stripped.split(sep)
    if len(parts) == 1:
        value = parse_override(param, text)
        return value if isinstance(value, BadValue) else Fixed(value=value, text=text)
    values: list[JsonValue] = []
    for position, part in enumerate(parts, start=1):
        if not part.strip():
            return BadValue(
                f"value {position} of '{stripped}' is empty", f"remove the extra '{sep}'"
            )
        value = parse_override(param, part.strip())
        if isinstance(value, BadValue):
            return value
        values.append(value)
    return values_axis(param, name=name, text=stripped, values=values)
