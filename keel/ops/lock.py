"""`keel lock`: record each experiment's resolved config, environment and input digests.

Also the parts `keel check` shares with it: resolving an experiment under a profile (through the
plan cache, so an unchanged keel.yaml is not parsed again), the project-wide facts captured once
per command (environment, code), and an experiment's current state.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from keel import __version__
from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue
from keel.base.digest import hash_bytes
from keel.base.suggest import did_you_mean
from keel.capture.environment import capture_environment, recorded_env
from keel.capture.git import capture_code
from keel.errors import UserError
from keel.model.dataset import DatasetVersion
from keel.model.manifest import ParamValue
from keel.model.plan import RunPlan
from keel.ops.statcache import StatCache, cached_sink, digest_path
from keel.ops.workspace import Workspace
from keel.resolve.plancache import load_plan, plan_key, save_plan
from keel.spec.lockfile import (
    LOCK_FILE,
    CodeState,
    EnvironmentState,
    ExperimentState,
    InputState,
    Lock,
    thread_vars,
    write_lock,
)
from keel.spec.lockread import read_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockOutcome:
    """The lock written, where, and which experiments were (re)locked."""

    path: Path
    lock: Lock
    locked: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Facts shared by every experiment of a project, captured once per command."""

    environment: dict[str, JsonValue]
    code: CodeState | None


def lock_experiments(
    ws: Workspace,
    experiments: Sequence[str] = (),
    *,
    profile: str | None = None,
    python: str | None = None,
) -> LockOutcome:
    """Write keel.lock for ``experiments`` (default: all), keeping other experiments' entries.

    Args:
        ws: the project.
        experiments: names to lock; empty locks every experiment and rewrites the whole file.
        profile: the profile to resolve with (default: the workspace's).
        python: the interpreter whose environment is recorded (default: the one keel runs in).

    Raises:
        keel.errors.UserError: an unknown experiment (with a suggestion), a missing input, an
            environment that cannot be read, or (locking some experiments) a damaged keel.lock.
    """
    known = spec_experiments(ws)
    names = tuple(dict.fromkeys(experiments)) or known
    check_names(names, known)
    path = ws.root / LOCK_FILE
    kept: dict[str, ExperimentState] = {}
    if experiments and path.exists():
        kept = {k: v for k, v in read_lock(path).experiments.items() if k in known}
    plans = [plan_for(ws, name, profile or ws.profile) for name in names]
    cache = StatCache.open(ws.cache_dir)
    snapshot = take_snapshot(ws.root, ws.cache_dir, cache, python=python, environ=ws.environ)
    states = {
        p.experiment: experiment_state(p, snapshot, cache, environ=ws.environ, ws=ws)
        for p in plans
    }
    cache.save()
    lock = Lock(experiments=dict(sorted({**kept, **states}.items())), keel_version=__version__)
    write_lock(path, lock)
    return LockOutcome(path=path, lock=lock, locked=names)


def check_names(names: Sequence[str], known: Sequence[str], *, also: Sequence[str] = ()) -> None:
    """Raise one UserError naming every unknown experiment with a did-you-mean hint."""
    options = sorted({*known, *also})
    unknown = [n for n in names if n not in options]
    if unknown:
        raise UserError(
            "; ".join(f"unknown experiment '{n}': {did_you_mean(n, options)}" for n in unknown)
        )


def plan_for(ws: Workspace, experiment: str, profile: str, *, check_inputs: bool = True) -> RunPlan:
    """The plan a plain ``keel run EXPERIMENT`` would use under ``profile`` (plan-cached).

    Raises:
        keel.errors.ValidationError: unknown experiment or profile, or (``check_inputs``) a
            missing input.
    """
    key = plan_key(
        spec_digest=ws.facts.digest,
        spec_file=ws.facts.spec_file,
        keel_version=__version__,
        experiment=experiment,
        profile=profile,
        overrides={},
        seed=None,
        why=None,
    )
    plan = load_plan(ws.cache_dir, key)
    if plan is None:
        from keel.resolve.resolve import resolve_run

        plan = resolve_run(
            ws.project, experiment=experiment, profile=profile, check_inputs=check_inputs
        )
        save_plan(ws.cache_dir, key, plan)
    return plan


