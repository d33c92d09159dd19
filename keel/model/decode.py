"""Build frozen dataclass values from parsed JSON by their type hints, strictly.

Manifests (and other stored records) are frozen dataclasses. pydantic validates them, but its
schema for a manifest takes ~150 ms to build in a fresh process — more than a whole `keel diff`
or `keel show` should cost. This decoder walks the dataclass fields and their type hints and
checks every value as strictly (unknown fields, missing fields, wrong types and values outside a
``Literal`` are refused with :class:`Refused`); callers then fall back to pydantic, so a bad
record is reported with pydantic's full error. For a valid record both give equal values
(``float`` fields accept an int and store a float, as pydantic does; ``JsonValue`` fields keep
the parsed JSON as it is). Standard library only.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Literal, Union, get_args, get_origin

from keel.base.canonical import JsonValue

_T = typing.TypeVar("_T")


class Refused(Exception):
    """The data does not fit the declared types; the validating reader reports why."""


class Decoder:
    """Builds dataclass values from JSON by their type hints (resolved once per class).

    ``record(cls, data)`` returns an instance of ``cls`` or raises :class:`Refused`.
    """

    def __init__(self) -> None:
        self._hints: dict[type, dict[str, object]] = {}

    def record(self, cls: type[_T], data: JsonValue) -> _T:
        if not isinstance(data, dict):
            raise Refused(f"{cls.__name__} is not an object")
        hints = self._hints.get(cls)
        if hints is None:
            hints = self._hints[cls] = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if not data.keys() <= fields.keys():
            raise Refused(f"{cls.__name__} has unknown fields {sorted(data.keys() - fields)}")
        values: dict[str, object] = {}
        for name, f in fields.items():
            if name in data:
                values[name] = self.value(hints[name], data[name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise Refused(f"{cls.__name__}.{name} is missing")
        return cls(**values)

    def value(self, hint: object, data: JsonValue) -> object:
        if hint is JsonValue:
            return data
        origin, args = get_origin(hint), get_args(hint)
        if origin in (Union, types.UnionType):
            if data is None and type(None) in args:
                return None
            others = [a for a in args if a is not type(None)]
            if len(others) != 1:
                raise Refused(f"unsupported union {hint}")
            return self.value(others[0], data)
        if origin is Literal:
            if any(type(data) is type(a) and data == a for a in args):
                return data
            raise Refused(f"{data!r} is not one of {args}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis and isinstance(data, list):
            return tuple(self.value(args[0], item) for item in data)
        if origin is dict and isinstance(data, dict):
            return {key: self.value(args[1], item) for key, item in data.items()}
        if isinstance(hint, type):
            return self._plain(hint, data)
        raise Refused(f"{data!r} does not fit {hint}")

    def _plain(self, hint: type, data: JsonValue) -> object:
        if dataclasses.is_dataclass(hint):
            return self.record(hint, data)
        if issubclass(hint, enum.Enum):
            try:
                return hint(data)
            except ValueError as exc:
                raise Refused(str(exc)) from exc
        if hint is float and isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
        if hint in (bool, str) and type(data) is hint:
            return data
        if hint is int and type(data) is int:
            return data
        raise Refused(f"{data!r} is not a {hint.__name__}")
