"""The run use case: resolve, capture before, execute, capture after, seal, record.

The run never touches the metadata database: it writes objects and refs only
(``active/<id>`` while running, ``runs/<id>`` when sealed, ``pending/<id>`` until indexed).
The index catches up on the next read (see ``keel.ops.sync``). This keeps SQLAlchemy off the
run path and means parallel runs never contend for a database lock.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from keel import __version__
from keel.base.canonical import JsonValue, canonical_json
from keel.base.clock import iso
from keel.base.digest import Digest, hash_bytes, hash_file
from keel.base.user import os_user
from keel.capture.data import hash_path, store_path
from keel.capture.environment import capture_environment
from keel.capture.git import capture_code
from keel.capture.hardware import capture_hardware
from keel.capture.seeds import HASHSEED_DERIVATION, pythonhashseed
from keel.errors import ExecutionError, StrictViolation
from keel.execute import inrun
from keel.execute.executor import ExecRequest, ExecResult, Executor, OutputCallback, _ignore_output
from keel.execute.local import LocalExecutor
from keel.model.dataset import DatasetVersion
from keel.model.manifest import (
    ConfigInfo,
    ExecutorInfo,
    InputRecord,
    Manifest,
    ParamValue,
    RunInfo,
    SeedInfo,
)
from keel.model.plan import RunPlan
from keel.model.run import RunStatus, hostname, new_run_id
from keel.ops.seal import file_record, seal_after
from keel.ops.workspace import Workspace
from keel.resolve.plancache import load_plan, plan_key, save_plan

EventCallback = Callable[[str, Mapping[str, JsonValue]], None]


def _no_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """The default progress callback: do nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """What the user asked for."""

    experiment: str
    overrides: Mapping[str, str] = field(default_factory=dict)
    seed: int | None = None
    why: str | None = None
    allow_drift: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """The sealed run: its manifest, the digest that seals it, and the dataset versions its
    outputs were registered as."""

    manifest: Manifest
    digest: Digest
    datasets: tuple[DatasetVersion, ...] = ()

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.manifest.run.id


@dataclass(frozen=True, slots=True, kw_only=True)
class _Before:
    code: dict[str, JsonValue]
    environment: dict[str, JsonValue]
    hardware: dict[str, JsonValue]
    inputs: tuple[InputRecord, ...]
    flags: tuple[str, ...] = ()


def _same(manifest: Manifest) -> Manifest:
    return manifest


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecOptions:
    """How to execute a plan, beyond the plan itself (used by reproduce, why, determinism).

    ``environ`` is the child's base environment (default: the workspace's); ``python`` is the
    interpreter whose folder goes first on PATH and whose packages are recorded (default: the
    one keel runs in); ``amend`` may add to the manifest just before it is sealed.

    ``code`` is a code facet captured already (a sweep captures it once, then runs every trial
    in a frozen copy of that code); ``executor`` overrides what the manifest records about the
    executor (a pool or Dask worker); ``sweep`` and ``stage`` are recorded in the manifest from
    the start record on (see ``keel.model.sweep.TrialInfo`` and ``keel.ops.pipeline``).
    """

    environ: Mapping[str, str] | None = None
    python: str | None = None
    reproduces: str | None = None
    allow_drift: str | None = None
    amend: Callable[[Manifest], Manifest] = _same
    code: Mapping[str, JsonValue] | None = None
    executor: ExecutorInfo | None = None
    sweep: Mapping[str, JsonValue] | None = None
    stage: Mapping[str, JsonValue] | None = None


def run_experiment(
    ws: Workspace,
    request: RunRequest,
    *,
    executor: Executor | None = None,
    on_output: OutputCallback = _ignore_output,
    on_event: EventCallback = _no_event,
) -> RunOutcome:
    """Run one experiment and seal its manifest; returns even when the user's command fails.

    Outputs declared as datasets become new versions when the run succeeds.

    Raises:
        keel.errors.ValidationError: bad spec or parameters, or an unknown dataset or version
            (nothing ran, nothing stored).
        keel.errors.StrictViolation: a strict profile refused to start (a dirty tree, a
            missing input, or drift from keel.lock that ``request.allow_drift`` does not allow).
    """
    plan = resolve_plan(ws, request)
    registered: list[DatasetVersion] = []

    def register(manifest: Manifest) -> Manifest:
        from keel.ops.lineage import register_outputs

        manifest, made = register_outputs(ws, plan, manifest)
        registered.extend(made)
        for version in made:
            on_event("dataset", {"run_id": manifest.run.id, "dataset": version.ref})
        return manifest

    amend = register if plan.dataset_outputs else _same
    options = ExecOptions(allow_drift=request.allow_drift, amend=amend)
    outcome = execute_plan(
        ws, plan, options=options, executor=executor, on_output=on_output, on_event=on_event
    )
    return replace(outcome, datasets=tuple(registered))


