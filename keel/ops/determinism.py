"""The determinism use case: replicate an experiment, perturb one factor at a time, store the noise.

The experiment is resolved once. Its replicates run with the same seed and environment; with
perturbations, further groups of runs vary one factor each:

- ``seed``: N different root seeds derived deterministically from the resolved one
  (``PYTHONHASHSEED`` stays at the resolved run's value, so only the seed moves);
- ``threads``: ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` alternate
  between 1 and the machine's usable cores;
- ``hashseed``: N different ``PYTHONHASHSEED`` values derived from the seed.

Each run is a sealed run tagged ``determinism``. When the project is in git, every run executes
in its own sandbox (the current commit, uncommitted diff and untracked files, with the declared
inputs copied in), so parallel runs (``jobs``) never share an output folder and the user's tree
is not written; otherwise runs execute in place, one at a time. The summary
(:class:`keel.compare.noise.NoiseProfile`) is stored as an object named by the ref
``noise/<experiment>``, linking the profile it replaces.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from keel.base.canonical import JsonValue, canonical_json, loads
from keel.base.clock import iso
from keel.base.digest import Digest, hash_bytes
from keel.capture.git import capture_code
from keel.capture.seeds import pythonhashseed
from keel.compare.noise import NoiseProfile, Perturbation, group_of
from keel.errors import UserError
from keel.model.manifest import Manifest
from keel.model.plan import RunPlan
from keel.ops.replay import Sandbox, copy_inputs
from keel.ops.run import EventCallback, ExecOptions, RunRequest, execute_plan, resolve_plan
from keel.ops.workspace import Workspace
from keel.resolve.render import render_argv

log = logging.getLogger(__name__)

TAG = "determinism"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MAX_RUNS = 100


def _no_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """The default progress callback: do nothing."""


def noise_ref(experiment: str) -> str:
    """The ref naming an experiment's current noise profile."""
    return f"noise/{experiment}"


def load_noise_profile(ws: Workspace, experiment: str) -> tuple[NoiseProfile, Digest] | None:
    """The experiment's stored noise profile and its digest, or None when never measured.

    Raises:
        keel.errors.UserError: the stored profile cannot be read (corrupt, or too new).
        keel.errors.ObjectNotFound: the ref names a missing object.
    """
    digest = ws.objects.get_ref(noise_ref(experiment))
    if digest is None:
        return None
    data = loads(ws.objects.get_bytes(digest))
    if not isinstance(data, dict):
        raise UserError(f"object {digest} named by {noise_ref(experiment)} is not a noise profile")
    return NoiseProfile.from_json(data), digest


def parse_perturbations(text: str) -> tuple[Perturbation, ...]:
    """``"seed,threads"`` → the perturbations, in the order given, without repeats.

    Raises:
        keel.errors.UserError: a name that is not a perturbation (the valid ones are listed).
    """
    valid = [p.value for p in Perturbation if p is not Perturbation.REPLICATE]
    found: list[Perturbation] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name not in valid:
            raise UserError(f"--perturb {name!r}: unknown perturbation; use any of "
                            f"{', '.join(valid)} (comma-separated)")  # fmt: skip
        if Perturbation(name) not in found:
            found.append(Perturbation(name))
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeterminismRequest:
    """What to measure: ``replicates`` runs per group, plus one group per perturbation."""

    experiment: str
    overrides: Mapping[str, str] = field(default_factory=dict)
    replicates: int = 3
    perturb: tuple[Perturbation, ...] = ()
    jobs: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DeterminismResult:
    """The stored noise profile and its digest; truthy when replicates were bit-identical."""

    profile: NoiseProfile
    digest: Digest

    def __bool__(self) -> bool:
        return self.profile.deterministic


@dataclass(frozen=True, slots=True, kw_only=True)
class _Variant:
    perturbation: Perturbation
    setting: str
    plan: RunPlan
    environ: dict[str, str]


def determinism(
    ws: Workspace, request: DeterminismRequest, *, on_event: EventCallback = _no_event
) -> DeterminismResult:
    """Run the replicates and perturbations, then store and return the noise profile.

    Raises:
        keel.errors.UserError: bad counts or perturbations; resolve errors (nothing ran).
    """
    _check(request)
    plan = resolve_plan(ws, RunRequest(experiment=request.experiment, overrides=request.overrides))
    plan = replace(plan, tags=(*plan.tags, TAG), why=f"{TAG}: {request.experiment}")
    variants = _variants(ws, plan, request)
    manifests = _execute_all(ws, plan, variants, jobs=request.jobs, on_event=on_event)
    groups = []
    for kind in (Perturbation.REPLICATE, *request.perturb):
        chosen = [
            (v, m) for v, m in zip(variants, manifests, strict=True) if v.perturbation is kind
        ]
        groups.append(
            group_of(kind, [m for _, m in chosen], settings=[v.setting for v, _ in chosen])
        )
    previous = ws.objects.get_ref(noise_ref(plan.experiment))
    profile = NoiseProfile(
        project=plan.project,
        experiment=plan.experiment,
        created_at=iso(ws.clock.now()),
        seed=plan.seed,
        params=plan.param_values,
        groups=tuple(groups),
        previous=str(previous) if previous else None,
    )
    digest = ws.objects.put_bytes(canonical_json(profile.to_json()))
    ws.objects.set_ref(noise_ref(plan.experiment), digest)
    return DeterminismResult(profile=profile, digest=digest)


