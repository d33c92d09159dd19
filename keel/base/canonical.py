"""Canonical JSON (RFC 8785): the stable bytes that manifests are hashed and stored as."""

from __future__ import annotations

import json
from typing import Union

from typing_extensions import TypeAliasType

# A TypeAliasType so that both mypy and pydantic (reading manifests back) understand it.
JsonValue = TypeAliasType(
    "JsonValue",
    "Union[bool, int, float, str, list[JsonValue], dict[str, JsonValue], None]",  # noqa: UP007
)


def canonical_json(value: object) -> bytes:
    """Serialise ``value`` to RFC 8785 canonical JSON bytes (sorted keys, no spaces, UTF-8)."""
    import rfc8785

    return bytes(rfc8785.dumps(value))  # type: ignore[arg-type]  # rfc8785 validates at runtime


def loads(data: bytes | str) -> JsonValue:
    """Parse JSON text."""
    result: JsonValue = json.loads(data)
    return result
