"""`keel sweep`: freeze a sweep, run its trials on a task pool, resume it, show it.

A sweep runs in three steps. :func:`~keel.ops.sweep_freeze.prepare_sweep` validates and plans
everything (nothing recorded yet); the pool is opened (an unreachable Dask scheduler fails
here, still before any record); the frozen code is materialised once and the record is written
(ref ``sweeps/<id>``). Then the trials run, each a sealed run in its own hard-link copy of the
frozen tree (see :mod:`keel.ops.sweep_trial`), and the sandbox is removed once the pool has
closed.

:func:`resume_sweep` reads the record, finds each trial's state by its identity (the trial
key, a digest of its resolved configuration) and runs only the ones missing, failed, killed or
lost — so running it twice runs nothing the second time.

The library never prints: progress goes to ``on_event(kind, data)`` with kinds ``sweep``
(id, total, to_run, resumed), ``trial`` (one per finished trial) and ``interrupted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue
from keel.errors import UserError
from keel.execute.pool import TaskPool, open_pool
from keel.model.manifest import InputRecord
from keel.model.sweeprecord import COPIED_FLAG, PlannedTrial, SweepRecord
from keel.ops.replay import Sandbox
from keel.ops.sweep_freeze import (
    PreparedSweep,
    SweepRequest,
    load_sweep,
    prepare_sweep,
    record_sweep,
)
from keel.ops.sweep_sandbox import FrozenTree, materialise
from keel.ops.sweep_table import (
    RERUN,
    TrialState,
    all_trials,
    asked_configs,
    count_statuses,
    trial_states,
)
from keel.ops.sweep_tasks import (
    EventCallback,
    Interrupt,
    interrupts,
    run_tasks,
    trial_context,
    trial_task,
)
from keel.ops.sweep_trial import CANCELLED, ERROR, TrialResult
from keel.ops.workspace import Workspace

if TYPE_CHECKING:
    from keel.spec.project import ProjectSpec

__all__ = ["PoolOptions", "SweepOutcome", "SweepRequest", "resume_sweep", "start_sweep"]


def _no_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """The default progress callback: do nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolOptions:
    """Where trials run: ``--executor local|pool|dask [--jobs N] [--scheduler ADDRESS]``."""

    executor: str = "local"
    jobs: int | None = None
    scheduler: str | None = None

    def open(self) -> TaskPool:
        """Open the pool (raises a UserError for bad options or an unreachable scheduler)."""
        return open_pool(self.executor, jobs=self.jobs, scheduler=self.scheduler)


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepOutcome:
    """What a sweep (or a resume) did: this invocation's results and every trial's state."""

    record: SweepRecord
    trials: tuple[PlannedTrial, ...]
    states: dict[str, TrialState]
    results: tuple[TrialResult, ...] = ()
    to_run: int = 0
    interrupted: bool = False
    resumed: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def statuses(self) -> dict[str, int]:
        """How many trials are in each state now."""
        return count_statuses(self.trials, self.states)

    @property
    def ok(self) -> bool:
        """True when every planned trial has succeeded."""
        return all(s.status == "succeeded" for s in self.states.values()) and bool(self.trials)


def start_sweep(
    ws: Workspace,
    request: SweepRequest,
    *,
    pool_options: PoolOptions | None = None,
    pool: TaskPool | None = None,
    on_event: EventCallback = _no_event,
) -> SweepOutcome:
    """Validate, freeze and run a new sweep.

    ``pool`` runs the trials when given (the caller closes it; trials still running after an
    interrupt are then left to it); otherwise ``pool_options`` opens one for the sweep.

    Raises:
        keel.errors.UserError: (and its subclasses) anything wrong with the request, the
            project or the pool — always before the sweep is recorded.
    """
    options = pool_options or PoolOptions()
    prepared = prepare_sweep(ws, request)
    with _Run(ws, options, pool) as run:
        tree = run.materialise(prepared.code, prepared.inputs, need=prepared.input_bytes)
        batch = options.jobs or run.pool.parallelism
        record = record_sweep(ws, prepared, tree_digest=tree.tree_digest, batch=batch)
        trials = record.trials
        states = {t.trial.key: TrialState(status="missing") for t in trials}
        total = _total(record, prepared)
        on_event("sweep", {"id": record.id, "experiment": record.experiment, "total": total,
                           "to_run": total, "resumed": False})  # fmt: skip
        results, interrupted = run.trials(record, tree, list(trials), on_event, total=total)
    return _outcome(ws, record, states, results, interrupted=interrupted, to_run=total)


