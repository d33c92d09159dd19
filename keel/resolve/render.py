"""Turn resolved values into command-line arguments and environment variables."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping

from keel.base.canonical import JsonValue
from keel.spec.template import SEED, parse_template

ENV_PREFIX = "KEEL_PARAM_"
"""Every resolved parameter reaches the run as ``KEEL_PARAM_<NAME>`` too."""


def arg_text(value: JsonValue) -> str:
    """A value as one command-line argument: ``1.0``, ``0.0001``, ``true``, ``a,b``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return ",".join(arg_text(item) for item in value)
    if isinstance(value, dict):
        return _compact_json(value)
    return "" if value is None else str(value)


def env_text(value: JsonValue) -> str:
    """A value as an environment variable: scalars as :func:`arg_text`, lists as JSON."""
    if isinstance(value, list | dict):
        return _compact_json(value)
    return arg_text(value)


def _compact_json(value: JsonValue) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render_argv(command: str, values: Mapping[str, JsonValue], *, seed: int) -> tuple[str, ...]:
    """Split ``command`` like a shell, then fill each argument's ``{name}`` placeholders.

    Splitting first keeps a value with spaces in one argument. ``{{`` and ``}}`` are literal
    braces. The command was checked when keel.yaml was loaded, so every name is known.
    """
    filled = {**values, SEED: seed}
    argv: list[str] = []
    for token in shlex.split(command):
        pieces = parse_template(token)
        argv.append(
            "".join(
                text + ("" if name is None else arg_text(filled[name])) for text, name in pieces
            )
        )
    return tuple(argv)


def param_env(values: Mapping[str, JsonValue]) -> dict[str, str]:
    """``{"KEEL_PARAM_<NAME>": text}`` for every value."""
    return {ENV_PREFIX + name.upper(): env_text(value) for name, value in values.items()}
