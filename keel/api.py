"""The stable Python API for driving keel from code (the CLI is a thin layer over this)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from keel.ops.run import RunOutcome, RunRequest, run_experiment
from keel.ops.workspace import Workspace

__all__ = ["RunOutcome", "Workspace", "run"]


def run(
    experiment: str,
    *,
    project: str | Path | None = None,
    params: Mapping[str, object] | None = None,
    profile: str | None = None,
    seed: int | None = None,
    why: str | None = None,
    allow_drift: str | None = None,
) -> RunOutcome:
    """Run ``experiment`` of the project at or above ``project`` and return the sealed run.

    ``params`` values are given as on the command line (``{"lr": 0.1}`` or ``{"lr": "0.1"}``);
    they are validated against the catalog exactly like ``-p``. ``allow_drift`` is the reason
    recorded when a strict profile runs despite drift from keel.lock (like ``--allow-drift``).

    Raises:
        keel.errors.StrictViolation: a strict profile refused to run.
        keel.errors.ValidationError: bad parameters or keel.yaml.
    """
    ws = Workspace.open(Path(project) if project else None, profile=profile)
    try:
        overrides = {k: _as_text(v) for k, v in (params or {}).items()}
        return run_experiment(
            ws,
            RunRequest(
                experiment=experiment,
                overrides=overrides,
                seed=seed,
                why=why,
                allow_drift=allow_drift,
            ),
        )
    finally:
        ws.close()


def _as_text(value: object) -> str:
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value)