def resume_sweep(
    ws: Workspace,
    ref: str,
    *,
    pool_options: PoolOptions | None = None,
    pool: TaskPool | None = None,
    on_event: EventCallback = _no_event,
) -> SweepOutcome:
    """Run the trials of sweep ``ref`` that are missing, failed, killed or lost.

    Trials are matched by identity (key), never by position; a lost run is sealed ``lost``
    first. With nothing left to run, nothing is started (no sandbox, no pool).

    Raises:
        keel.errors.RunRefError: no sweep matches ``ref``, or several do.
        keel.errors.UserError: the frozen code cannot be restored (named), or the options
            are wrong.
    """
    record = load_sweep(ws, ref)
    trials = all_trials(ws, record)
    states = trial_states(ws, record, trials, seal=True)
    todo = [t for t in trials if states[t.trial.key].status in RERUN]
    remaining = _remaining(ws, record)
    to_run = len(todo) + remaining
    on_event("sweep", {"id": record.id, "experiment": record.experiment,
                       "total": len(trials) + remaining, "to_run": to_run,
                       "resumed": True})  # fmt: skip
    if to_run == 0:
        return SweepOutcome(record=record, trials=trials, states=states, resumed=True)
    options = pool_options or PoolOptions()
    with _Run(ws, options, pool) as run:
        tree = run.materialise(record.code, record.inputs, need=0)
        _check_copy(record, tree)
        results, interrupted = run.trials(record, tree, todo, on_event, total=to_run)
    return _outcome(ws, record, states, results, interrupted=interrupted, to_run=to_run,
                    resumed=True)  # fmt: skip


def _total(record: SweepRecord, prepared: PreparedSweep) -> int:
    if record.trials:
        return len(record.trials)
    spec = prepared.spec
    return (spec.trials or 0) * spec.seeds * (spec.folds.k if spec.folds else 1)


def _remaining(ws: Workspace, record: SweepRecord) -> int:
    """Trials an adaptive strategy has still to ask for."""
    if record.trials or record.strategy.get("name") != "optuna":
        return 0
    spec = record.sweep_spec()
    per_config = spec.seeds * (spec.folds.k if spec.folds else 1)
    return max(0, (spec.trials or 0) - len(asked_configs(ws, record))) * per_config


def _check_copy(record: SweepRecord, tree: FrozenTree) -> None:
    if COPIED_FLAG not in record.flags:
        return
    recorded = record.strategy.get("tree_digest")
    if recorded != tree.tree_digest:
        raise UserError(
            f"sweep {record.id} ran on a copy of a project that is not a git repository, and "
            "the project's files have changed since; keel cannot restore the code it started "
            "with, so it will not mix it with today's: put the files back, or start a new sweep"
        )


