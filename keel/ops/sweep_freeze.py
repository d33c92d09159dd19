"""Freeze a sweep before its first trial: validate, capture once, plan every trial, record.

Everything a trial depends on is settled here, in this order: the spec is parsed and checked
against keel.yaml (every problem at once); the code facet is captured once (commit, diff and
untracked files stored); each declared input is hashed and stored once; the fold partition is
computed and its index lists stored; every trial is planned. Only then is the record written
(:func:`record_sweep`), so a refused sweep leaves no ref behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from keel import __version__
from keel.base.canonical import JsonValue, canonical_json, loads
from keel.base.clock import iso
from keel.base.digest import hash_file
from keel.capture.data import hash_path, store_path
from keel.capture.git import capture_code
from keel.errors import (
    InvalidParameter,
    MissingExtra,
    Problem,
    RunRefError,
    StrictViolation,
    UserError,
)
from keel.model.dataset import DatasetVersion
from keel.model.manifest import InputRecord
from keel.model.plan import RunPlan
from keel.model.run import new_run_id
from keel.model.sweep import REF_PREFIX, Partition, SweepSpec
from keel.model.sweeprecord import (
    COPIED_FLAG,
    PlannedTrial,
    SweepRecord,
    encode,
    record_ref,
)
from keel.ops.seal import file_record
from keel.ops.workspace import Workspace
from keel.resolve.sweep import (
    SEED_DERIVATION,
    child_seed,
    compute_partition,
    parse_sweep,
    plan_trials,
)

OPTUNA_SEED_REPLICATE = 2**20 + 3  # the child seed of the optuna sampler


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepRequest:
    """What the user asked for (`keel sweep NAME ...`); ``name`` is an experiment, or a sweep
    declared in keel.yaml ``sweeps:``."""

    name: str
    axes: tuple[str, ...] = ()
    strategy: str | None = None
    trials: int | None = None
    seeds: int | None = None
    folds: int | None = None
    fold_strategy: str | None = None
    fold_data: str | None = None
    fold_label: str | None = None
    fold_group: str | None = None
    seed: int | None = None
    metric: str | None = None
    timeout_s: float | None = None
    why: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedSweep:
    """A validated, planned sweep whose objects are stored but which is not recorded yet."""

    spec: SweepSpec
    base: RunPlan
    root_seed: int
    code: dict[str, JsonValue]
    inputs: tuple[InputRecord, ...]
    partition: Partition | None
    trials: tuple[PlannedTrial, ...]
    strategy: dict[str, JsonValue] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def input_bytes(self) -> int:
        """Total size of the inputs (room a sandbox needs for them)."""
        return sum(r.size or 0 for r in self.inputs)


def prepare_sweep(ws: Workspace, request: SweepRequest) -> PreparedSweep:
    """Parse, validate and plan the whole sweep; store what it needs, record nothing.

    Raises:
        keel.errors.ValidationError: the spec, a parameter value or a fold option is wrong
            (every problem listed).
        keel.errors.StrictViolation: a strict profile refuses the tree or the environment.
        keel.errors.MissingExtra: ``--strategy optuna`` without optuna installed.
        keel.errors.UserError: anything else the sweep cannot run with (named).
    """
    project = ws.project
    spec = parse_sweep(
        project, name=request.name, axes=request.axes, strategy=request.strategy,
        trials=request.trials, seeds=request.seeds, folds=request.folds,
        fold_strategy=request.fold_strategy, fold_data=request.fold_data,
        fold_label=request.fold_label, fold_group=request.fold_group, seed=request.seed,
        metric=request.metric, timeout_s=request.timeout_s, why=request.why,
    )  # fmt: skip
    from keel.resolve.resolve import resolve_run

    base = resolve_run(project, experiment=spec.experiment, profile=ws.profile,
                       overrides=spec.fixed, seed=spec.seed, why=spec.why)  # fmt: skip
    _check_supported(spec, base)
    code = capture_code(ws.root, ws.objects)
    flags = () if code.get("captured") else (COPIED_FLAG,)
    _check_strict(ws, base, code)
    _check_unchanged(ws)
    inputs = _capture_inputs(ws, base)
    digests = {r.path: r.digest or "" for r in inputs}
    root_seed = spec.seed if spec.seed is not None else 0
    partition = _partition(ws, spec, root_seed)
    strategy: dict[str, JsonValue] = {"name": spec.strategy}
    trials: tuple[PlannedTrial, ...] = ()
    if spec.strategy == "optuna":
        strategy.update(
            sampler="TPESampler",
            sampler_seed=child_seed(root_seed, OPTUNA_SEED_REPLICATE),
            goal=_goal(spec, base),
        )
    else:
        planned = plan_trials(project, spec, profile=ws.profile, partition=partition,
                              input_digests=digests)  # fmt: skip
        trials = tuple(PlannedTrial(trial=t, plan=frozen_plan(p, inputs)) for t, p in planned)
    return PreparedSweep(spec=spec, base=base, root_seed=root_seed, code=code, inputs=inputs,
                         partition=partition, trials=trials, strategy=strategy,
                         flags=flags)  # fmt: skip


def frozen_plan(plan: RunPlan, inputs: Iterable[InputRecord]) -> dict[str, JsonValue]:
    """A trial's plan as recorded: strictness was enforced once, for the whole sweep, and each
    dataset input is pinned to the version frozen in ``inputs`` (``NAME`` meant the latest
    when the sweep started, for every trial)."""
    pins = {r.path: f"{r.dataset}@{r.version}" for r in inputs if r.dataset and r.version}
    specs = tuple(
        replace(i, dataset=pins.get(i.path, i.dataset)) if i.dataset else i for i in plan.inputs
    )
    return replace(plan, strict=False, inputs=specs).to_json()


def record_sweep(
    ws: Workspace, prepared: PreparedSweep, *, tree_digest: str | None = None, batch: int = 1
) -> SweepRecord:
    """Write the sweep record (canonical JSON) and its ref ``sweeps/<id>``.

    ``batch`` is how many configurations an adaptive strategy asks for at a time (the
    sweep's parallelism); ``tree_digest`` the digest of a copied (non-git) project.
    """
    spec, base = prepared.spec, prepared.base
    strategy = dict(prepared.strategy)
    if tree_digest is not None:
        strategy["tree_digest"] = tree_digest
    sweep_id = new_run_id()
    if spec.strategy == "optuna":
        strategy.update(study=f"keel-sweep-{sweep_id}", batch=batch)
    record = SweepRecord(
        id=sweep_id,
        created_at=iso(ws.clock.now()),
        project=base.project,
        experiment=spec.experiment,
        profile=ws.profile,
        keel_version=__version__,
        spec=_spec_json(spec),
        spec_digest=base.spec_digest,
        root_seed=prepared.root_seed,
        seed_derivation=SEED_DERIVATION,
        code=prepared.code,
        inputs=prepared.inputs,
        partition=prepared.partition,
        trials=prepared.trials,
        strategy=strategy,
        flags=prepared.flags,
        why=spec.why,
    )
    digest = ws.objects.put_bytes(canonical_json(record.to_json()))
    if not ws.objects.set_ref(record_ref(sweep_id), digest, create_only=True):
        raise UserError(f"sweep id {sweep_id} is taken (two sweeps in the same instant); retry")
    return record


def _spec_json(spec: SweepSpec) -> dict[str, JsonValue]:
    data = encode(spec)
    assert isinstance(data, dict)
    return data


def load_sweep(ws: Workspace, ref: str) -> SweepRecord:
    """The sweep ``ref`` names: its id, a unique prefix of it, or ``@latest``.

    Raises:
        keel.errors.RunRefError: no sweep matches, or more than one does (listed).
    """
    ids = [name.removeprefix(REF_PREFIX) for name, _ in ws.objects.list_refs(REF_PREFIX)]
    ref = ref.strip()
    if ref == "@latest":
        if not ids:
            raise RunRefError("no sweeps yet: start one with `keel sweep EXPERIMENT -p ...`")
        found = [max(ids)]
    else:
        found = [i for i in ids if i == ref] or [i for i in ids if ref and i.startswith(ref)]
    if not found:
        raise RunRefError(f"no sweep matches {ref!r}; list sweeps with `keel sweep ls`")
    if len(found) > 1:
        raise RunRefError(f"sweep reference {ref!r} is ambiguous; it matches: "
                          + ", ".join(sorted(found)[:10]))  # fmt: skip
    return read_record(ws, found[0])


def read_record(ws: Workspace, sweep_id: str) -> SweepRecord:
    """The record of the sweep with exactly this id."""
    digest = ws.objects.get_ref(record_ref(sweep_id))
    if digest is None:
        raise RunRefError(f"no sweep {sweep_id!r}; list sweeps with `keel sweep ls`")
    return SweepRecord.from_json(loads(ws.objects.get_bytes(digest)))


def _check_supported(spec: SweepSpec, base: RunPlan) -> None:
    if spec.strategy == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError as exc:
            raise MissingExtra(
                "--strategy optuna needs optuna; install it with: pip install 'keel[optuna]'"
            ) from exc
        _goal(spec, base)
        from keel.ops.sweep_optuna import check_axes

        problems = check_axes(spec)
        if problems:
            raise InvalidParameter([Problem(message=p) for p in problems])


def _goal(spec: SweepSpec, base: RunPlan) -> str:
    """The goal of the metric an adaptive strategy optimises."""
    declared = {m.name: m.goal for m in base.metrics}
    name = spec.metric or next(iter(declared), None)
    if name is None or name not in declared:
        listed = ", ".join(declared) or "none"
        raise UserError(
            f"--strategy optuna needs a metric with a goal to optimise; "
            f"{'metric ' + repr(name) + ' has no declared goal' if name else 'none is given'} "
            f"(declared: {listed}): pass --metric NAME or declare `metrics: {{NAME: "
            "{goal: max}}` in the experiment"
        )
    return declared[name]


def _check_strict(ws: Workspace, plan: RunPlan, code: Mapping[str, JsonValue]) -> None:
    """A strict profile refuses a sweep whose tree is dirty or whose environment drifted."""
    if not plan.strict:
        return
    if not code.get("captured"):
        reason = code.get("reason")
        raise StrictViolation(f"profile '{plan.profile}' is strict and refused the sweep: code "
                              f"state not captured ({reason})")  # fmt: skip
    if code.get("dirty"):
        files = [str(f) for f in code.get("diff_files") or []]  # type: ignore[union-attr]
        untracked = code.get("untracked")
        if isinstance(untracked, list):
            files += [str(u.get("path")) for u in untracked if isinstance(u, dict)]
        raise StrictViolation(
            f"profile '{plan.profile}' is strict and refused the sweep: the working tree has "
            f"uncommitted changes ({', '.join(files[:5])}); commit or stash them, or use a "
            "non-strict profile"
        )
    from keel.ops.check import enforce_lock

    enforce_lock(ws, plan, environ=ws.environ, python=None, allow_drift=None)


def _check_unchanged(ws: Workspace) -> None:
    """keel.yaml must be the file the sweep was planned from when the code is captured."""
    now = str(hash_file(ws.facts.spec_file)[0])
    if now != ws.project.digest:
        raise UserError(
            f"{ws.facts.spec_file.name} changed while the sweep was being planned; "
            "run the sweep again"
        )


def _capture_inputs(ws: Workspace, plan: RunPlan) -> tuple[InputRecord, ...]:
    """Every declared input hashed (and stored) once; a dataset input is the version its
    reference means now, already in the store.

    Raises:
        keel.errors.ValidationError: an unknown dataset or version (every one listed).
    """
    versions: dict[int, DatasetVersion] = {}
    if any(i.dataset for i in plan.inputs):
        from keel.ops.lineage import resolve_dataset_inputs

        versions = resolve_dataset_inputs(ws, plan)
    return tuple(
        _version_record(i.path, versions[n])
        if n in versions
        else _capture_input(ws, plan, i.path, i.store)
        for n, i in enumerate(plan.inputs)
    )


def _version_record(rel: str, version: DatasetVersion) -> InputRecord:
    return InputRecord(
        path=rel, kind=version.kind, digest=version.digest, size=version.size,
        files=version.files if version.kind == "dir" else None, stored=True,
        dataset=version.name, version=version.version,
    )  # fmt: skip


def _capture_input(ws: Workspace, plan: RunPlan, rel: str, store: bool) -> InputRecord:
    path = plan.project_root / rel
    record = store_path(path, ws.objects) if store else hash_path(path)
    return file_record(InputRecord, rel, record)


def _partition(ws: Workspace, spec: SweepSpec, seed: int) -> Partition | None:
    if spec.folds is None:
        return None
    partition, test_lists = compute_partition(ws.root, spec.folds, seed=seed)
    digest = ws.objects.put_bytes(canonical_json(test_lists))
    if str(digest) != partition.indices:
        raise UserError(
            f"fold partition digest mismatch ({digest} stored, {partition.indices} planned)"
        )
    return partition
