"""The keel.yaml ``sweeps:`` section: declared sweeps load checked, and every problem is located."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.spec import ProjectSpec, load_project
from keel.spec.facts import read_facts
from keel.spec.sweep import FoldsDecl, SweepDecl
from tests.spec.samples import write_spec

Make = Callable[[str], ProjectSpec]
Problems = Callable[[str], list[str]]

HEAD = """\
project: sweepy
params:
  lr: {type: float, default: 0.1, min: 0.0001, max: 10}
  epochs: {type: int, default: 3, min: 1, max: 100}
  mode: {type: choice, choices: [fast, slow], default: fast}
  spare: {type: int, default: 1}
experiments:
  train:
    command: python train.py {lr} {epochs} {mode}
    params: [lr, epochs, mode]
    metrics:
      acc: {goal: max}
"""
"""Twelve lines: a ``sweeps:`` key after it is on line 13."""


def test_a_declared_sweep_loads_with_checked_values(make_project: Make) -> None:
    project = make_project(
        HEAD
        + """\
sweeps:
  tune:
    experiment: train
    params:
      lr: [1, 0.1]
      epochs: "range(1,4)"
      mode: [fast, slow]
    seeds: 3
    folds: {k: 5, strategy: stratified, data: data/iris.csv, label: species}
    strategy: random
    trials: 20
    metric: acc
    timeout: 60
    seed: 9
    why: Find a good rate
"""
    )
    assert project.sweeps == {
        "tune": SweepDecl(
            experiment="train",
            params={"lr": [1.0, 0.1], "epochs": "range(1,4)", "mode": ["fast", "slow"]},
            seeds=3,
            folds=FoldsDecl(k=5, strategy="stratified", data="data/iris.csv", label="species"),
            strategy="random",
            trials=20,
            metric="acc",
            timeout=60.0,
            seed=9,
            why="Find a good rate",
        )
    }
    lr = project.sweeps["tune"].params["lr"]
    assert isinstance(lr, list) and isinstance(lr[0], float)


def test_folds_may_be_just_a_number_and_unset_fields_stay_unset(make_project: Make) -> None:
    project = make_project(HEAD + "sweeps:\n  cv:\n    experiment: train\n    folds: 4\n")
    decl = project.sweeps["cv"]
    assert decl.folds == FoldsDecl(k=4)
    assert decl.params == {}
    assert (decl.strategy, decl.trials, decl.seeds, decl.metric, decl.timeout) == (None,) * 5


def test_an_empty_section_means_no_sweeps(make_project: Make) -> None:
    assert make_project(HEAD + "sweeps:\n").sweeps == {}
    assert make_project(HEAD).sweeps == {}


def test_every_problem_is_reported_at_once_with_its_line(make_problems: Problems) -> None:
    problems = make_problems(
        HEAD
        + """\
sweeps:
  tune:
    experiment: trian
    flavour: x
  grid:
    experiment: train
    params:
      lr: [0.01, 50]
      epochs: "range(5,1)"
      mdoe: [fast]
      spare: [1, 2]
      mode: "fast,slow"
    metric: accuracy
    strategy: grd
    seeds: 0
    folds:
      k: 1
      strategy: stratified
      data: ../outside.csv
"""
    )
    assert problems == [
        "keel.yaml:15: sweeps.tune.experiment: unknown experiment 'trian'; did you mean 'train'?",
        "keel.yaml:16: sweeps.tune.flavour: unknown key; valid names: experiment, folds, metric, "
        "params, seed, seeds, strategy, timeout, trials, why",
        "keel.yaml:20: sweeps.grid.params.lr: 50 is out of range: must be between 0.0001 and 10",
        "keel.yaml:21: sweeps.grid.params.epochs: range(5,1) is empty; range(start,stop) counts "
        "from start up to stop-1: range(1,5) is 1, 2, 3, 4",
        "keel.yaml:22: sweeps.grid.params.mdoe: unknown parameter 'mdoe'; did you mean 'mode'?",
        "keel.yaml:23: sweeps.grid.params.spare: parameter 'spare' is not used by experiment "
        "'train'; add it to experiments.train.params",
        "keel.yaml:24: sweeps.grid.params.mode: 'fast,slow' is not an axis expression; write the "
        "values as a YAML list such as [a, b], or use range(...), linspace(...), uniform(...), "
        "loguniform(...) or randint(...)",
        "keel.yaml:25: sweeps.grid.metric: 'accuracy' is not a metric of experiment 'train'; "
        "valid names: acc",
        "keel.yaml:26: sweeps.grid.strategy: must be one of: grid, random, optuna; got 'grd' "
        "(text); did you mean 'grid'?",
        "keel.yaml:27: sweeps.grid.seeds: must be at least 1, got 0",
        "keel.yaml:29: sweeps.grid.folds.k: must be at least 2, got 1",
    ]


def test_fold_declarations_are_checked(make_problems: Problems) -> None:
    problems = make_problems(
        HEAD
        + """\
