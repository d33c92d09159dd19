"""One pipeline stage as a task, and a cached stage's outputs put back in place.

A stage runs in place, in the project tree, as a normal sealed run (:func:`execute_plan`)
whose manifest carries the ``stage`` facet (its key and components). Its outputs declared as
datasets are registered after it succeeds, as `keel run` does. A stage whose key matches an
earlier run gets that run's outputs back from the store instead (:func:`restore_outputs`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from keel.base.canonical import JsonValue
from keel.base.digest import Digest
from keel.capture.data import restore_path
from keel.errors import KeelError, UserError
from keel.execute.pool import current_worker
from keel.model.manifest import ExecutorInfo, Manifest
from keel.model.plan import RunPlan
from keel.ops.pipeline_graph import norm
from keel.ops.run import ExecOptions, execute_plan
from keel.ops.stagekey import manifest_json
from keel.ops.workspace import Workspace
from keel.spec.facts import ProjectFacts


@dataclass(frozen=True, slots=True, kw_only=True)
class StageTask:
    """Everything a worker needs to run one stage (no open handles: it is pickled)."""

    facts: ProjectFacts
    profile: str
    environ: dict[str, str]
    plan: RunPlan
    stage: dict[str, JsonValue]
    pool: str = "local"
    parallelism: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StageRun:
    """The sealed run of a stage: its id, seal and manifest (as JSON, to travel light)."""

    run_id: str
    digest: str
    manifest: dict[str, JsonValue]


def run_stage(task: StageTask) -> StageRun:
    """Run a stage in a worker: open the workspace there, run, seal, close."""
    ws = Workspace(facts=task.facts, profile=task.profile, environ=task.environ)
    try:
        return run_stage_in(ws, task)
    finally:
        ws.close()


def run_stage_in(ws: Workspace, task: StageTask) -> StageRun:
    """Run a stage with an open workspace (the local pool runs it in keel's own process)."""
    plan = task.plan

    def register(manifest: Manifest) -> Manifest:
        from keel.ops.lineage import register_outputs

        return register_outputs(ws, plan, manifest)[0]

    executor = None
    if task.pool != "local":
        executor = ExecutorInfo(
            name=task.pool, parallelism=task.parallelism, worker=current_worker()
        )
    options = ExecOptions(stage=task.stage, executor=executor, amend=register)
    outcome = execute_plan(ws, plan, options=options)
    return StageRun(
        run_id=outcome.run_id, digest=str(outcome.digest), manifest=outcome.manifest.to_json()
    )


def stderr_tail(ws: Workspace, manifest: Mapping[str, JsonValue]) -> str | None:
    """The last non-empty line the run wrote to stderr, if any."""
    logs = manifest.get("logs")
    record = logs.get("stderr") if isinstance(logs, dict) else None
    if not isinstance(record, dict):
        return None
    try:
        data = ws.objects.get_bytes(Digest.parse(str(record.get("digest"))))
    except KeelError:
        return None
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else None


def restore_outputs(ws: Workspace, *, run_id: str, paths: Sequence[str]) -> None:
    """Put the recorded content of ``paths`` (outputs of run ``run_id``) back in the project.

    Whatever is at each path is replaced by the recorded content, which is written beside it
    first: a failed restore leaves the path as it was.

    Raises:
        keel.errors.UserError: the run or its output record is gone, or was never stored.
        keel.errors.StoreError: an object is missing or corrupt.
    """
    if not paths:
        return
    manifest = manifest_json(ws, run_id)
    if manifest is None:
        raise UserError(f"run {run_id} is not in the store")
    records = manifest.get("outputs")
    by_path = (
        {norm(str(r.get("path"))): r for r in records if isinstance(r, dict)}
        if isinstance(records, list)
        else {}
    )
    for path in paths:
        record = by_path.get(norm(path))
        if record is None:
            raise UserError(f"run {run_id} recorded no output {path}")
        _restore_one(ws, record, dest=ws.root / path)


def _restore_one(ws: Workspace, record: Mapping[str, JsonValue], *, dest: Path) -> None:
    staged = dest.with_name(f".{dest.name}.keel-restore")
    _remove(staged)
    try:
        restore_path(
            record,
            staged,
            fetch=lambda d: ws.objects.get_bytes(Digest.parse(d)),
            copy=lambda d, p: ws.objects.copy_to(Digest.parse(d), p),
        )
    except BaseException:
        _remove(staged)
        raise
    if not (staged.exists() or staged.is_symlink()):
        return  # recorded as missing: nothing to put back
    if staged.is_dir() or (dest.is_dir() and not dest.is_symlink()):
        _remove(dest)
    os.replace(staged, dest)  # a file replaces a file (or a symlink) atomically


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