def execute_plan(
    ws: Workspace,
    plan: RunPlan,
    *,
    options: ExecOptions | None = None,
    executor: Executor | None = None,
    on_output: OutputCallback = _ignore_output,
    on_event: EventCallback = _no_event,
) -> RunOutcome:
    """Execute a resolved plan (its code at ``plan.project_root``) and seal it in ``ws``'s store.

    Dataset inputs are resolved (an unknown one is a ValidationError before anything runs)
    and their versions put in place.

    Raises:
        keel.errors.StrictViolation: the plan is strict and the tree is dirty, inputs are
            missing, or it drifted from keel.lock without ``options.allow_drift``.
    """
    options = options or ExecOptions()
    environ = dict(ws.environ if options.environ is None else options.environ)
    executor = executor or LocalExecutor()
    run_id = new_run_id()
    created = ws.clock.now()
    datasets = _dataset_inputs(ws, plan)
    _enforce_strict(plan)
    options = _enforce_lock(ws, plan, options, environ)
    before = _capture_before(
        ws, plan, environ=environ, python=options.python, datasets=datasets, given_code=options.code
    )
    hashseed, hashseed_source = pythonhashseed(plan.seed, environ)
    start = _start_manifest(
        ws,
        plan,
        run_id=run_id,
        created=iso(created),
        before=before,
        executor=executor,
        hashseed=(hashseed, hashseed_source),
        options=options,
    )
    run_dir = ws.store_root / "work" / run_id
    run_dir.mkdir(parents=True)
    try:
        _record_start(ws, start)
        on_event("started", {"run_id": run_id, "experiment": plan.experiment})
        env = _child_env(
            environ,
            plan,
            run_id=run_id,
            run_dir=run_dir,
            hashseed=hashseed,
            python=options.python or sys.executable,
        )
        (run_dir / inrun.PARAMS_FILE).write_text(json.dumps(plan.param_values), "utf-8")
        request = ExecRequest(
            argv=_argv(plan, options.python or sys.executable),
            cwd=plan.cwd,
            env=env,
            stdout_path=run_dir / "stdout.log",
            stderr_path=run_dir / "stderr.log",
            timeout_s=plan.timeout_s,
            on_output=on_output,
        )
        result = _execute(executor, request)
        on_event("ended", {"run_id": run_id, "status": result.status.value})
        manifest = seal_after(ws, plan, start=start, before=before, result=result, run_dir=run_dir)
        manifest = options.amend(manifest)
        digest = _record_end(ws, manifest)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return RunOutcome(manifest=manifest, digest=digest)


def resolve_plan(ws: Workspace, request: RunRequest) -> RunPlan:
    """The request's plan: from the plan cache when keel.yaml and the request are unchanged."""
    key = plan_key(
        spec_digest=ws.facts.digest,
        spec_file=ws.facts.spec_file,
        keel_version=__version__,
        experiment=request.experiment,
        profile=ws.profile,
        overrides=request.overrides,
        seed=request.seed,
        why=request.why,
    )
    plan = load_plan(ws.cache_dir, key)
    if plan is None:
        from keel.resolve.resolve import resolve_run

        plan = resolve_run(
            ws.project,
            experiment=request.experiment,
            profile=ws.profile,
            overrides=request.overrides,
            seed=request.seed,
            why=request.why,
        )
        save_plan(ws.cache_dir, key, plan)
    return plan


def _dataset_inputs(ws: Workspace, plan: RunPlan) -> dict[int, DatasetVersion]:
    """The version of each dataset input; a ValidationError names every unknown one."""
    if not any(i.dataset for i in plan.inputs):
        return {}
    from keel.ops.lineage import resolve_dataset_inputs

    return resolve_dataset_inputs(ws, plan)


