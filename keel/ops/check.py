"""`keel check`: compare each experiment's current state with keel.lock, its baseline or a run.

Nothing runs. The current state is what `keel run` would resolve and capture now: the plan (from
the plan cache when keel.yaml is unchanged), the environment facet (cached per environment
fingerprint), input digests (from the stat cache) and the git state.

Under a strict profile, :func:`enforce_lock` runs the same comparison against keel.lock before
every run (``keel.ops.run`` calls it) and refuses drift unless a reason allows it.

:func:`rerun_baselines` is `keel check --rerun`: the canary for an environment or keel
upgrade. It re-runs each baseline's recorded configuration under the *current* environment and
judges the result as `keel reproduce` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keel.base.digest import Digest
from keel.compare.drift import (
    Change,
    Drift,
    DriftKind,
    DriftReport,
    compare_states,
    experiment_added,
    experiment_removed,
    state_from_manifest,
    uncompared,
)
from keel.errors import StrictViolation, UserError
from keel.model.manifest import Manifest
from keel.model.plan import RunPlan
from keel.ops.lock import (
    Snapshot,
    check_names,
    experiment_state,
    plan_for,
    spec_experiments,
    take_snapshot,
)
from keel.ops.statcache import StatCache
from keel.ops.sync import load_manifest
from keel.ops.workspace import Workspace
from keel.spec.lockfile import LOCK_FILE, ExperimentState
from keel.spec.lockread import read_lock

AGAINST_LOCK = "lock"
AGAINST_BASELINE = "baseline"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Current:
    """What one check needs to compute current states."""

    ws: Workspace
    known: tuple[str, ...]
    snapshot: Snapshot
    cache: StatCache
    profile: str | None

    def compare(
        self, name: str, reference: ExperimentState, what: str
    ) -> tuple[tuple[Drift, ...], tuple[str, ...]]:
        """Drift of ``name`` now from ``reference``, and notes on what was not compared."""
        if name not in self.known:
            return (experiment_removed(name, what),), ()
        profile = self.profile or reference.profile
        plan = plan_for(self.ws, name, profile, check_inputs=False)
        now = experiment_state(
            plan, self.snapshot, self.cache, environ=self.ws.environ, ws=self.ws
        )
        items, notes = compare_states(reference, now), uncompared(reference, now, what=what)
        if any(i.kind is DriftKind.DATA and i.change is Change.CHANGED for i in items):
            from keel.ops.datadiff import add_data_statistics

            items, more = add_data_statistics(
                self.ws, items, old_inputs=reference.inputs, new_inputs=now.inputs,
                root=plan.project_root,
            )  # fmt: skip
            notes = (*notes, *more)
        return items, notes


if TYPE_CHECKING:
    from keel.ops.reproduce import Reproduction


def check_drift(
    ws: Workspace,
    experiments: Sequence[str] = (),
    *,
    against: str = AGAINST_LOCK,
    profile: str | None = None,
    python: str | None = None,
) -> DriftReport:
    """Report drift of ``experiments`` (default: all locked, or all with a baseline).

    Args:
        ws: the project.
        experiments: names to check.
        against: ``lock`` (keel.lock), ``baseline`` (each experiment's baseline run) or a run
            reference (one run's manifest).
        profile: resolve with this profile (default: the one the reference recorded).
        python: the interpreter whose environment is compared (default: keel's own).

    Raises:
        keel.errors.UserError: no keel.lock or baseline, a damaged keel.lock, an unknown
            experiment (with a suggestion), or an environment that cannot be read.
        keel.errors.RunRefError: ``against`` names no run.
    """
    names = tuple(dict.fromkeys(experiments))
    known = spec_experiments(ws)
    if against == AGAINST_LOCK:
        refs, labels, extra = _locked(ws, names, known)
        return _report(
            ws,
            known,
            refs,
            labels,
            against=AGAINST_LOCK,
            extra=extra,
            profile=profile,
            python=python,
        )
    if against == AGAINST_BASELINE:
        refs, labels = _baselines(ws, names, known)
        return _report(
            ws, known, refs, labels, against=AGAINST_BASELINE, profile=profile, python=python
        )
    manifest = _run_manifest(ws, against, names)
    labels = {manifest.run.experiment: f"run {manifest.run.id}"}
    refs = {manifest.run.experiment: state_from_manifest(manifest)}
    return _report(ws, known, refs, labels, against="run", profile=profile, python=python)


def _locked(
    ws: Workspace, names: tuple[str, ...], known: tuple[str, ...]
) -> tuple[dict[str, ExperimentState | None], dict[str, str], tuple[str, ...]]:
    """keel.lock's entries for ``names`` (default: all), and the experiments it lacks."""
    lock = read_lock(ws.root / LOCK_FILE)
    check_names(names, known, also=tuple(lock.experiments))
    chosen = names or tuple(sorted(lock.experiments))
    refs = {n: lock.experiments.get(n) for n in chosen}
    extra = () if names else tuple(n for n in known if n not in lock.experiments)
    return refs, {n: LOCK_FILE for n in (*chosen, *extra)}, extra


def _report(
    ws: Workspace,
    known: tuple[str, ...],
    references: Mapping[str, ExperimentState | None],
    labels: Mapping[str, str],
    *,
    against: str,
    extra: Sequence[str] = (),
    profile: str | None,
    python: str | None,
) -> DriftReport:
    """Compare every reference with the present; ``extra`` names experiments never locked."""
    cache = StatCache.open(ws.cache_dir)
    snapshot = take_snapshot(ws.root, ws.cache_dir, cache, python=python, environ=ws.environ)
    current = _Current(ws=ws, known=known, snapshot=snapshot, cache=cache, profile=profile)
    items: list[Drift] = []
    notes: list[str] = []
    for name, reference in references.items():
        if reference is None:  # named on the command line, in keel.yaml, not in keel.lock
            items.append(experiment_added(name, labels[name]))
            continue
        found, said = current.compare(name, reference, labels[name])
        items.extend(found)
        notes.extend(said)
    items.extend(experiment_added(name, labels[name]) for name in extra)
    cache.save()
    unique = tuple(dict.fromkeys(notes))  # project-wide notes are said once
    return DriftReport(against=against, references=dict(labels), items=tuple(items), notes=unique)


def _baselines(
    ws: Workspace, names: tuple[str, ...], known: tuple[str, ...]
) -> tuple[dict[str, ExperimentState | None], dict[str, str]]:
    from keel.ops.baseline import SET_HINT, baseline_experiments, current_baseline, no_baseline

    having = baseline_experiments(ws)
    check_names(names, known, also=having)
    chosen = names or tuple(having)
    if not chosen:
        raise UserError(f"no experiment has a baseline yet: {SET_HINT}")
    refs: dict[str, ExperimentState | None] = {}
    labels: dict[str, str] = {}
    for name in chosen:
        record = current_baseline(ws, name)
        if record is None:
            raise no_baseline(ws, name)
        refs[name] = state_from_manifest(load_manifest(ws, Digest.parse(record.manifest)))
        labels[name] = f"baseline {record.run}"
    return refs, labels


def _run_manifest(ws: Workspace, ref: str, names: tuple[str, ...]) -> Manifest:
    from keel.ops.refs import resolve_ref

    run = resolve_ref(ws, ref)
    if run.manifest is None:
        raise UserError(f"run {run.id} is still running: check against it when it has finished")
    if names and set(names) != {run.experiment}:
        raise UserError(
            f"run {run.id} is a run of {run.experiment}: check only {run.experiment} against it "
            "(or name no experiment)"
        )
    return load_manifest(ws, Digest.parse(run.manifest))


def check_plan(
    ws: Workspace, plan: RunPlan, *, environ: Mapping[str, str], python: str | None
) -> DriftReport | None:
    """Drift of a resolved plan from keel.lock (code aside); None when there is no keel.lock."""
    path = plan.project_root / LOCK_FILE
    if not path.exists():
        return None
    locked = read_lock(path).experiments.get(plan.experiment)
    refs = {plan.experiment: LOCK_FILE}
    if locked is None:
        return DriftReport(
            against=AGAINST_LOCK,
            references=refs,
            items=(experiment_added(plan.experiment, LOCK_FILE),),
        )
    cache = StatCache.open(ws.cache_dir)
    snapshot = take_snapshot(
        plan.project_root, ws.cache_dir, cache, python=python, environ=environ, with_code=False
    )
    current = experiment_state(plan, snapshot, cache, environ=environ, ws=ws)
    cache.save()
    return DriftReport(against=AGAINST_LOCK, references=refs, items=compare_states(locked, current))


def enforce_lock(
    ws: Workspace,
    plan: RunPlan,
    *,
    environ: Mapping[str, str],
    python: str | None,
    allow_drift: str | None,
) -> tuple[str, ...]:
    """Refuse a strict run that drifted from keel.lock, unless ``allow_drift`` gives a reason.

    Returns:
        The manifest flags that record the drift that was allowed (empty when none).

    Raises:
        keel.errors.StrictViolation: drift was found and no reason allows it.
        keel.errors.UserError: ``allow_drift`` is empty.
    """
    if allow_drift is not None and not allow_drift.strip():
        raise UserError("--allow-drift needs a reason: say why this run may differ from keel.lock")
    report = check_plan(ws, plan, environ=environ, python=python)
    if report is None or not report.drifted:
        return ()
    found = [d.message for d in report.items if d.blocking]
    if allow_drift is None:
        raise StrictViolation(
            f"profile '{plan.profile}' is strict and {plan.experiment} has drifted from "
            f"keel.lock: {'; '.join(found)}. If the change is intended, re-lock with "
            f"`keel --profile {plan.profile} lock {plan.experiment}`; to run anyway, give a "
            "reason with --allow-drift REASON"
        )
    return tuple(f"drift from keel.lock allowed ({allow_drift.strip()}): {m}" for m in found)


def rerun_baselines(
    ws: Workspace, experiments: Sequence[str] = ()
) -> list[tuple[str, Reproduction]]:
    """Reproduce each named experiment's baseline (default: every baseline) in this environment.

    Raises:
        keel.errors.UserError: a named experiment has no baseline, or no experiment has one.
    """
    from keel.ops.baseline import baseline_experiments, current_baseline
    from keel.ops.reproduce import ReproduceRequest, reproduce

    names = list(experiments) or baseline_experiments(ws)
    if not names:
        raise UserError("no experiment has a baseline yet: set one with `keel baseline set RUN "
                        "--why TEXT`, then `keel check --rerun`")  # fmt: skip
    results = []
    for name in names:
        record = current_baseline(ws, name)
        if record is None:
            raise UserError(f"experiment '{name}' has no baseline: set one with "
                            "`keel baseline set RUN --why TEXT`")  # fmt: skip
        results.append((name, reproduce(ws, ReproduceRequest(ref=record.run))))
    return results
