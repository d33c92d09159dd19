"""The pydantic base and field types every keel.yaml model is built from.

Models are frozen, forbid unknown keys and validate strictly: YAML already gives typed values,
so ``"5"`` is never quietly read as ``5``. Lists arrive from YAML as ``list`` and are stored as
tuples; numbers accept ints and floats but never booleans.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainValidator
from pydantic_core import PydanticCustomError

from keel.spec.problems import describe_value

T = TypeVar("T")

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
"""Shape of experiment and profile names."""

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""Shape of an environment variable name."""


class SpecModel(BaseModel):
    """Base of the keel.yaml models: immutable, strict, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _as_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _none_as_empty(value: object) -> object:
    return {} if value is None else value


def _number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "keel", "expected a number, got {got}", {"got": describe_value(value)}
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("keel", "expected a finite number, got {got}", {"got": value})
    return value


def _env_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise PydanticCustomError(
        "keel",
        "expected a string, got {got}; quote the value",
        {"got": describe_value(value)},
    )


Seq = Annotated[tuple[T, ...], BeforeValidator(_as_tuple)]
"""A YAML list, stored as a tuple."""

Section = Annotated[T, BeforeValidator(_none_as_empty)]
"""A mapping section where an empty value (``key:`` with nothing after it) means ``{}``."""

Number = Annotated[int | float, PlainValidator(_number)]
"""An int or a finite float, never a bool; ints stay ints."""

EnvText = Annotated[str, PlainValidator(_env_text)]
"""An environment variable value: a string, or a number written without quotes."""