def _capture_before(
    ws: Workspace,
    plan: RunPlan,
    *,
    environ: Mapping[str, str],
    python: str | None,
    datasets: Mapping[int, DatasetVersion],
    given_code: Mapping[str, JsonValue] | None = None,
) -> _Before:
    # Dataset inputs are put in place first, so that the code facet sees a settled tree.
    prepared = _prepare_datasets(ws, plan, datasets) if datasets else {}
    with ThreadPoolExecutor(max_workers=3) as pool:
        code = pool.submit(_code_facet, plan.project_root, ws, given_code)
        env = pool.submit(
            capture_environment,
            project_root=plan.project_root,
            env_allow=plan.env_allow,
            environ=environ,
            cache_dir=ws.cache_dir,
            python=python,
        )
        hardware = pool.submit(capture_hardware)
        inputs = tuple(
            prepared[i] if i in prepared else _capture_input(ws, plan, spec.path, spec.store)
            for i, spec in enumerate(plan.inputs)
        )
        return _Before(
            code=code.result(),
            environment=env.result(),
            hardware=hardware.result(),
            inputs=inputs,
            flags=_dataset_flags(plan, code.result()) if datasets else (),
        )


def _code_facet(
    root: Path, ws: Workspace, given: Mapping[str, JsonValue] | None
) -> dict[str, JsonValue]:
    return dict(given) if given is not None else capture_code(root, ws.objects)


def _prepare_datasets(
    ws: Workspace, plan: RunPlan, datasets: Mapping[int, DatasetVersion]
) -> dict[int, InputRecord]:
    from keel.ops.data import DataCache
    from keel.ops.lineage import prepare_dataset_inputs

    cache = DataCache.open(ws)
    try:
        return prepare_dataset_inputs(ws, plan, datasets, cache)
    finally:
        cache.save()


def _dataset_flags(plan: RunPlan, code: Mapping[str, JsonValue]) -> tuple[str, ...]:
    from keel.ops.lineage import untracked_dataset_flags

    return untracked_dataset_flags(plan, code)


def _capture_input(ws: Workspace, plan: RunPlan, rel: str, store: bool) -> InputRecord:
    path = plan.project_root / rel
    record = store_path(path, ws.objects) if store else hash_path(path)
    return file_record(InputRecord, rel, record)


class _DigestOnly:
    """A BlobSink that only computes digests: a strict pre-flight must store nothing."""

    def put_bytes(self, data: bytes) -> Digest:
        return hash_bytes(data)

    def put_file(self, path: Path) -> Digest:
        return hash_file(path)[0]


def _enforce_strict(plan: RunPlan) -> None:
    """Refuse to start under a strict profile with a dirty tree or a missing input."""
    if not plan.strict:
        return
    problems = []
    code = capture_code(plan.project_root, _DigestOnly())
    if not code.get("captured"):
        problems.append(f"code state not captured ({code.get('reason')})")
    elif code.get("dirty"):
        untracked = code.get("untracked")
        changed = [str(f) for f in code.get("diff_files") or []]  # type: ignore[union-attr]
        if isinstance(untracked, list):
            changed += [str(u.get("path")) for u in untracked if isinstance(u, dict)]
        problems.append(f"the working tree has uncommitted changes ({', '.join(changed[:5])})")
    missing = [
        i.path
        for i in plan.inputs
        if i.dataset is None and not (plan.project_root / i.path).exists()
    ]
    if missing:
        problems.append("missing inputs: " + ", ".join(missing))
    if problems:
        raise StrictViolation(
            f"profile '{plan.profile}' is strict and refused to run: "
            + "; ".join(problems)
            + ". Commit or stash the changes, restore the inputs, or use a non-strict profile"
        )


def _enforce_lock(
    ws: Workspace, plan: RunPlan, options: ExecOptions, environ: Mapping[str, str]
) -> ExecOptions:
    """Under a strict profile, refuse drift from keel.lock unless ``allow_drift`` says why.

    Allowed drift is listed in the manifest's flags. Reproductions re-run a recorded plan on
    purpose, so they are not checked against the lock.
    """
    if not plan.strict or options.reproduces is not None:
        return options
    from keel.ops.check import enforce_lock

    flags = enforce_lock(
        ws, plan, environ=environ, python=options.python, allow_drift=options.allow_drift
    )
    if not flags:
        return options
    amend = options.amend
    return replace(options, amend=lambda m: amend(replace(m, flags=(*m.flags, *flags))))


