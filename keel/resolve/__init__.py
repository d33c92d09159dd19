"""Layer 3: compose catalog, experiment, profile and command-line values into a RunPlan."""

from __future__ import annotations

from keel.resolve.overrides import parse_override
from keel.resolve.render import ENV_PREFIX, arg_text, env_text, render_argv
from keel.resolve.resolve import catalog_rows, resolve_run

__all__ = [
    "ENV_PREFIX",
    "arg_text",
    "catalog_rows",
    "env_text",
    "parse_override",
    "render_argv",
    "resolve_run",
]