def _check(request: DeterminismRequest) -> None:
    if request.replicates < 2:
        raise UserError(f"-n {request.replicates}: at least 2 runs are needed to compare; use -n 3")
    if request.jobs < 1:
        raise UserError(f"--jobs {request.jobs}: must be at least 1")
    total = request.replicates * (1 + len(request.perturb))
    if total > MAX_RUNS:
        raise UserError(f"{total} runs requested (more than {MAX_RUNS}); lower -n or --perturb")


def derived_values(root: int, n: int, *, label: str, modulus: int = 2**31) -> tuple[int, ...]:
    """``n`` distinct values derived from ``root`` (stable across machines and keel runs)."""
    values: list[int] = []
    index = 0
    while len(values) < n:
        digest = hash_bytes(f"keel:{label}:{root}:{index}".encode())
        value = int(digest.hexdigest[:16], 16) % modulus
        if value not in values and value != root:
            values.append(value)
        index += 1
    return tuple(values)


def _variants(ws: Workspace, plan: RunPlan, request: DeterminismRequest) -> list[_Variant]:
    n, base_env = request.replicates, dict(ws.environ)
    out = [_Variant(perturbation=Perturbation.REPLICATE, setting=f"seed={plan.seed}", plan=plan,
                    environ=base_env) for _ in range(n)]  # fmt: skip
    for kind in request.perturb:
        if kind is Perturbation.SEED:
            pinned = {**base_env, "PYTHONHASHSEED": pythonhashseed(plan.seed, base_env)[0]}
            for seed in derived_values(plan.seed, n, label="seed"):
                out.append(_Variant(perturbation=kind, setting=f"seed={seed}",
                                    plan=_reseeded(plan, seed), environ=pinned))  # fmt: skip
        elif kind is Perturbation.THREADS:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
            for i in range(n):
                threads = str(1 if i % 2 == 0 else cores)
                env = {**base_env, **dict.fromkeys(THREAD_VARS, threads)}
                out.append(_Variant(perturbation=kind, setting=f"threads={threads}", plan=plan,
                                    environ=env))  # fmt: skip
        else:
            for value in derived_values(plan.seed, n, label="hashseed", modulus=2**32):
                env = {**base_env, "PYTHONHASHSEED": str(value)}
                out.append(_Variant(perturbation=kind, setting=f"PYTHONHASHSEED={value}",
                                    plan=plan, environ=env))  # fmt: skip
    return out


def _reseeded(plan: RunPlan, seed: int) -> RunPlan:
    command = plan.experiment_def.get("command")
    argv = render_argv(command, plan.param_values, seed=seed) if isinstance(command, str) else None
    return replace(plan, seed=seed, seed_source="cli", argv=argv if plan.argv else None)


def _execute_all(
    ws: Workspace,
    plan: RunPlan,
    variants: Sequence[_Variant],
    *,
    jobs: int,
    on_event: EventCallback,
) -> list[Manifest]:
    code = capture_code(plan.project_root, ws.objects)
    isolated = bool(code.get("captured"))
    if not isolated and jobs > 1:
        log.warning("%s is not in git: runs execute in place, one at a time", plan.project_root)
    lock = threading.Lock()
    done: list[int] = [0]

    def one(variant: _Variant) -> Manifest:
        manifest = _execute_one(ws, variant, code if isolated else None, lock)
        with lock:
            done[0] += 1
            on_event("run", _progress(manifest, variant, done[0], len(variants)))
        return manifest

    with ThreadPoolExecutor(max_workers=jobs if isolated else 1) as pool:
        return list(pool.map(one, variants))


def _progress(m: Manifest, variant: _Variant, done: int, total: int) -> dict[str, JsonValue]:
    return {"run_id": m.run.id, "status": m.run.status.value, "done": done, "total": total,
            "perturbation": variant.perturbation.value, "setting": variant.setting}  # fmt: skip


def _execute_one(
    ws: Workspace,
    variant: _Variant,
    code: Mapping[str, JsonValue] | None,
    lock: threading.Lock,
) -> Manifest:
    plan, options = variant.plan, ExecOptions(environ=variant.environ)
    if code is None:
        return execute_plan(ws, plan, options=options).manifest
    with lock:  # git worktree add/remove on one repository must not overlap
        sandbox = Sandbox.restore(ws, code, label=TAG)
    try:
        copy_inputs(plan.project_root, [i.path for i in plan.inputs], sandbox=sandbox)
        return execute_plan(ws, _moved(plan, sandbox.project_root), options=options).manifest
    finally:
        with lock:
            sandbox.remove()


def _moved(plan: RunPlan, root: Path) -> RunPlan:
    """The plan with its project folder moved to ``root`` (cwd and spec file follow)."""
    return replace(
        plan,
        project_root=root,
        cwd=root / plan.cwd.relative_to(plan.project_root),
        spec_file=root / plan.spec_file.relative_to(plan.project_root),
    )
