"""Problems found in keel.yaml, located by key path and line, gathered before raising.

A key path is a tuple such as ``("experiments", "train", "inputs", 0)`` and is shown as
``experiments.train.inputs[0]``. :class:`LineMap` maps shown paths to 1-based line numbers;
a path with no line of its own is located at its nearest ancestor's line.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from keel.base.suggest import closest, did_you_mean
from keel.errors import Problem, ValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

KeyPath: TypeAlias = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def format_key(path: KeyPath) -> str:
    """Show a key path: ``("a", "b", 0)`` becomes ``a.b[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def format_number(value: int | float) -> str:
    """Minimal text for a number: ``1.0``, ``0.0001``, ``200``."""
    return repr(value)


def describe_value(value: object) -> str:
    """Name a value in a message: ``'abc' (text)``, ``2.5``, ``true``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return f"'{value}' (text)"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class LineMap(BaseModel):
    """1-based line numbers of the keys and list items of a YAML file, by shown key path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lines: dict[str, int] = pydantic.Field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of ``path``, else of its nearest ancestor that has one."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(format_key(path[:end]))
            if line is not None:
                return line
        return None


@dataclass(slots=True)
class Problems:
    """Collects problems while a file is checked, then raises them all as one error."""

    file: str | None
    lines: LineMap = field(default_factory=LineMap)
    found: list[Problem] = field(default_factory=list)

    def add(
        self, path: KeyPath, message: str, *, hint: str | None = None, line: int | None = None
    ) -> None:
        """Record a problem at ``path`` (its line is looked up unless given)."""
        problem = Problem(
            file=self.file,
            line=line if line is not None else self.lines.line_of(path),
            key=format_key(path) or None,
            message=message,
            hint=hint,
        )
        if problem not in self.found:
            self.found.append(problem)

    def validate(self, model: type[M], raw: object, *, path: KeyPath) -> M | None:
        """Validate ``raw`` as ``model``, recording every error under ``path``.

        When some keys are wrong, the model is built from the others (and None when that fails
        too), so later checks can still find the problems in the rest of the entry.
        """
        try:
            return model.model_validate(raw)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
        for error in errors:
            self._add_pydantic(error, model=model, prefix=path)
        if not isinstance(raw, dict):
            return None
        failed = {error["loc"][0] for error in errors if error["loc"]}
        try:
            return model.model_validate({k: v for k, v in raw.items() if k not in failed})
        except pydantic.ValidationError:
            return None

    def raise_if_any(self) -> None:
        """Raise one ValidationError listing every problem, in line order.

        Raises:
            keel.errors.ValidationError: when any problem was recorded.
        """
        if self.found:
            ordered = sorted(self.found, key=lambda p: p.line or 0)
            raise ValidationError(ordered)

    def _add_pydantic(
        self, error: ErrorDetails, *, model: type[BaseModel], prefix: KeyPath
    ) -> None:
        loc = tuple(error["loc"])
        message, hint = _translate(error, model)
        self.add(prefix + loc, message, hint=hint)


def _translate(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str | None]:
    """A keel message and hint for one pydantic error."""
    kind = error["type"]
    got = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = _model_at(model, tuple(error["loc"])[:-1])
        options = list(owner.model_fields) if owner else []
        return "unknown key", did_you_mean(str(error["loc"][-1]), options)
    if kind == "missing":
        return "required key is missing", None
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(got)}", _type_hint(kind, got)
    if kind in ("enum", "literal_error"):
        valid = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        near = closest(str(got), valid.split(", "))
        return f"must be one of: {valid}; got {describe_value(got)}", (
            f"did you mean '{near}'?" if near else None
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        word = "at least" if kind == "greater_than_equal" else "greater than"
        return f"must be {word} {bound}, got {describe_value(got)}", None
    return str(error["msg"]).removeprefix("Value error, "), None


def _type_hint(kind: str, got: object) -> str | None:
    if kind == "bool_type" and isinstance(got, str):
        return "write true or false without quotes (YAML 1.2 reads yes/no/on/off as text)"
    if kind in ("tuple_type", "list_type") and isinstance(got, str):
        return f"write a list: [{got}]"
    return None


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the value at ``loc`` inside ``model``, if any."""
    current: object = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) in (tuple, list, dict):
            current = typing.get_args(current)[-1 if typing.get_origin(current) is dict else 0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: object) -> object:
    """Strip ``Annotated`` and ``X | None`` down to the type that carries structure."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0]
        else:
            return annotation
