"""Where a sweep's trials stand, read from their refs, and the table `keel sweep show` prints.

A trial's state comes from its ref ``sweep-trials/<id>/<key>``: no ref is ``missing``; a seal
gives the run's status and metrics; a start record is ``running`` while its keel process is
alive, ``lost`` once it is gone (and the run is sealed ``lost`` when asked). Manifests are read
as plain JSON here (only status, id and metrics are needed), so a table over thousands of
trials costs a file read per trial.

The table has one row per configuration, in configuration order — never in the order trials
finished — with each metric's mean, sample standard deviation and count over the
configuration's succeeded trials (its seeds and folds). The best row is marked by the chosen
metric's declared goal.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keel.base.canonical import JsonValue, loads
from keel.base.digest import Digest
from keel.errors import UserError
from keel.model.manifest import Manifest
from keel.model.sweep import Partition
from keel.model.sweeprecord import (
    CONFIG_REF_PREFIX,
    AskedConfig,
    MetricStats,
    PlannedTrial,
    SweepListing,
    SweepRecord,
    SweepRow,
    SweepTable,
    decode_config,
    trial_ref,
)
from keel.ops.workspace import Workspace

MISSING = "missing"
RERUN = frozenset({MISSING, "failed", "killed", "lost", "error", "cancelled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialState:
    """Where one trial stands: ``status`` is a run status or ``missing``."""

    status: str
    run_id: str | None = None
    digest: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def asked_configs(ws: Workspace, record: SweepRecord) -> list[AskedConfig]:
    """The configurations an adaptive strategy asked for, in configuration order."""
    prefix = f"{CONFIG_REF_PREFIX}{record.id}/"
    found = [decode_config(loads(ws.objects.get_bytes(d)))
             for _, d in ws.objects.list_refs(prefix)]  # fmt: skip
    return sorted(found, key=lambda c: c.config)


def all_trials(ws: Workspace, record: SweepRecord) -> tuple[PlannedTrial, ...]:
    """Every trial planned so far, in trial order (an optuna sweep's grow as it runs)."""
    if record.trials:
        return record.trials
    return tuple(t for config in asked_configs(ws, record) for t in config.trials)


def trial_states(
    ws: Workspace, record: SweepRecord, trials: Sequence[PlannedTrial], *, seal: bool = False
) -> dict[str, TrialState]:
    """Each trial's state by key; with ``seal``, a lost run is sealed ``lost`` on the way."""
    states = {t.trial.key: _sealed_state(ws, record.id, t.trial.key) for t in trials}
    if any(s.status == MISSING for s in states.values()):
        for key, state in _started(ws, record.id, seal=seal).items():
            if states.get(key, TrialState(status="")).status == MISSING:
                states[key] = state
    return states


def _sealed_state(ws: Workspace, sweep_id: str, key: str) -> TrialState:
    digest = ws.objects.get_ref(trial_ref(sweep_id, key))
    if digest is None:
        return TrialState(status=MISSING)
    return _state(digest, _object(ws, digest))


def _state(digest: Digest, data: Mapping[str, JsonValue], status: str | None = None) -> TrialState:
    run = data.get("run")
    run = run if isinstance(run, dict) else {}
    return TrialState(status=status or str(run.get("status")), run_id=str(run.get("id")),
                      digest=str(digest), metrics=_metrics(data))  # fmt: skip


def _started(ws: Workspace, sweep_id: str, *, seal: bool) -> dict[str, TrialState]:
    """Trials of the sweep whose run started but whose ref was not set: running, or lost.

    A trial's ref is set when its run is sealed; until then its start record is found among
    the ``active/`` runs (by the ``sweep`` section it records).
    """
    found: dict[str, TrialState] = {}
    for name, digest in ws.objects.list_refs("active/"):
        data = _object(ws, digest)
        info = data.get("sweep")
        if not isinstance(info, dict) or info.get("id") != sweep_id:
            continue
        key, run_id = str(info.get("key")), name.removeprefix("active/")
        sealed = ws.objects.get_ref(f"runs/{run_id}")
        if sealed is not None:  # sealed since, or keel stopped between seal and trial ref
            state = _state(sealed, _object(ws, sealed))
        else:
            digest, status = _running_or_lost(ws, data, digest, seal=seal)
            state = _state(digest, data, status)
        if seal and state.status != "running":
            ws.objects.set_ref(trial_ref(sweep_id, key), Digest.parse(str(state.digest)))
        if found.get(key, TrialState(status="")).status != "running":
            found[key] = state
    return found


def _object(ws: Workspace, digest: Digest) -> dict[str, JsonValue]:
    data = loads(ws.objects.get_bytes(digest))
    if not isinstance(data, dict):
        raise UserError(f"object {digest} is not a run manifest; run `keel verify`")
    return data


def _running_or_lost(
    ws: Workspace, data: dict[str, JsonValue], digest: Digest, *, seal: bool
) -> tuple[Digest, str]:
    from keel.ops.sync import _is_lost, seal_lost

    start = Manifest.from_json(data)
    if not _is_lost(start):
        return digest, "running"
    if not seal:
        return digest, "lost"
    lost = seal_lost(ws, start)
    sealed = ws.objects.get_ref(f"runs/{lost.run.id}")
    if sealed is not None:  # the index ingests it on its next read, as any sealed run
        ws.objects.set_ref(f"pending/{lost.run.id}", sealed)
    return (sealed or digest), lost.run.status.value


def _metrics(data: Mapping[str, JsonValue]) -> dict[str, float]:
    metrics = data.get("metrics")
    out: dict[str, float] = {}
    for name, rec in metrics.items() if isinstance(metrics, dict) else ():
        value = rec.get("value") if isinstance(rec, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def count_statuses(
    trials: Sequence[PlannedTrial], states: Mapping[str, TrialState]
) -> dict[str, int]:
    """How many trials are in each state."""
    counts: dict[str, int] = {}
    for t in trials:
        status = states[t.trial.key].status if t.trial.key in states else MISSING
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


def sweep_table(ws: Workspace, record: SweepRecord, *, metric: str | None = None) -> SweepTable:
    """The sweep's table: one row per configuration (see the module docstring).

    Raises:
        keel.errors.UserError: ``metric`` has no declared goal in the experiment.
    """
    trials = all_trials(ws, record)
    return aggregate(record, trials, trial_states(ws, record, trials), metric=metric)


def aggregate(
    record: SweepRecord,
    trials: Sequence[PlannedTrial],
    states: Mapping[str, TrialState],
    *,
    metric: str | None = None,
) -> SweepTable:
    """Aggregate trial states into the sweep's table (pure)."""
    spec = record.sweep_spec()
    goals = _goals(trials)
    chosen = metric or spec.metric or next(iter(goals), None)
    if metric is not None and metric not in goals:
        raise UserError(f"metric {metric!r} has no declared goal in experiment "
                        f"'{record.experiment}' (with goals: {', '.join(goals) or 'none'}); "
                        "declare it under `metrics:` with `goal: max` or `goal: min`")  # fmt: skip
    by_config: dict[int, list[PlannedTrial]] = {}
    for t in trials:
        by_config.setdefault(t.trial.config, []).append(t)
    names = _metric_names(goals, (states.get(t.trial.key) for t in trials))
    rows = [_row(config, group, states, names) for config, group in sorted(by_config.items())]
    goal = goals.get(chosen) if chosen else None
    rows = _mark_best(rows, chosen, goal)
    part: Partition | None = record.partition
    return SweepTable(
        id=record.id,
        experiment=record.experiment,
        strategy=spec.strategy,
        created_at=record.created_at,
        trials=len(trials),
        statuses=count_statuses(trials, states),
        metrics=tuple(names),
        rows=tuple(rows),
        metric=chosen if goal else None,
        goal=goal if goal in ("max", "min") else None,  # type: ignore[arg-type]
        seeds=spec.seeds,
        folds=part.k if part else None,
        partition=part.digest if part else None,
        flags=record.flags,
    )


def _goals(trials: Sequence[PlannedTrial]) -> dict[str, str]:
    declared = trials[0].plan.get("metrics") if trials else None
    goals: dict[str, str] = {}
    for item in declared if isinstance(declared, list) else []:
        if isinstance(item, list) and len(item) >= 2:
            goals[str(item[0])] = str(item[1])
    return goals


def _metric_names(goals: Mapping[str, str], states: Iterable[TrialState | None]) -> list[str]:
    seen: set[str] = set()
    for state in states:
        if state is not None and state.status == "succeeded":
            seen.update(state.metrics)
    declared = [n for n in goals if n in seen]
    return declared + sorted(seen - set(declared))


def _row(
    config: int,
    group: Sequence[PlannedTrial],
    states: Mapping[str, TrialState],
    names: Sequence[str],
) -> SweepRow:
    counts = count_statuses(group, states)
    done = [states[t.trial.key] for t in group
            if t.trial.key in states and states[t.trial.key].status == "succeeded"]  # fmt: skip
    metrics = {name: _stats([s.metrics[name] for s in done if name in s.metrics])
               for name in names}  # fmt: skip
    runs = tuple(states[t.trial.key].run_id or "" for t in group if t.trial.key in states)
    return SweepRow(config=config, params=dict(group[0].trial.params), trials=len(group),
                    statuses=counts, metrics=metrics,
                    runs=tuple(r for r in runs if r))  # fmt: skip


def _stats(values: Sequence[float]) -> MetricStats:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return MetricStats(mean=None, std=None, n=0)
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return MetricStats(mean=statistics.fmean(finite), std=std, n=len(finite))


def _mark_best(rows: list[SweepRow], metric: str | None, goal: str | None) -> list[SweepRow]:
    if metric is None or goal not in ("max", "min"):
        return rows
    scored = [(r.metrics[metric].mean, i) for i, r in enumerate(rows)
              if metric in r.metrics and r.metrics[metric].mean is not None]  # fmt: skip
    if not scored:
        return rows
    sign = -1.0 if goal == "max" else 1.0
    best = min(scored, key=lambda s: (sign * float(s[0] or 0.0), s[1]))[1]
    from dataclasses import replace

    return [replace(r, best=True) if i == best else r for i, r in enumerate(rows)]


def list_sweeps(ws: Workspace) -> list[SweepListing]:
    """Every sweep in the store, newest first, with how its trials stand."""
    from keel.model.sweep import REF_PREFIX
    from keel.ops.sweep_freeze import read_record

    listings = []
    for name, _ in ws.objects.list_refs(REF_PREFIX):
        record = read_record(ws, name.removeprefix(REF_PREFIX))
        trials = all_trials(ws, record)
        states = trial_states(ws, record, trials)
        spec = record.sweep_spec()
        listings.append(SweepListing(id=record.id, experiment=record.experiment,
                                     strategy=spec.strategy, created_at=record.created_at,
                                     trials=len(trials), statuses=count_statuses(trials, states),
                                     why=record.why))  # fmt: skip
    return sorted(listings, key=lambda s: (s.created_at, s.id), reverse=True)