def _outcome(
    ws: Workspace,
    record: SweepRecord,
    states: dict[str, TrialState],
    results: list[TrialResult],
    *,
    interrupted: bool,
    to_run: int,
    resumed: bool = False,
) -> SweepOutcome:
    trials = all_trials(ws, record)
    merged = dict(states)
    errors: dict[str, str] = {}
    for r in results:
        if r.error is not None:
            errors[r.key] = r.error
        elif r.status != CANCELLED:
            merged[r.key] = TrialState(status=r.status, run_id=r.run_id, digest=r.digest,
                                       metrics=dict(r.metrics))  # fmt: skip
    seen = {r.key for r in results if r.status not in (CANCELLED, ERROR)}
    # trials still running when the sweep stopped, cancelled, failed in keel, or asked since
    unread = [t for t in trials if t.trial.key not in seen]
    merged.update(trial_states(ws, record, unread))
    return SweepOutcome(record=record, trials=trials, states=merged, results=tuple(results),
                        to_run=to_run, interrupted=interrupted, resumed=resumed,
                        errors=errors)  # fmt: skip


class _Run:
    """One invocation's pool and sandbox: the pool closes (its trials end) before the sandbox
    is removed."""

    def __init__(self, ws: Workspace, options: PoolOptions, pool: TaskPool | None) -> None:
        self.ws = ws
        self._own = pool is None
        self.pool = pool if pool is not None else options.open()
        self._sandbox: Sandbox | None = None

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._own:
                self.pool.close()
        finally:
            if self._sandbox is not None:
                self._sandbox.remove()

    def materialise(
        self, code: dict[str, JsonValue], inputs: tuple[InputRecord, ...], *, need: int
    ) -> FrozenTree:
        """Restore the frozen code and inputs once for this invocation."""
        from concurrent.futures import ThreadPoolExecutor

        need_bytes = need * (self.pool.parallelism + 1)
        # Fill the environment cache while the tree is restored, so that workers starting
        # together read it instead of each probing the interpreter.
        with ThreadPoolExecutor(max_workers=1) as warm:
            warm.submit(_warm_environment, self.ws)
            sandbox, tree = materialise(self.ws, code, inputs, need_bytes=need_bytes)
        self._sandbox = sandbox
        return tree

    def trials(
        self,
        record: SweepRecord,
        tree: FrozenTree,
        todo: list[PlannedTrial],
        on_event: EventCallback,
        *,
        total: int,
    ) -> tuple[list[TrialResult], bool]:
        """Run ``todo`` (or, for optuna, the study) until done or interrupted."""
        with interrupts(tree.stop_file) as interrupt:
            if record.strategy.get("name") == "optuna":
                results = self._optuna(record, tree, interrupt, on_event, total=total)
            else:
                ctx = trial_context(self.ws, record, self.pool, tree)
                tasks = [trial_task(ctx, record, t) for t in todo]
                results = run_tasks(self.pool, tasks, interrupt, on_event, total=total)
            if interrupt.is_set:
                on_event("interrupted", {"id": record.id})
            return results, interrupt.is_set

    def _optuna(
        self,
        record: SweepRecord,
        tree: FrozenTree,
        interrupt: Interrupt,
        on_event: EventCallback,
        *,
        total: int,
    ) -> list[TrialResult]:
        from keel.ops.sweep_optuna import OptunaSweep

        project = _frozen_project(self.ws, record, tree)
        sweep = OptunaSweep(self.ws, record, project=project, pool=self.pool, tree=tree,
                            interrupt=interrupt, on_event=on_event)  # fmt: skip
        return sweep.run(total=total)


def _warm_environment(ws: Workspace) -> None:
    from keel.capture.environment import capture_environment

    capture_environment(project_root=ws.root, environ=ws.environ, cache_dir=ws.cache_dir)


def _frozen_project(ws: Workspace, record: SweepRecord, tree: FrozenTree) -> ProjectSpec:
    """keel.yaml as frozen in the sweep's code (never today's)."""
    import os

    from keel.spec.project import load_project

    rel = os.path.relpath(ws.facts.spec_file, ws.root)
    project = load_project(Path(tree.project_root, rel))
    if project.digest != record.spec_digest:
        raise UserError(
            f"{rel} in the frozen code of sweep {record.id} is not the file it was planned "
            f"from ({project.digest} != {record.spec_digest}); keel cannot continue it"
        )
    return project
