"""Layer 3: compose catalog, experiment, profile and command-line values into a RunPlan."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.resolve.overrides import parse_override
    from keel.resolve.render import ENV_PREFIX, arg_text, env_text, render_argv
    from keel.resolve.resolve import catalog_rows, resolve_run

_LAZY = {
    "ENV_PREFIX": "keel.resolve.render",
    "arg_text": "keel.resolve.render",
    "catalog_rows": "keel.resolve.resolve",
    "env_text": "keel.resolve.render",
    "parse_override": "keel.resolve.overrides",
    "render_argv": "keel.resolve.render",
    "resolve_run": "keel.resolve.resolve",
}

__all__ = [
    "ENV_PREFIX",
    "arg_text",
    "catalog_rows",
    "env_text",
    "parse_override",
    "render_argv",
    "resolve_run",
]


def __getattr__(name: str) -> object:
    """Import the submodule that defines ``name`` on first use (keeps this package light)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
