"""keel: reproducible experiment orchestration.

The in-run API (``log_metric``, ``log_artifact``, ``params``, ``seed_everything``, ``fold``)
imports only the standard library, so ``import keel`` inside a user's script costs almost
nothing; the rest of the public surface (``keel.api``) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "KeelError",
    "RunOutcome",
    "UserError",
    "Workspace",
    "__version__",
    "fold",
    "log_artifact",
    "log_metric",
    "params",
    "run",
    "seed_everything",
]

_LAZY = {
    "fold": "keel.execute.inrun",
    "log_metric": "keel.execute.inrun",
    "log_artifact": "keel.execute.inrun",
    "params": "keel.execute.inrun",
    "seed_everything": "keel.execute.inrun",
    "KeelError": "keel.errors",
    "UserError": "keel.errors",
    "Workspace": "keel.api",
    "RunOutcome": "keel.api",
    "run": "keel.api",
}

if TYPE_CHECKING:
    from keel.api import RunOutcome, Workspace, run
    from keel.errors import KeelError, UserError
    from keel.execute.inrun import fold, log_artifact, log_metric, params, seed_everything


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keel' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
