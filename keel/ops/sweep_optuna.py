"""Optuna as a sweep strategy: ask and tell in batches, the study in keel's own index database.

Optuna keeps its study in the index database (``optuna.storages.RDBStorage`` on
``Workspace.index_url``), as study ``keel-sweep-<id>``. Its tables (``studies``, ``trials``,
... and ``alembic_version``) never clash with keel's, which all start with ``keel_`` and whose
revision lives in ``keel_alembic_version``.

Proposals are deterministic: the sampler is ``TPESampler(seed=child_seed(root, 2**20+3))``,
configurations are asked ``batch`` at a time (the batch size is frozen in the record, so the
proposals do not depend on the executor), every trial of the batch runs, and results are told
in configuration order after the batch. A configuration's value is the mean of its metric over
its seeds and folds; one whose trials did not all succeed is told ``FAIL``.

Each asked configuration and its planned trials is recorded as an object with ref
``sweep-configs/<id>/<config>`` before it runs. A resume re-runs the trials of configurations
that did not all succeed (with their recorded params), tells the study what it had not been
told (a configuration told ``FAIL`` that now succeeds is added as a completed trial), then
continues asking until the sweep has its ``trials`` configurations. The sampler's random state
is not stored: a resumed study proposes deterministically given where it stopped, but not
necessarily what an uninterrupted sweep would have.

optuna (and so SQLAlchemy) is imported only here, and only for optuna sweeps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from keel.base.canonical import JsonValue, canonical_json
from keel.errors import MissingExtra
from keel.execute.pool import TaskPool
from keel.model.sweep import Axis, SweepSpec
from keel.model.sweeprecord import AskedConfig, PlannedTrial, SweepRecord, config_ref, encode
from keel.ops.sweep_freeze import frozen_plan
from keel.ops.sweep_sandbox import FrozenTree
from keel.ops.sweep_table import MISSING, TrialState, asked_configs, trial_states
from keel.ops.sweep_tasks import EventCallback, Interrupt, run_tasks, trial_context, trial_task
from keel.ops.sweep_trial import TrialContext, TrialResult
from keel.ops.workspace import Workspace

if TYPE_CHECKING:
    from keel.spec.project import ProjectSpec

log = logging.getLogger(__name__)


def _optuna() -> Any:  # optuna ships no type information mypy can use here
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtra(
            "--strategy optuna needs optuna; install it with: pip install 'keel[optuna]'"
        ) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the library never prints
    return optuna


class OptunaSweep:
    """Runs an optuna sweep to its ``trials`` configurations (see the module docstring)."""

    def __init__(
        self,
        ws: Workspace,
        record: SweepRecord,
        *,
        project: ProjectSpec,
        pool: TaskPool,
        tree: FrozenTree,
        interrupt: Interrupt,
        on_event: EventCallback,
    ) -> None:
        self.ws, self.record, self.project = ws, record, project
        self.spec: SweepSpec = record.sweep_spec()
        self.pool, self.interrupt, self.on_event = pool, interrupt, on_event
        self.ctx: TrialContext = trial_context(ws, record, pool, tree)
        self.optuna = _optuna()
        self.metric = str(self.spec.metric or "")
        self.goal = str(record.strategy.get("goal", "max"))
        self.batch = max(1, _int(record.strategy.get("batch"), 1))
        self.results: list[TrialResult] = []

    def run(self, *, total: int) -> list[TrialResult]:
        """Finish what a previous run left, then ask, run and tell batch by batch."""
        storage = self.optuna.storages.RDBStorage(url=self.ws.index_url)
        try:
            study = self.optuna.create_study(
                study_name=str(self.record.strategy.get("study")),
                storage=storage,
                sampler=self.optuna.samplers.TPESampler(
                    seed=_int(self.record.strategy.get("sampler_seed"), 0)
                ),
                direction="maximize" if self.goal == "max" else "minimize",
                load_if_exists=True,
            )
            configs = asked_configs(self.ws, self.record)
            self._finish(study, configs, total=total)
            while len(configs) < (self.spec.trials or 0) and not self.interrupt.is_set:
                n = min(self.batch, (self.spec.trials or 0) - len(configs))
                batch = [self._ask(study, len(configs) + i) for i in range(n)]
                configs.extend(batch)
                self._run_configs(batch, total=total)
                if not self.interrupt.is_set:
                    self._tell(study, batch)
        finally:
            storage.remove_session()
            storage.engine.dispose()
        return self.results

    def _finish(self, study: Any, configs: Sequence[AskedConfig], *, total: int) -> None:
        """Re-run what did not succeed and tell the study what it has not been told."""
        if not configs:
            return
        states = self._states(configs)
        unfinished = [
            c for c in configs if any(states[t.trial.key].status != "succeeded" for t in c.trials)
        ]
        self._run_configs(unfinished, total=total, states=states)  # fmt: skip
        if not self.interrupt.is_set:
            self._tell(study, configs)

    def _states(self, configs: Sequence[AskedConfig]) -> dict[str, TrialState]:
        trials = [t for c in configs for t in c.trials]
        return trial_states(self.ws, self.record, trials, seal=True)

    def _ask(self, study: Any, config: int) -> AskedConfig:
        trial = study.ask()
        params = {axis.name: _suggest(trial, axis) for axis in self.spec.axes}
        asked = AskedConfig(config=config, number=int(trial.number), params=params,
                            trials=self._plan(config, params))  # fmt: skip
        self._save(asked)
        return asked

    def _plan(self, config: int, params: Mapping[str, JsonValue]) -> tuple[PlannedTrial, ...]:
        from keel.resolve.sweep import plan_trial

        folds: list[int | None] = list(range(self.spec.folds.k)) if self.spec.folds else [None]
        per_config = self.spec.seeds * len(folds)
        planned = []
        for r in range(self.spec.seeds):
            for i, fold in enumerate(folds):
                trial, plan = plan_trial(
                    self.project, self.spec, profile=self.record.profile, params=params,
                    index=config * per_config + r * len(folds) + i, config=config, replicate=r,
                    fold=fold, partition=self.record.partition,
                    input_digests=self.record.input_digests,
                )  # fmt: skip
                frozen = frozen_plan(plan, self.record.inputs)
                planned.append(PlannedTrial(trial=trial, plan=frozen))
        return tuple(planned)

    def _save(self, asked: AskedConfig) -> None:
        digest = self.ws.objects.put_bytes(canonical_json(encode(asked)))
        self.ws.objects.set_ref(config_ref(self.record.id, asked.config), digest)

    def _run_configs(
        self,
        configs: Sequence[AskedConfig],
        *,
        total: int,
        states: Mapping[str, TrialState] | None = None,
    ) -> None:
        todo = [t for c in configs for t in c.trials
                if states is None or states[t.trial.key].status != "succeeded"]  # fmt: skip
        if states is not None:
            todo = [t for t in todo if states[t.trial.key].status != "running"]
        tasks = [trial_task(self.ctx, self.record, t) for t in todo]
        self.results += run_tasks(self.pool, tasks, self.interrupt, self.on_event,
                                  done_before=len(self.results), total=total)  # fmt: skip

    def _tell(self, study: Any, configs: Sequence[AskedConfig]) -> None:
        """Tell each configuration's result, in configuration order."""
        finished = {t.number: t for t in study.get_trials(deepcopy=False)}
        states = self._states(configs)
        for config in configs:
            value = self._value(config, states)
            known = finished.get(config.number)
            state = known.state if known is not None else None
            if state == self.optuna.trial.TrialState.RUNNING:
                if value is None:
                    study.tell(config.number, state=self.optuna.trial.TrialState.FAIL)
                else:
                    study.tell(config.number, value)
            elif state == self.optuna.trial.TrialState.FAIL and value is not None:
                self._add_completed(study, config, value)

    def _value(self, config: AskedConfig, states: Mapping[str, TrialState]) -> float | None:
        values = []
        for t in config.trials:
            state = states.get(t.trial.key, TrialState(status=MISSING))
            if state.status != "succeeded" or self.metric not in state.metrics:
                return None
            values.append(state.metrics[self.metric])
        return sum(values) / len(values) if values else None

    def _add_completed(self, study: Any, config: AskedConfig, value: float) -> None:
        distributions = {axis.name: _distribution(self.optuna, axis) for axis in self.spec.axes}
        trial = self.optuna.trial.create_trial(
            params=dict(config.params), distributions=distributions, value=value
        )
        study.add_trial(trial)
        number = max(t.number for t in study.get_trials(deepcopy=False))
        self._save(replace(config, number=number))