sweeps:
  strat:
    experiment: train
    folds:
      k: 3
      strategy: stratified
      data: ../outside.csv
  grouped:
    experiment: train
    folds:
      k: 3
      strategy: group
      labl: y
"""
    )
    assert problems == [
        "keel.yaml:18: sweeps.strat.folds.strategy: stratified folds need a label column; "
        "add label: COLUMN (the class of each row)",
        "keel.yaml:19: sweeps.strat.folds.data: '../outside.csv' leads outside the project",
        "keel.yaml:25: sweeps.grouped.folds.labl: unknown key; did you mean 'label'?",
    ]


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        pytest.param(
            "lr: 0.5",
            "expected a list of values or an axis expression, got 0.5; "
            "write a list, even for one value: [v]",
            id="scalar",
        ),
        pytest.param("lr: []", "no values given", id="empty-list"),
        pytest.param(
            "lr: [0.1, 0.10]", "value 0.1 is listed twice; give each value once", id="repeat"
        ),
        pytest.param(
            'epochs: "uniform(1,5)"',
            "uniform() applies to float parameters; 'epochs' is an int parameter; "
            "for an int parameter use range(start,stop), or list the values",
            id="uniform-on-int",
        ),
        pytest.param(
            'lr: "loguniform(0,1)"',
            "loguniform(0,1): loguniform needs low above 0; use uniform(a,b) instead",
            id="loguniform-at-zero",
        ),
        pytest.param(
            'mode: "range(2)"',
            "range() applies to int parameters; 'mode' is a choice parameter; list the values",
            id="range-on-choice",
        ),
        pytest.param(
            "mode: [fast, medium]",
            "'medium' is not one of the choices: fast, slow",
            id="bad-choice",
        ),
    ],
)
def test_a_bad_axis_is_located_at_its_parameter(
    make_problems: Problems, axis: str, message: str
) -> None:
    text = HEAD + f"sweeps:\n  s:\n    experiment: train\n    params:\n      {axis}\n"
    name = axis.split(":")[0]
    assert make_problems(text)[0].startswith(f"keel.yaml:17: sweeps.s.params.{name}: ")
    assert make_problems(text)[0].split(f"sweeps.s.params.{name}: ", 1)[1].startswith(message)


def test_a_sweep_of_a_broken_experiment_is_not_reported_twice(make_problems: Problems) -> None:
    problems = make_problems(
        HEAD
        + """\
  broken:
    comand: python x.py
sweeps:
  s:
    experiment: broken
"""
    )
    assert len(problems) == 1
    assert "experiments.broken.comand: unknown key" in problems[0]


def test_a_project_with_sweeps_pickles_and_still_uses_the_facts_cache(tmp_path: Path) -> None:
    text = HEAD + "sweeps:\n  s:\n    experiment: train\n    params: {lr: [0.1, 1]}\n"
    spec_file = write_spec(tmp_path, text, dedent=False)
    project = load_project(spec_file)
    assert pickle.loads(pickle.dumps(project)) == project
    cache = tmp_path / ".keel" / "cache"
    facts, loaded = read_facts(spec_file, cache_dir=cache, keel_version="test")
    assert loaded is not None and loaded.sweeps == project.sweeps
    again, reloaded = read_facts(spec_file, cache_dir=cache, keel_version="test")
    assert reloaded is None and again == facts


def test_group_folds_need_a_group_column(make_problems: Problems) -> None:
    text = HEAD + "sweeps:\n  g:\n    experiment: train\n    folds: {k: 3, strategy: group}\n"
    assert make_problems(text) == [
        "keel.yaml:16: sweeps.g.folds.strategy: group folds need a group column; "
        "add group: COLUMN (rows of one group stay in one fold)"
    ]
