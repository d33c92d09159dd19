"""Resolved plans cached by (keel.yaml bytes, request), so a repeated `keel run` skips the schema.

A hit is only used when every declared input and the working folder still exist; otherwise the
full resolver runs and reports exactly what is wrong. Entries are written after a successful
resolution only, atomically; an unreadable or malformed entry is ignored. The folder keeps at
most ``MAX_ENTRIES`` plans (oldest dropped first).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.base.atomic import atomic_write_bytes
from keel.base.digest import hash_bytes
from keel.model.params import Layer, ResolvedParam
from keel.model.plan import InputSpec, MetricSpec, RunPlan

log = logging.getLogger(__name__)
MAX_ENTRIES = 512


def plan_key(
    *,
    spec_digest: str,
    spec_file: Path,
    keel_version: str,
    experiment: str,
    profile: str,
    overrides: Mapping[str, str],
    seed: int | None,
    why: str | None,
) -> str:
    """The cache key of one resolution request."""
    request = [
        spec_digest,
        str(spec_file),
        keel_version,
        experiment,
        profile,
        sorted(overrides.items()),
        seed,
        why,
    ]
    return hash_bytes(json.dumps(request).encode()).hexdigest


def load_plan(cache_dir: Path, key: str) -> RunPlan | None:
    """The cached plan for ``key`` if present, well formed and its paths still exist."""
    try:
        plan = _plan_from_json(json.loads((cache_dir / "plans" / f"{key}.json").read_bytes()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # Dataset inputs are put in place by the run itself, so they need not exist yet.
    paths = [plan.cwd, *(plan.project_root / i.path for i in plan.inputs if i.dataset is None)]
    return plan if all(p.exists() for p in paths) else None


def save_plan(cache_dir: Path, key: str, plan: RunPlan) -> None:
    """Cache ``plan`` under ``key``; never fails the caller."""
    folder = cache_dir / "plans"
    try:
        atomic_write_bytes(
            folder / f"{key}.json", json.dumps(plan.to_json()).encode(), durable=False
        )
        _prune(folder)
    except OSError as exc:
        log.debug("plan cache not written to %s: %s", folder, exc)


def _plan_from_json(data: Any) -> RunPlan:  # parsed JSON, checked by use
    """Inverse of ``RunPlan.to_json``; KeyError/TypeError/ValueError when malformed."""
    return RunPlan(
        project=data["project"],
        project_root=Path(data["project_root"]),
        spec_file=Path(data["spec_file"]),
        spec_digest=data["spec_digest"],
        experiment=data["experiment"],
        experiment_def=data["experiment_def"],
        profile=data["profile"],
        profile_def=data["profile_def"],
        strict=data["strict"],
        params=tuple(
            ResolvedParam(name=n, value=v, layer=Layer(layer)) for n, v, layer in data["params"]
        ),
        seed=data["seed"],
        seed_source=data["seed_source"],
        argv=tuple(data["argv"]) if data["argv"] is not None else None,
        entrypoint=data["entrypoint"],
        cwd=Path(data["cwd"]),
        inputs=tuple(
            InputSpec(path=i[0], store=i[1], dataset=i[2] if len(i) > 2 else None)
            for i in data["inputs"]
        ),
        outputs=tuple(data["outputs"]),
        metrics_file=data["metrics_file"],
        metrics=tuple(MetricSpec(name=n, goal=g, tolerance=t) for n, g, t in data["metrics"]),
        env_allow=tuple(data["env_allow"]),
        why=data["why"],
        tags=tuple(data["tags"]),
        timeout_s=data["timeout_s"],
        extra_env=dict(data["extra_env"]),
    )


def _prune(folder: Path) -> None:
    entries = list(os.scandir(folder))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[: len(entries) - MAX_ENTRIES // 2]:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
