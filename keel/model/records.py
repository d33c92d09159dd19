"""Versioned records: the shared way stored records (manifests, dataset versions, noise profiles,
sweeps) are turned into JSON and read back.

A record carries a kind tag and a ``schema_version``. :func:`read_record` checks both, decodes
the record strictly by its type hints (:mod:`keel.model.decode`), and for a record that does not
fit lets pydantic say exactly what is wrong, in one :class:`keel.errors.UserError`.
:func:`to_json_value` is the inverse: dataclasses, enums and tuples as plain JSON, leaving out
fields marked ``omit_none`` while they are None (so a record keeps the bytes, and the digest, it
had before such a field existed).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import TypeVar

from keel.base.canonical import JsonValue

_T = TypeVar("_T")

OMIT_NONE = {"omit_none": True}
"""Field metadata: leave the field out of the JSON while it is None."""


def to_json_value(value: object) -> JsonValue:
    """``value`` (dataclasses, enums, mappings, sequences, scalars) as plain JSON.

    Raises:
        TypeError: a value that has no JSON form.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json_value(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get("omit_none") and getattr(value, f.name) is None)
        }
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a record field of type {type(value).__name__} is not JSON")


def check_header(
    data: object,
    *,
    tag_key: str,
    tag: str,
    current: int,
    what: str,
    remedy: str,
) -> dict[str, JsonValue]:
    """``data`` as a record of kind ``tag`` at a schema version this keel reads.

    Raises:
        keel.errors.UserError: not such a record, no valid ``schema_version``, or one newer
            than ``current`` (upgrade keel).
    """
    from keel.errors import UserError

    if not isinstance(data, dict) or data.get(tag_key) != tag:
        raise UserError(f"the object is not a keel {what}; {remedy}")
    found = data.get("schema_version")
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise UserError(f"{what} has no valid schema_version ({found!r}); {remedy}")
    if found > current:
        raise UserError(
            f"{what} schema_version {found} is newer than this keel understands ({current}); "
            "upgrade keel to read it"
        )
    return data


def decode_record(cls: type[_T], data: dict[str, JsonValue], *, what: str, remedy: str) -> _T:
    """Build ``cls`` from ``data`` strictly; a refused record is explained by pydantic.

    Raises:
        keel.errors.UserError: the record does not fit ``cls`` (the first problem is named).
    """
    from keel.model.decode import Decoder, Refused

    try:
        return Decoder().record(cls, data)
    except Refused as refused:
        reason = str(refused)
    from pydantic import TypeAdapter
    from pydantic import ValidationError as PydanticError

    from keel.errors import UserError

    try:
        return TypeAdapter(cls).validate_python(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        count = exc.error_count()
        reason = f"{count} problem{'s' if count > 1 else ''}; first: {where}: {first['msg']}"
    raise UserError(f"{what} is not valid ({reason}); {remedy}")
