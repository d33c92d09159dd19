"""Parameter kinds, value layers and resolved values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keel.base.canonical import JsonValue


class ParamKind(StrEnum):
    """The declared type of a catalog parameter."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    CHOICE = "choice"
    LIST = "list"
    PATH = "path"


class Layer(StrEnum):
    """Where a resolved value came from, lowest precedence first."""

    CATALOG = "catalog"
    EXPERIMENT = "experiment"
    PROFILE = "profile"
    SWEEP = "sweep"
    CLI = "cli"

    @property
    def rank(self) -> int:
        """Precedence: a higher rank overrides a lower one."""
        return list(Layer).index(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedParam:
    """A parameter's final value and the layer it came from."""

    name: str
    value: JsonValue
    layer: Layer

    def as_json(self) -> dict[str, JsonValue]:
        """The form stored in manifests: ``{"value": ..., "source": ...}``."""
        return {"value": self.value, "source": self.layer.value}