def spec_experiments(ws: Workspace) -> tuple[str, ...]:
    """The experiments keel.yaml declares, cached by its digest (parsing it costs ~150 ms)."""
    key = hash_bytes(f"{__version__}\0{ws.facts.digest}".encode()).hexdigest[:32]
    path = ws.cache_dir / "lock" / f"experiments-{key}.json"
    try:
        names = json.loads(path.read_bytes())
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return tuple(names)
    except (OSError, ValueError):
        pass
    found = tuple(ws.project.experiments)
    try:
        atomic_write_bytes(path, json.dumps(found).encode(), durable=False)
    except OSError as exc:  # a read-only project still works, only slower
        log.debug("experiment names not cached in %s: %s", path, exc)
    return found


def take_snapshot(
    root: Path,
    cache_dir: Path,
    cache: StatCache,
    *,
    python: str | None,
    environ: Mapping[str, str],
    with_code: bool = True,
) -> Snapshot:
    """Capture the environment facet and (``with_code``) the code state, concurrently.

    Raises:
        keel.errors.UserError: the environment of ``python`` cannot be read.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        env = pool.submit(
            capture_environment, project_root=root, environ=environ, cache_dir=cache_dir,
            python=python,
        )  # fmt: skip
        code = code_state(root, cache) if with_code else None
        facet = env.result()
    if EnvironmentState.from_facet(facet) is None:
        reason = facet.get("reason") or _section_reason(facet)
        raise UserError(
            f"cannot read the environment of {python or sys.executable}: {reason}; "
            "pass a working interpreter with --python (or KEEL_PYTHON)"
        )
    return Snapshot(environment=facet, code=code)


def _section_reason(facet: Mapping[str, JsonValue]) -> str:
    for section in ("packages", "python"):
        value = facet.get(section)
        if isinstance(value, dict) and value.get("reason"):
            return str(value["reason"])
    return "not captured"


def code_state(root: Path, cache: StatCache) -> CodeState:
    """The git state of ``root``; keel.lock itself does not count as an uncommitted change."""
    facet = capture_code(root, cached_sink(cache))
    subdir = facet.get("project_subdir")
    prefix = "" if subdir in (None, ".", "") else f"{subdir}/"
    return CodeState.from_facet(facet, ignore={f"{prefix}{LOCK_FILE}"})


def experiment_state(
    plan: RunPlan,
    snapshot: Snapshot,
    cache: StatCache,
    *,
    environ: Mapping[str, str],
    ws: Workspace | None = None,
) -> ExperimentState:
    """The state of one experiment now: its plan, the snapshot and its inputs' digests.

    With ``ws``, a dataset input's state is the version it resolves to now (``NAME`` means the
    latest), whether or not a working copy exists: that is what a run would use.

    Raises:
        keel.errors.ValidationError: (with ``ws``) an unknown dataset or version.
    """
    versions = _dataset_versions(ws, plan) if ws is not None else {}
    env = EnvironmentState.from_facet(snapshot.environment)
    if env is not None:
        env = replace(env, threads=thread_vars(recorded_env(environ, plan.env_allow)))
    command = plan.experiment_def.get("command")
    return ExperimentState(
        name=plan.experiment,
        profile=plan.profile,
        params={p.name: ParamValue(value=p.value, source=p.layer.value) for p in plan.params},
        seed=plan.seed,
        command=command if isinstance(command, str) else None,
        entrypoint=plan.entrypoint,
        inputs=tuple(
            _version_input(i.path, versions[n])
            if n in versions
            else _input(plan.project_root, i.path, cache)
            for n, i in enumerate(plan.inputs)
        ),
        environment=env,
        code=snapshot.code,
    )


def _dataset_versions(ws: Workspace, plan: RunPlan) -> dict[int, DatasetVersion]:
    if not any(i.dataset for i in plan.inputs):
        return {}
    from keel.ops.lineage import resolve_dataset_inputs

    return resolve_dataset_inputs(ws, plan)


def _version_input(rel: str, version: DatasetVersion) -> InputState:
    return InputState(
        path=rel, kind=version.kind, digest=version.digest, size=version.size,
        files=version.files if version.kind == "dir" else None, dataset=version.name,
        version=version.version,
    )  # fmt: skip


def _input(root: Path, rel: str, cache: StatCache) -> InputState:
    record = digest_path(root / rel, cache)

    def number(key: str) -> int | None:
        """An integer field of the record, or None."""
        value = record.get(key)
        return value if isinstance(value, int) else None

    digest = record.get("digest")
    return InputState(
        path=rel,
        kind=str(record.get("kind")),
        digest=digest if isinstance(digest, str) else None,
        size=number("size"),
        files=number("files"),
    )