def _start_manifest(
    ws: Workspace,
    plan: RunPlan,
    *,
    run_id: str,
    created: str,
    before: _Before,
    executor: Executor,
    hashseed: tuple[str, str],
    options: ExecOptions,
) -> Manifest:
    return Manifest(
        run=RunInfo(
            id=run_id,
            project=plan.project,
            experiment=plan.experiment,
            status=RunStatus.RUNNING,
            created_at=created,
            host=hostname(),
            user=os_user(),
            pid=os.getpid(),
            keel_version=__version__,
            executor=options.executor
            or ExecutorInfo(name=executor.name, parallelism=executor.parallelism),
            profile=plan.profile,
            why=plan.why,
            tags=plan.tags,
            reproduces=options.reproduces,
            allow_drift=options.allow_drift,
        ),
        config=ConfigInfo(
            params={p.name: ParamValue(value=p.value, source=p.layer.value) for p in plan.params},
            experiment=plan.experiment_def,
            profile=plan.profile_def,
            command=plan.argv,
            entrypoint=plan.entrypoint,
            cwd=os.path.relpath(plan.cwd, plan.project_root),
            spec_file=os.path.relpath(plan.spec_file, plan.project_root),
            spec_digest=plan.spec_digest,
        ),
        seeds=SeedInfo(
            root=plan.seed,
            source=plan.seed_source,
            derivation=HASHSEED_DERIVATION,
            pythonhashseed=hashseed[0],
            pythonhashseed_source="user" if hashseed[1] == "user" else "derived",
        ),
        code=before.code,
        inputs=before.inputs,
        environment=before.environment,
        hardware=before.hardware,
        not_captured=_not_captured(before),
        sweep=dict(options.sweep) if options.sweep is not None else None,
        stage=dict(options.stage) if options.stage is not None else None,
    )


def _not_captured(before: _Before) -> dict[str, str]:
    facets = {"code": before.code, "environment": before.environment, "hardware": before.hardware}
    return {k: str(v.get("reason")) for k, v in facets.items() if not v.get("captured")}


def _argv(plan: RunPlan, python: str) -> tuple[str, ...]:
    if plan.argv is not None:
        return plan.argv
    assert plan.entrypoint is not None
    return (python, "-m", "keel.execute.entry", plan.entrypoint)


def _execute(executor: Executor, request: ExecRequest) -> ExecResult:
    """Run the request; a command that cannot start is a failed run, sealed like any other."""
    now = datetime.now(UTC)
    try:
        return executor.execute(request)
    except ExecutionError as exc:
        for path in (request.stdout_path, request.stderr_path):
            path.touch()
        request.stderr_path.write_text(f"keel: {exc}\n", "utf-8")
        return ExecResult(status=RunStatus.FAILED, exit_code=None, signal=None, started_at=now,
                          ended_at=now, duration_s=0.0, pid=None, reason=str(exc))  # fmt: skip


def _child_env(
    environ: Mapping[str, str],
    plan: RunPlan,
    *,
    run_id: str,
    run_dir: Path,
    hashseed: str,
    python: str,
) -> dict[str, str]:
    env = dict(environ)
    env.update(plan.extra_env)
    # `python` in a command means the interpreter whose packages were recorded.
    env["PATH"] = os.pathsep.join([os.path.dirname(python), env.get("PATH", "")])
    env.update(
        KEEL_RUN_ID=run_id,
        KEEL_RUN_DIR=str(run_dir),
        KEEL_SEED=str(plan.seed),
        KEEL_EXPERIMENT=plan.experiment,
        PYTHONHASHSEED=hashseed,
    )
    return env


def _record_start(ws: Workspace, start: Manifest) -> None:
    digest = ws.objects.put_bytes(canonical_json(start.to_json()))
    run_id = start.run.id
    if ws.objects.get_ref(f"runs/{run_id}") is not None or not ws.objects.set_ref(
        f"active/{run_id}", digest, create_only=True
    ):
        raise ExecutionError(f"run id {run_id} is already taken in {ws.store_root}; run again")
    ws.objects.set_ref(f"pending/{start.run.id}", digest)


def _record_end(ws: Workspace, manifest: Manifest) -> Digest:
    digest = ws.objects.put_bytes(canonical_json(manifest.to_json()))
    run_id = manifest.run.id
    if not ws.objects.set_ref(f"runs/{run_id}", digest, create_only=True):
        raise ExecutionError(f"run {run_id} was sealed by another process; this seal is kept as "
                             f"object {digest} only")  # fmt: skip
    ws.objects.set_ref(f"pending/{run_id}", digest)
    ws.objects.delete_ref(f"active/{run_id}")
    return digest
