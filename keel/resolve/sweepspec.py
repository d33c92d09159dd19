"""Read a sweep request: a declared sweep or an experiment, plus command-line options.

:func:`parse_sweep` checks everything that can be checked before a trial runs — axes against
the catalog, counts, folds and their data, the metric — and raises one error that lists every
problem. A problem with a value from keel.yaml is located at its line there; one with a
command-line value names the option (``-p c``, ``--trials``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from keel.base.suggest import did_you_mean
from keel.errors import InvalidParameter, Problem, ValidationError
from keel.model.sweep import Axis, FoldSpec, FoldStrategy, Strategy, SweepSpec
from keel.resolve.axes import Fixed, parse_axis
from keel.resolve.resolve import unknown_param
from keel.spec.catalog import BadValue
from keel.spec.experiment import ExperimentSpec, path_problem
from keel.spec.problems import KeyPath
from keel.spec.project import ProjectSpec
from keel.spec.sweep import FOLD_STRATEGIES, STRATEGIES, SweepDecl, declared_axis

MAX_TRIALS = 100_000
"""The most trials one sweep may plan (configurations x seeds x folds)."""

_TABLES = (".csv", ".parquet")


def parse_sweep(
    project: ProjectSpec,
    *,
    name: str,
    axes: Sequence[str] = (),
    strategy: str | None = None,
    trials: int | None = None,
    seeds: int | None = None,
    folds: int | None = None,
    fold_strategy: str | None = None,
    fold_data: str | None = None,
    fold_label: str | None = None,
    fold_group: str | None = None,
    seed: int | None = None,
    metric: str | None = None,
    timeout_s: float | None = None,
    why: str | None = None,
) -> SweepSpec:
    """Read and check a sweep: ``name`` is a sweep declared in keel.yaml, or an experiment.

    Each option given here replaces the declared one; an axis ``-p NAME=...`` replaces the
    declared axis of ``NAME`` (at its position; new axes follow the declared ones) and a single
    value fixes ``NAME`` for every trial (``SweepSpec.fixed``). The returned spec carries the
    effective root ``seed``, the ``metric`` (defaulting to the experiment's only metric) and
    the fold ``data`` (defaulting to the experiment's first ``.csv``/``.parquet`` input that
    is not a dataset). With ``trials`` and the grid strategy, the first ``trials``
    configurations in grid order are run.

    Args:
        project: the loaded keel.yaml.
        name: a declared sweep (preferred when both exist) or an experiment.
        axes: the ``-p NAME=EXPR`` texts (see :mod:`keel.resolve.axes`).
        strategy: ``grid``, ``random`` or ``optuna``.
        trials: how many configurations to try (required by random and optuna).
        seeds: how many seed replicates of each configuration (at least 1).
        folds: cross-validation folds ``k`` (at least 2).
        fold_strategy: ``kfold``, ``stratified`` (needs ``fold_label``) or ``group`` (needs
            ``fold_group``).
        fold_data: the table whose rows are split, relative to the project root.
        fold_label: the class column for stratified folds.
        fold_group: the group column for group folds.
        seed: the root seed.
        metric: the metric to rank and optimise by; one of the experiment's.
        timeout_s: each trial's time limit, replacing the experiment's.
        why: the rationale recorded with each trial.

    Raises:
        keel.errors.ValidationError: ``name`` is neither a sweep nor an experiment.
        keel.errors.InvalidParameter: every other problem, all listed at once.
    """
    target = _target(project, name)
    parsed = _axes(target, axes)
    chosen = _strategy(target, strategy)
    fold_spec = _folds(
        target,
        _FoldArgs(
            k=folds, strategy=fold_strategy, data=fold_data, label=fold_label, group=fold_group
        ),
    )
    spec = SweepSpec(
        experiment=target.experiment,
        axes=parsed.axes,
        strategy=chosen,
        trials=_trials(target, trials, strategy=chosen, axes=parsed),
        seeds=_seeds(target, seeds),
        folds=fold_spec,
        fixed=parsed.fixed,
        seed=_root_seed(target, seed),
        metric=_metric(target, metric, strategy=chosen),
        timeout_s=_timeout(target, timeout_s),
        why=why if why is not None else (target.decl.why if target.decl else None),
        name=target.sweep,
    )
    if target.problems:
        raise InvalidParameter(target.problems)
    _check_size(spec)
    return spec


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    """What is being swept, and the problems found so far."""

    project: ProjectSpec
    sweep: str | None
    decl: SweepDecl | None
    experiment: str
    exp: ExperimentSpec
    problems: list[Problem]

    def add(
        self,
        message: str,
        *,
        key: str,
        field: KeyPath = (),
        cli: bool = True,
        hint: str | None = None,
    ) -> None:
        """Record a problem: at the command-line option ``key``, or where the sweep declares
        ``field`` when the value came from keel.yaml (``cli=False``)."""
        if cli or self.sweep is None:
            problem = Problem(key=key, message=message, hint=hint)
        else:
            problem = self.project.problem(("sweeps", self.sweep, *field), message, hint=hint)
        if problem not in self.problems:
            self.problems.append(problem)


def _target(project: ProjectSpec, name: str) -> _Target:
    decl = project.sweeps.get(name)
    experiment = decl.experiment if decl is not None else name
    exp = project.experiments.get(experiment)
    if exp is None:
        hint = did_you_mean(name, [*project.sweeps, *project.experiments])
        message = f"unknown sweep or experiment '{name}'"
        raise ValidationError([Problem(file=project.file.name, message=message, hint=hint)])
    return _Target(
        project=project,
        sweep=name if decl is not None else None,
        decl=decl,
        experiment=experiment,
        exp=exp,
        problems=[],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Axes:
    axes: tuple[Axis, ...]
    fixed: dict[str, str]
    from_cli: frozenset[str]


def _axes(target: _Target, texts: Sequence[str]) -> _Axes:
    """The declared axes with the command line's replacing them, and the fixed values."""
    declared: dict[str, Axis] = {}
    for name, value in (target.decl.params if target.decl else {}).items():
        axis = declared_axis(target.project.params[name], name=name, value=value)
        if isinstance(axis, BadValue):  # checked when keel.yaml was loaded
            target.add(axis.message, key=f"-p {name}", field=("params", name), cli=False)
        else:
            declared[name] = axis
    given: dict[str, Axis] = {}
    fixed: dict[str, str] = {}
    seen: set[str] = set()
    for text in texts:
        found = _cli_axis(target, text, seen)
        if isinstance(found, Fixed):
            fixed[text.partition("=")[0].strip()] = found.text
        elif found is not None:
            given[found.name] = found
    ordered = [given.get(name, axis) for name, axis in declared.items() if name not in fixed]
    ordered += [axis for name, axis in given.items() if name not in declared]
    return _Axes(axes=tuple(ordered), fixed=fixed, from_cli=frozenset(given))


def _cli_axis(target: _Target, text: str, seen: set[str]) -> Axis | Fixed | None:
    name, sep, expr = text.partition("=")
    name = name.strip()
    key = f"-p {name}" if name else "-p"
    if not sep or not name:
        hint = "write -p c=0.1,1 or -p n=range(1,5)"
        target.add(f"'{text}' is not NAME=VALUES", key=key, hint=hint)
        return None
    if name in seen:
        hint = f"give all its values in one -p: -p {name}=a,b"
        target.add(f"parameter '{name}' is given twice", key=key, hint=hint)
        return None
    seen.add(name)
    if name not in target.exp.param_names:
        problem = unknown_param(target.project, name, target.experiment, target.exp)
        target.add(problem.message, key=key, hint=problem.hint)
        return None
    found = parse_axis(target.project.params[name], name=name, text=expr)
    if isinstance(found, BadValue):
        target.add(found.message, key=key, hint=found.hint)
        return None
    return found


def _strategy(target: _Target, given: str | None) -> Strategy:
    if given is None:
        declared = target.decl.strategy if target.decl else None
        return declared or "grid"
    for strategy in STRATEGIES:
        if strategy == given:
            return strategy
    target.add(
        f"'{given}' is not a strategy: {', '.join(STRATEGIES)}",
        key="--strategy",
        hint=did_you_mean(given, STRATEGIES),
    )
    return "grid"


def _trials(target: _Target, given: int | None, *, strategy: Strategy, axes: _Axes) -> int | None:
    if given is not None and given < 1:
        target.add(f"must be at least 1, got {given}", key="--trials")
        return None
    trials = given if given is not None else (target.decl.trials if target.decl else None)
    if strategy == "grid":
        _check_grid(target, trials, axes=axes, from_cli=given is not None)
        return trials
    if trials is None:
        target.add(
            f"--strategy {strategy} needs --trials N: how many configurations to try",
            key="--trials",
        )
    if not axes.axes:
        target.add(
            f"--strategy {strategy} needs at least one axis to search",
            key="-p",
            hint="add -p NAME=VALUES, or an expression such as -p lr=loguniform(1e-4,1)",
        )
    return trials


def _check_grid(target: _Target, trials: int | None, *, axes: _Axes, from_cli: bool) -> None:
    sampled = [axis for axis in axes.axes if axis.kind != "values"]
    for axis in sampled:
        what = "an integer interval" if axis.kind == "randint" else "continuous"
        target.add(
            f"axis {axis.name}={axis.text} is {what}; grid needs explicit values",
            key=f"-p {axis.name}",
            field=("params", axis.name),
            cli=axis.name in axes.from_cli,
            hint="use --strategy random or optuna",
        )
    size = math.prod(len(axis.values) for axis in axes.axes)
    if trials is not None and not sampled and trials > size:
        target.add(
            f"{trials} trials is more than the grid's {size} configurations",
            key="--trials",
            field=("trials",),
            cli=from_cli,
            hint="leave out --trials to run the whole grid, or use --strategy random",
        )


def _seeds(target: _Target, given: int | None) -> int:
    if given is None:
        return (target.decl.seeds if target.decl else None) or 1
    if given < 1:
        target.add(f"must be at least 1, got {given}", key="--seeds")
        return 1
    return given


def _root_seed(target: _Target, given: int | None) -> int:
    if given is not None:
        if given < 0:
            target.add(f"must be at least 0, got {given}", key="--seed")
        return max(given, 0)
    for found in (target.decl.seed if target.decl else None, target.exp.seed):
        if found is not None:
            return found
    return 0


def _metric(target: _Target, given: str | None, *, strategy: Strategy) -> str | None:
    chosen = given if given is not None else (target.decl.metric if target.decl else None)
    metrics = target.exp.metrics
    if chosen is not None:
        if chosen in metrics:
            return chosen
        target.add(
            f"'{chosen}' is not a metric of experiment '{target.experiment}'",
            key="--metric",
            field=("metric",),
            cli=given is not None,
            hint=did_you_mean(chosen, metrics),
        )
        return None
    if len(metrics) == 1:
        return next(iter(metrics))
    if strategy == "optuna" and metrics:
        target.add(
            "--strategy optuna needs --metric: the metric to optimise",
            key="--metric",
            hint="one of: " + ", ".join(metrics),
        )
    elif strategy == "optuna":
        target.add(
            f"--strategy optuna needs a metric to optimise; "
            f"experiment '{target.experiment}' declares none",
            key="--metric",
            hint=f"declare one in experiments.{target.experiment}.metrics",
        )
    return None


def _timeout(target: _Target, given: float | None) -> float | None:
    if given is None:
        return target.decl.timeout if target.decl else None
    if not (math.isfinite(given) and given > 0):
        target.add(f"must be a number of seconds above 0, got {given}", key="--timeout")
        return None
    return given


@dataclass(frozen=True, slots=True, kw_only=True)
class _FoldArgs:
    k: int | None
    strategy: str | None
    data: str | None
    label: str | None
    group: str | None


def _folds(target: _Target, args: _FoldArgs) -> FoldSpec | None:
    declared = target.decl.folds if target.decl else None
    k = args.k if args.k is not None else (declared.k if declared else None)
    if k is None:
        for option, value in _fold_options(args):
            if value is not None:
                target.add(f"{option} needs --folds K", key=option)
        return None
    if args.k is not None and args.k < 2:
        target.add(f"must be at least 2, got {args.k}", key="--folds")
    strategy = _fold_strategy(target, args.strategy, declared.strategy if declared else "kfold")
    label = args.label if args.label is not None else (declared.label if declared else None)
    group = args.group if args.group is not None else (declared.group if declared else None)
    if strategy == "stratified" and label is None:
        hint = "the column that holds each row's class"
        target.add("stratified folds need --fold-label COLUMN", key="--fold-strategy", hint=hint)
    if strategy == "group" and group is None:
        hint = "the column whose rows must stay in one fold"
        target.add("group folds need --fold-group COLUMN", key="--fold-strategy", hint=hint)
    data = args.data if args.data is not None else (declared.data if declared else None)
    from_cli = args.data is not None or data is None
    data = data if data is not None else _default_data(target.exp)
    _check_fold_data(target, data, from_cli=from_cli)
    return FoldSpec(k=max(k, 2), strategy=strategy, data=data, label=label, group=group)


def _fold_options(args: _FoldArgs) -> list[tuple[str, str | None]]:
    return [
        ("--fold-strategy", args.strategy),
        ("--fold-data", args.data),
        ("--fold-label", args.label),
        ("--fold-group", args.group),
    ]


def _fold_strategy(target: _Target, given: str | None, declared: str) -> FoldStrategy:
    chosen = given if given is not None else declared
    for strategy in FOLD_STRATEGIES:
        if strategy == chosen:
            return strategy
    target.add(
        f"'{chosen}' is not a fold strategy: {', '.join(FOLD_STRATEGIES)}",
        key="--fold-strategy",
        hint=did_you_mean(chosen, FOLD_STRATEGIES),
    )
    return "kfold"


def _default_data(exp: ExperimentSpec) -> str | None:
    """The experiment's first input that is a table and not a dataset."""
    for item in exp.inputs:
        if item.dataset is None and PurePosixPath(item.path).suffix.lower() in _TABLES:
            return item.path
    return None


def _check_fold_data(target: _Target, data: str | None, *, from_cli: bool) -> None:
    if data is None:
        target.add(
            "--folds needs --fold-data PATH: the rows to split",
            key="--fold-data",
            hint=f"or declare a .csv or .parquet input in experiments.{target.experiment}.inputs",
        )
        return
    reason = path_problem(data)
    hint: str | None = None
    if reason is None and not (target.project.root / data).is_file():
        reason = f"fold data '{data}' does not exist in {target.project.root}"
        hint = "create it, or fix the path"
    if reason is not None:
        target.add(reason, key="--fold-data", field=("folds", "data"), cli=from_cli, hint=hint)


def _check_size(spec: SweepSpec) -> None:
    if spec.strategy == "grid":
        configs = math.prod(len(axis.values) for axis in spec.axes)
        configs = min(configs, spec.trials) if spec.trials is not None else configs
    else:
        configs = spec.trials or 0
    total = configs * spec.seeds * (spec.folds.k if spec.folds else 1)
    if total > MAX_TRIALS:
        raise InvalidParameter(
            [
                Problem(
                    key="-p",
                    message=f"the sweep has {total} trials; keel plans at most {MAX_TRIALS}",
                    hint="use fewer values, seeds or folds, or --strategy random with --trials",
                )
            ]
        )