def _suggest(trial: Any, axis: Axis) -> JsonValue:
    from keel.spec.sweep import tidy_float

    if axis.kind == "values":
        return trial.suggest_categorical(axis.name, list(axis.values))  # type: ignore[no-any-return]
    low, high = float(axis.low or 0.0), float(axis.high or 0.0)
    if axis.kind == "randint":
        return int(trial.suggest_int(axis.name, int(low), int(high)))
    value = float(trial.suggest_float(axis.name, low, high, log=axis.kind == "loguniform"))
    return min(max(tidy_float(value), low), high)


def _distribution(optuna: Any, axis: Axis) -> Any:
    dist = optuna.distributions
    if axis.kind == "values":
        return dist.CategoricalDistribution(list(axis.values))
    low, high = float(axis.low or 0.0), float(axis.high or 0.0)
    if axis.kind == "randint":
        return dist.IntDistribution(int(low), int(high))
    return dist.FloatDistribution(low, high, log=axis.kind == "loguniform")


def _int(value: JsonValue, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def check_axes(spec: SweepSpec) -> list[str]:
    """Axes optuna cannot sample (a list of values that are not all scalars), as messages."""
    bad = []
    for axis in spec.axes:
        if axis.kind == "values" and not all(
            v is None or isinstance(v, bool | int | float | str) for v in axis.values
        ):
            bad.append(f"axis {axis.name} ({axis.text}): optuna can only choose among scalars")
    return bad
