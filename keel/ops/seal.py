"""Capture after execution and seal the manifest: outputs, metrics, artifacts, logs, flags."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from keel.base.canonical import JsonValue
from keel.base.clock import iso
from keel.capture.data import hash_path, store_path
from keel.capture.git import code_fingerprint
from keel.capture.metrics import collect_metrics
from keel.capture.seeds import read_seeded
from keel.errors import UserError
from keel.execute import inrun
from keel.execute.executor import ExecResult
from keel.model.manifest import FileRecord, InputRecord, LogRecord, Manifest
from keel.model.plan import RunPlan

if TYPE_CHECKING:
    from keel.ops.run import _Before
    from keel.ops.workingcopy import DataCache
    from keel.ops.workspace import Workspace


def seal_after(
    ws: Workspace,
    plan: RunPlan,
    *,
    start: Manifest,
    before: _Before,
    result: ExecResult,
    run_dir: Path,
) -> Manifest:
    """The final manifest: ``start`` plus everything the run produced and every flag raised."""
    flags: list[str] = list(before.flags)
    code = dict(before.code)
    if before.code.get("captured"):
        now = code_fingerprint(plan.project_root)
        changed = now != before.code.get("fingerprint")
        code["changed_during_run"] = changed
        if changed:
            flags.append("code changed during run")
    inputs = _recheck_inputs(ws, plan, before.inputs, flags)
    outputs = tuple(_capture_output(ws, plan, rel, flags) for rel in plan.outputs)
    metrics, problems = collect_metrics(
        metrics_file=(plan.project_root / plan.metrics_file) if plan.metrics_file else None,
        api_log=run_dir / inrun.METRICS_FILE,
        specs=plan.metrics,
    )
    flags.extend(problems)
    seeds = replace(start.seeds, seeded=read_seeded(run_dir / inrun.SEEDED_FILE))
    run = replace(
        start.run,
        status=result.status,
        started_at=iso(result.started_at),
        ended_at=iso(result.ended_at),
        duration_s=result.duration_s,
        exit_code=result.exit_code,
        signal=result.signal,
    )
    if result.reason and result.status.value != "succeeded":
        flags.append(f"run {result.status.value}: {result.reason}")
    return replace(
        start,
        run=run,
        seeds=seeds,
        code=code,
        inputs=inputs,
        outputs=outputs,
        artifacts=_artifacts(ws, plan, run_dir, flags),
        metrics=metrics,
        logs=_logs(ws, run_dir),
        flags=tuple(flags),
    )


R = TypeVar("R", bound=FileRecord)
_RECORD_KEYS = ("kind", "digest", "size", "files", "stored")


def file_record(cls: type[R], rel: str, record: Mapping[str, JsonValue]) -> R:
    """A manifest file record (``FileRecord`` or ``InputRecord``) from a capture.data record."""
    return cls(path=rel, **{k: record[k] for k in _RECORD_KEYS if k in record})  # type: ignore[arg-type]


def _recheck_inputs(
    ws: Workspace, plan: RunPlan, records: tuple[InputRecord, ...], flags: list[str]
) -> tuple[InputRecord, ...]:
    if not any(rec.dataset for rec in records):
        return tuple(_recheck_input(rec, plan, flags, None) for rec in records)
    from keel.ops.workingcopy import DataCache

    cache = DataCache.open(ws)
    try:
        return tuple(_recheck_input(rec, plan, flags, cache) for rec in records)
    finally:
        cache.save()


def _recheck_input(
    rec: InputRecord, plan: RunPlan, flags: list[str], cache: DataCache | None
) -> InputRecord:
    if rec.kind == "missing":
        return rec
    digest_after: JsonValue
    if rec.dataset is not None and cache is not None:
        # A dataset working copy is re-checked through the caches: one stat per file.
        from keel.ops.lineage import recheck_dataset_input

        try:
            digest_after = recheck_dataset_input(plan.project_root, rec, cache)
        except UserError as exc:
            flags.append(f"input {rec.path} could not be checked after the run: {exc}")
            return rec
    else:
        digest_after = hash_path(plan.project_root / rec.path).get("digest")
    changed = digest_after != rec.digest
    if changed:
        flags.append(f"input {rec.path} changed during run")
    return replace(
        rec,
        digest_after=digest_after if isinstance(digest_after, str) else None,
        changed_during_run=changed,
    )


def _capture_output(ws: Workspace, plan: RunPlan, rel: str, flags: list[str]) -> FileRecord:
    path = plan.project_root / rel
    if not path.exists():
        flags.append(f"declared output {rel} was not produced")
        return FileRecord(path=rel, kind="missing")
    return file_record(FileRecord, rel, store_path(path, ws.objects))


def _artifacts(
    ws: Workspace, plan: RunPlan, run_dir: Path, flags: list[str]
) -> tuple[FileRecord, ...]:
    log_file = run_dir / inrun.ARTIFACTS_FILE
    if not log_file.exists():
        return ()
    seen: dict[str, FileRecord] = {}
    for line in log_file.read_text("utf-8").splitlines():
        path = Path(json.loads(line)["path"])
        try:
            rel = path.relative_to(plan.project_root).as_posix()
        except ValueError:
            rel = str(path)
        if not path.exists():
            flags.append(f"artifact {rel} disappeared before the run ended")
            continue
        seen[rel] = file_record(FileRecord, rel, store_path(path, ws.objects))
    return tuple(seen[k] for k in sorted(seen))


def _logs(ws: Workspace, run_dir: Path) -> dict[str, LogRecord]:
    logs = {}
    for name in ("stdout", "stderr"):
        path = run_dir / f"{name}.log"
        if path.exists():
            digest = ws.objects.put_file(path)
            logs[name] = LogRecord(digest=str(digest), size=path.stat().st_size)
    return logs
