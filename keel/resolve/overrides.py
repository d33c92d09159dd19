"""Read a ``-p name=value`` text as a value of the parameter's declared type."""

from __future__ import annotations

import json

from keel.base.canonical import JsonValue
from keel.model.params import ParamKind
from keel.spec.catalog import BadValue, ParamSpec, check_value

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def parse_override(param: ParamSpec, text: str) -> JsonValue | BadValue:
    """Parse command-line ``text`` by ``param``'s type, then check it against the catalog.

    int: ``7``; float: ``0.5``, ``1e-3``; bool: true/false/yes/no/1/0; choice: one of the
    choices as written; list: JSON (``[1, 2]``) or comma-separated (``a,b``); str and path:
    the text as given.
    """
    if param.type is ParamKind.CHOICE:
        return _parse_choice(param, text)
    parsed = _parse(param.type, text, items=param.items)
    if isinstance(parsed, BadValue):
        return parsed
    return check_value(param, parsed)


def _parse(kind: ParamKind, text: str, *, items: ParamKind | None) -> JsonValue | BadValue:
    stripped = text.strip()
    if kind is ParamKind.INT:
        try:
            return int(stripped, 10)
        except ValueError:
            return BadValue(f"expected an integer, got '{text}'")
    if kind is ParamKind.FLOAT:
        try:
            return float(stripped)
        except ValueError:
            return BadValue(f"expected a number, got '{text}'", "write it like 0.5 or 1e-3")
    if kind is ParamKind.BOOL:
        return _parse_bool(stripped)
    if kind is ParamKind.LIST:
        return _parse_list(stripped, items=items)
    return text  # str and path: the text as given


def _parse_bool(text: str) -> JsonValue | BadValue:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return BadValue(f"expected true or false, got '{text}'", "write true/false, yes/no or 1/0")


def _parse_list(text: str, *, items: ParamKind | None) -> JsonValue | BadValue:
    if text.startswith("["):
        try:
            value: JsonValue = json.loads(text)
        except json.JSONDecodeError as exc:
            return BadValue(f"'{text}' is not a JSON list: {exc.msg}", "or write a,b,c")
        return value
    parts = [part.strip() for part in text.split(",")] if text else []
    if items is None or items in (ParamKind.STR, ParamKind.PATH):
        return list(parts)
    parsed: list[JsonValue] = []
    for index, part in enumerate(parts):
        item = _parse(items, part, items=None)
        if isinstance(item, BadValue):
            return BadValue(f"item {index}: {item.message}", item.hint)
        parsed.append(item)
    return parsed


def _parse_choice(param: ParamSpec, text: str) -> JsonValue | BadValue:
    """The choice whose written form is ``text`` (``3`` matches the number 3)."""
    for choice in param.choices or ():
        if _written(choice) == text.strip():
            return choice
    return check_value(param, text)


def _written(value: JsonValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
