"""Sweep planning: options read and checked at once, trials in a fixed order with derived seeds,
identities that survive reordering, reproducible random proposals and cross-validation folds."""

from __future__ import annotations

import itertools
import json
import math
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import keel
from keel.base.canonical import canonical_json
from keel.base.digest import hash_bytes, hash_file
from keel.base.seedseq import child_seed
from keel.errors import InvalidParameter, KeelError, MissingExtra, UserError, ValidationError
from keel.execute import inrun
from keel.model.params import Layer
from keel.model.plan import RunPlan
from keel.model.sweep import Axis, FoldSpec, Partition, SweepSpec, TrialSpec
from keel.resolve import resolve_run
from keel.resolve.sweep import (
    MAX_TRIALS,
    PROPOSAL_STREAM,
    SEED_DERIVATION,
    compute_partition,
    fold_indices,
    parse_sweep,
    plan_trial,
    plan_trials,
    random_proposals,
    trial_key,
)
from keel.spec import ProjectSpec, load_project
from keel.spec.sweep import tidy_float
from tests.spec.samples import write_spec

SWEEP_YAML = """\
project: sweepy
params:
  lr: {type: float, default: 0.1, min: 0.0001, max: 10}
  epochs: {type: int, default: 3, min: 1, max: 100}
  mode: {type: choice, choices: [fast, slow], default: fast}
  spare: {type: int, default: 1}
experiments:
  train:
    command: python train.py --lr {lr} --epochs {epochs} --mode {mode} --seed {seed}
    params: [lr, epochs, mode]
    seed: 42
    inputs: [data/rows.csv, notes.txt]
    metrics:
      acc: {goal: max}
    timeout: 300
    why: Train it
  multi:
    command: python multi.py {lr}
    params: [lr, epochs]
    metrics:
      acc: {goal: max}
      loss: {goal: min}
  bare:
    command: python bare.py {lr}
    params: [lr]
sweeps:
  tune:
    experiment: train
    params:
      lr: [0.01, 0.1, 1]
      epochs: "range(1,3)"
    seeds: 2
    folds: {k: 3, strategy: stratified, label: species}
    seed: 7
    timeout: 60
    why: Tune it
  toomany:
    experiment: train
    params:
      lr: [0.01, 0.1]
    trials: 5
"""

SPECIES = "aaaaaabbbbcc"
SITES = ["s1", "s1", "s2", "s3", "s3", "s3", "s4", "s5", "s5", "s2", "s4", "s1"]


def _rows_csv(species: str = SPECIES, sites: list[str] = SITES) -> str:
    lines = ["x,species,site"]
    lines += [f"{i},{s},{site}" for i, (s, site) in enumerate(zip(species, sites, strict=True))]
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path) -> ProjectSpec:
    """The sweepy project, with its 12-row table and its other input in place."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text(_rows_csv(), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("notes\n", encoding="utf-8")
    return load_project(write_spec(tmp_path, SWEEP_YAML, dedent=False))


def _problems(project: ProjectSpec, **options: object) -> list[str]:
    with pytest.raises(InvalidParameter) as caught:
        parse_sweep(project, **options)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def _numpy_seed(root: int, replicate: int) -> int:
    child = np.random.SeedSequence(root).spawn(replicate + 1)[replicate]
    return int(child.generate_state(1)[0]) & 0x7FFFFFFF


# -- reading and checking the request -------------------------------------------------------


def test_a_declared_sweep_is_read_with_its_declared_values(project: ProjectSpec) -> None:
    assert parse_sweep(project, name="tune") == SweepSpec(
        experiment="train",
        axes=(
            Axis(name="lr", kind="values", text="[0.01,0.1,1.0]", values=(0.01, 0.1, 1.0)),
            Axis(name="epochs", kind="values", text="range(1,3)", values=(1, 2)),
        ),
        strategy="grid",
        seeds=2,
        folds=FoldSpec(k=3, strategy="stratified", data="data/rows.csv", label="species"),
        seed=7,
        metric="acc",
        timeout_s=60.0,
        why="Tune it",
        name="tune",
    )


def test_command_line_options_replace_the_declared_ones_field_by_field(
    project: ProjectSpec,
) -> None:
    spec = parse_sweep(
        project,
        name="tune",
        axes=["epochs=5,6,7", "mode=fast,slow"],
        seeds=1,
        folds=4,
        fold_strategy="group",
        fold_group="site",
        seed=3,
        timeout_s=5,
        why="Again",
    )
    assert [(a.name, a.values) for a in spec.axes] == [
        ("lr", (0.01, 0.1, 1.0)),
        ("epochs", (5, 6, 7)),  # replaced where it was declared
        ("mode", ("fast", "slow")),  # new axes follow the declared ones
    ]
    assert spec.folds == FoldSpec(
        k=4, strategy="group", data="data/rows.csv", label="species", group="site"
    )
    assert (spec.seeds, spec.seed, spec.timeout_s, spec.why) == (1, 3, 5, "Again")


def test_a_single_value_fixes_a_parameter_and_drops_its_declared_axis(
    project: ProjectSpec,
) -> None:
    spec = parse_sweep(project, name="tune", axes=["lr=0.5", "mode=slow"])
    assert [a.name for a in spec.axes] == ["epochs"]
    assert spec.fixed == {"lr": "0.5", "mode": "slow"}
    partition, _ = compute_partition(project.root, spec.folds, seed=7)  # type: ignore[arg-type]
    _, plan = plan_trials(project, spec, profile="dev", partition=partition, input_digests={})[0]
    layers = {p.name: (p.value, p.layer) for p in plan.params}
    assert layers == {
        "lr": (0.5, Layer.CLI),
        "epochs": (1, Layer.SWEEP),
        "mode": ("slow", Layer.CLI),
    }


def test_an_experiment_is_swept_with_defaults(project: ProjectSpec) -> None:
    assert parse_sweep(project, name="train", axes=["lr=0.1,1"]) == SweepSpec(
        experiment="train",
        axes=(Axis(name="lr", kind="values", text="0.1,1", values=(0.1, 1.0)),),
        seed=42,
        metric="acc",
    )
    bare = parse_sweep(project, name="bare")
    assert (bare.axes, bare.seed, bare.metric, bare.seeds, bare.folds) == ((), 0, None, 1, None)


@pytest.mark.parametrize(
    ("name", "seed", "root"),
    [
        pytest.param("tune", 11, 11, id="option"),
        pytest.param("tune", None, 7, id="declared-sweep"),
        pytest.param("train", None, 42, id="experiment"),
        pytest.param("bare", None, 0, id="zero"),
    ],
)
def test_the_root_seed_comes_from_the_option_the_sweep_the_experiment_or_zero(
    project: ProjectSpec, name: str, seed: int | None, root: int
) -> None:
    assert parse_sweep(project, name=name, seed=seed).seed == root


def test_every_bad_option_is_listed_in_one_error(project: ProjectSpec) -> None:
    problems = _problems(
        project,
        name="train",
        axes=["lr=", "epochs=1,1", "epochs=2", "mdoe=fast", "spare=1,2", "x", "mode=fast,slwo"],
        strategy="grd",
        trials=0,
        seeds=0,
        folds=1,
        fold_strategy="stratifed",
        metric="acu",
        seed=-1,
        timeout_s=0,
    )
    assert problems == [
        "-p lr: no values given; write -p lr=a,b, or an expression such as range(1,5)",
        "-p epochs: value 1 is listed twice; give each value once",
        "-p epochs: parameter 'epochs' is given twice; give all its values in one -p: "
        "-p epochs=a,b",
        "-p mdoe: unknown parameter 'mdoe' for experiment 'train'; did you mean 'mode'?",
        "-p spare: parameter 'spare' is not used by experiment 'train'; "
        "add it to experiments.train.params in keel.yaml",
        "-p x: 'x' is not NAME=VALUES; write -p c=0.1,1 or -p n=range(1,5)",
        "-p mode: 'slwo' is not one of the choices: fast, slow; did you mean 'slow'?",
        "--strategy: 'grd' is not a strategy: grid, random, optuna; did you mean 'grid'?",
        "--folds: must be at least 2, got 1",
        "--fold-strategy: 'stratifed' is not a fold strategy: kfold, stratified, group; "
        "did you mean 'stratified'?",
        "--trials: must be at least 1, got 0",
        "--seeds: must be at least 1, got 0",
        "--seed: must be at least 0, got -1",
        "--metric: 'acu' is not a metric of experiment 'train'; did you mean 'acc'?",
        "--timeout: must be a number of seconds above 0, got 0",
    ]


def test_an_unknown_name_suggests_the_closest_sweep_or_experiment(project: ProjectSpec) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_sweep(project, name="tuen")
    assert not isinstance(caught.value, InvalidParameter)
    assert (
        str(caught.value) == "keel.yaml: unknown sweep or experiment 'tuen'; did you mean 'tune'?"
    )


def test_grid_refuses_sampled_axes(project: ProjectSpec) -> None:
    problems = _problems(project, name="train", axes=["lr=uniform(0.1,1)", "epochs=randint(1,5)"])
    assert problems == [
        "-p lr: axis lr=uniform(0.1,1) is continuous; grid needs explicit values; "
        "use --strategy random or optuna",
        "-p epochs: axis epochs=randint(1,5) is an integer interval; grid needs explicit values; "
        "use --strategy random or optuna",
    ]


def test_grid_trials_beyond_the_grid_name_both_numbers(project: ProjectSpec) -> None:
    problems = _problems(project, name="train", axes=["lr=0.1,1", "epochs=1,2,3"], trials=7)
    assert problems == [
        "--trials: 7 trials is more than the grid's 6 configurations; "
        "leave out --trials to run the whole grid, or use --strategy random"
    ]
    line = project.line_of(("sweeps", "toomany", "trials"))
    assert _problems(project, name="toomany") == [
        f"keel.yaml:{line}: sweeps.toomany.trials: 5 trials is more than the grid's "
        "2 configurations; leave out --trials to run the whole grid, or use --strategy random"
    ]


def test_grid_trials_take_the_first_configurations_in_grid_order(project: ProjectSpec) -> None:
    spec = parse_sweep(project, name="train", axes=["lr=0.1,1", "epochs=1,2,3"], trials=4)
    planned = plan_trials(project, spec, profile="dev", partition=None, input_digests={})
    assert [t.params for t, _ in planned] == [
        {"lr": 0.1, "epochs": 1},
        {"lr": 0.1, "epochs": 2},
        {"lr": 0.1, "epochs": 3},
        {"lr": 1.0, "epochs": 1},
    ]


@pytest.mark.parametrize("strategy", ["random", "optuna"])
def test_random_and_optuna_need_trials_and_an_axis(project: ProjectSpec, strategy: str) -> None:
    assert _problems(project, name="train", strategy=strategy) == [
        f"--trials: --strategy {strategy} needs --trials N: how many configurations to try",
        f"-p: --strategy {strategy} needs at least one axis to search; add -p NAME=VALUES, "
        "or an expression such as -p lr=loguniform(1e-4,1)",
    ]


def test_optuna_needs_a_metric_unless_the_experiment_has_only_one(project: ProjectSpec) -> None:
    options = {"axes": ["lr=uniform(0.1,1)"], "strategy": "optuna", "trials": 5}
    assert _problems(project, name="multi", **options) == [
        "--metric: --strategy optuna needs --metric: the metric to optimise; one of: acc, loss"
    ]
    assert _problems(project, name="bare", **options) == [
        "--metric: --strategy optuna needs a metric to optimise; experiment 'bare' declares "
        "none; declare one in experiments.bare.metrics"
    ]
    assert parse_sweep(project, name="train", **options).metric == "acc"  # type: ignore[arg-type]
    assert parse_sweep(project, name="multi", metric="loss", **options).metric == "loss"  # type: ignore[arg-type]


def test_fold_options_need_folds(project: ProjectSpec) -> None:
    assert _problems(project, name="train", fold_data="data/rows.csv", fold_label="species") == [
        "--fold-data: --fold-data needs --folds K",
        "--fold-label: --fold-label needs --folds K",
    ]


def test_fold_strategies_need_their_column(project: ProjectSpec) -> None:
    assert _problems(project, name="train", folds=3, fold_strategy="stratified") == [
        "--fold-strategy: stratified folds need --fold-label COLUMN; "
        "the column that holds each row's class"
    ]
    assert _problems(project, name="train", folds=3, fold_strategy="group") == [
        "--fold-strategy: group folds need --fold-group COLUMN; "
        "the column whose rows must stay in one fold"
    ]


def test_folds_need_a_table_that_exists_in_the_project(project: ProjectSpec) -> None:
    assert _problems(project, name="bare", folds=3) == [
        "--fold-data: --folds needs --fold-data PATH: the rows to split; "
        "or declare a .csv or .parquet input in experiments.bare.inputs"
    ]
    assert _problems(project, name="bare", folds=3, fold_data="nope.csv") == [
        f"--fold-data: fold data 'nope.csv' does not exist in {project.root}; "
        "create it, or fix the path"
    ]
    assert _problems(project, name="bare", folds=3, fold_data="../x.csv") == [
        "--fold-data: '../x.csv' leads outside the project"
    ]
    spec = parse_sweep(project, name="train", folds=3)
    assert spec.folds == FoldSpec(k=3, data="data/rows.csv")


def test_a_sweep_too_large_to_plan_is_refused(project: ProjectSpec) -> None:
    axes = ["epochs=range(1,101)", "lr=linspace(0.001,10,1000)"]
    assert len(parse_sweep(project, name="train", axes=axes).axes) == 2  # exactly MAX_TRIALS
    assert _problems(project, name="train", axes=axes, seeds=2) == [
        f"-p: the sweep has {2 * MAX_TRIALS} trials; keel plans at most {MAX_TRIALS}; "
        "use fewer values, seeds or folds, or --strategy random with --trials"
    ]


# -- planning trials ------------------------------------------------------------------------


@pytest.fixture
def tune(project: ProjectSpec) -> tuple[SweepSpec, Partition, list[tuple[TrialSpec, RunPlan]]]:
    spec = parse_sweep(project, name="tune")
    assert spec.folds is not None and spec.seed is not None
    partition, _ = compute_partition(project.root, spec.folds, seed=spec.seed)
    planned = plan_trials(project, spec, profile="dev", partition=partition, input_digests={})
    return spec, partition, planned


Tune = tuple[SweepSpec, Partition, list[tuple[TrialSpec, RunPlan]]]


def test_trials_run_configs_then_replicates_then_folds(tune: Tune) -> None:
    _, _, planned = tune
    trials = [t for t, _ in planned]
    assert len(trials) == 6 * 2 * 3
    assert [t.index for t in trials] == list(range(36))
    assert [(t.config, t.replicate, t.fold) for t in trials] == [
        (c, r, f) for c in range(6) for r in range(2) for f in range(3)
    ]
    grid = [{"lr": lr, "epochs": e} for lr, e in itertools.product((0.01, 0.1, 1.0), (1, 2))]
    assert [t.params for t in trials[::6]] == grid


def test_each_replicate_seed_is_numpys_child_seed_shared_by_configs_and_folds(tune: Tune) -> None:
    _, _, planned = tune
    for trial, plan in planned:
        assert trial.seed == plan.seed == _numpy_seed(7, trial.replicate)
        assert plan.argv is not None and plan.argv[-1] == str(trial.seed)
    assert len({t.seed for t, _ in planned}) == 2
    assert SEED_DERIVATION.startswith("SeedSequence(entropy=root, spawn_key=(replicate,))")


def test_a_trial_plan_carries_its_values_environment_timeout_and_why(tune: Tune) -> None:
    _, partition, planned = tune
    trial, plan = planned[7]
    assert (trial.index, trial.config, trial.replicate, trial.fold) == (7, 1, 0, 1)
    assert {p.name: (p.value, p.layer) for p in plan.params} == {
        "lr": (0.01, Layer.SWEEP),
        "epochs": (2, Layer.SWEEP),
        "mode": ("fast", Layer.CATALOG),
    }
    assert plan.extra_env["KEEL_TRIAL"] == "7"
    assert plan.extra_env["KEEL_REPLICATE"] == "0"
    assert plan.extra_env["KEEL_FOLD"] == "1"
    assert plan.extra_env["KEEL_FOLDS"] == "3" == str(partition.k)
    assert plan.extra_env["KEEL_PARAM_LR"] == "0.01"
    assert (plan.timeout_s, plan.why) == (60.0, "Tune it")


def test_without_folds_or_options_a_trial_keeps_the_experiment_settings(
    project: ProjectSpec,
) -> None:
    spec = parse_sweep(project, name="train", axes=["lr=0.1,1"])
    trial, plan = plan_trials(project, spec, profile="dev", partition=None, input_digests={})[1]
    assert trial == TrialSpec(
        index=1,
        config=1,
        params={"lr": 1.0},
        replicate=0,
        seed=_numpy_seed(42, 0),
        fold=None,
        key=trial.key,
    )
    assert (plan.timeout_s, plan.why) == (300.0, "Train it")
    assert "KEEL_FOLD" not in plan.extra_env and "KEEL_FOLDS" not in plan.extra_env


def test_trial_keys_are_unique_and_stable_across_plannings(
    project: ProjectSpec, tune: Tune
) -> None:
    spec, _, planned = tune
    keys = [t.key for t, _ in planned]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    again = plan_trials(
        project,
        parse_sweep(project, name="tune"),
        profile="dev",
        partition=compute_partition(project.root, spec.folds, seed=7)[0],  # type: ignore[arg-type]
        input_digests={},
    )
    assert [t.key for t, _ in again] == keys


def test_trial_keys_do_not_depend_on_axis_order_or_trial_position(project: ProjectSpec) -> None:
    def keys(axes: list[str]) -> dict[tuple[tuple[str, object], ...], str]:
        spec = parse_sweep(project, name="train", axes=axes, seeds=2)
        planned = plan_trials(project, spec, profile="dev", partition=None, input_digests={})
        return {(*sorted(t.params.items()), ("r", t.replicate)): t.key for t, _ in planned}

    forward = keys(["lr=0.1,1", "epochs=1,2"])
    backward = keys(["epochs=2,1", "lr=1,0.1"])
    assert forward == backward
    assert len(forward) == 8


def test_a_trial_key_is_the_digest_of_what_the_trial_computes(project: ProjectSpec) -> None:
    spec = parse_sweep(project, name="tune")
    partition, _ = compute_partition(project.root, spec.folds, seed=7)  # type: ignore[arg-type]
    digests = {"data/rows.csv": "blake3:" + "a" * 64}
    options = {
        "profile": "dev",
        "params": {"lr": 0.1, "epochs": 2},
        "config": 3,
        "replicate": 1,
        "fold": 2,
        "partition": partition,
        "input_digests": digests,
    }
    first, plan = plan_trial(project, spec, index=20, **options)  # type: ignore[arg-type]
    moved, _ = plan_trial(project, spec, index=99, **{**options, "config": 0})  # type: ignore[arg-type]
    assert first.key == moved.key  # not the trial's position
    identity = {
        "experiment": "train",
        "params": {"lr": 0.1, "epochs": 2, "mode": "fast"},
        "seed": _numpy_seed(7, 1),
        "fold": 2,
        "partition": partition.digest,
        "inputs": {"data/rows.csv": "blake3:" + "a" * 64, "notes.txt": None},
    }
    assert first.key == hash_bytes(canonical_json(identity)).hexdigest
    assert first.key == trial_key(
        plan, fold=2, partition_digest=partition.digest, input_digests=digests
    )
    for changed in (
        {"fold": 1},
        {"replicate": 0},
        {"input_digests": {"data/rows.csv": "blake3:" + "b" * 64}},
        {"params": {"lr": 0.1, "epochs": 3}},
    ):
        other, _ = plan_trial(project, spec, index=20, **{**options, **changed})  # type: ignore[arg-type]
        assert other.key != first.key, changed


def test_plan_trial_refuses_a_fold_that_does_not_match_the_sweep(project: ProjectSpec) -> None:
    plain = parse_sweep(project, name="train", axes=["lr=0.1,1"])
    folded = parse_sweep(project, name="tune")
    partition, _ = compute_partition(project.root, folded.folds, seed=7)  # type: ignore[arg-type]
    base = {"profile": "dev", "params": {"lr": 0.1}, "index": 0, "config": 0, "replicate": 0}
    cases = [
        (plain, {"fold": 0, "partition": partition}, "without folds"),
        (folded, {"fold": None, "partition": partition}, "needs a fold"),
        (folded, {"fold": 3, "partition": partition}, "needs a fold"),
        (folded, {"fold": 0, "partition": None}, "needs its partition"),
    ]
    for spec, extra, message in cases:
        with pytest.raises(KeelError, match=message):
            plan_trial(project, spec, input_digests={}, **base, **extra)  # type: ignore[arg-type]


def test_optuna_trials_are_planned_one_at_a_time(project: ProjectSpec) -> None:
    spec = parse_sweep(
        project, name="train", axes=["lr=loguniform(0.001,1)"], strategy="optuna", trials=3
    )
    with pytest.raises(KeelError, match="one at a time"):
        plan_trials(project, spec, profile="dev", partition=None, input_digests={})
    trial, plan = plan_trial(
        project,
        spec,
        profile="dev",
        params={"lr": 0.0123},
        index=0,
        config=0,
        replicate=0,
        fold=None,
        partition=None,
        input_digests={},
    )
    assert trial.params == {"lr": 0.0123} and plan.param_values["lr"] == 0.0123


def test_a_parameter_cannot_be_both_swept_and_fixed(project: ProjectSpec) -> None:
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(
            project,
            experiment="train",
            overrides={"lr": "0.5"},
            sweep_values={"lr": 0.1, "spare": 2, "epochs": 500},
        )
    assert [str(p) for p in caught.value.problems] == [
        "-p lr: parameter 'lr' is both swept and fixed to '0.5'; "
        "give -p lr once: one value to fix it, several to sweep it",
        "-p spare: parameter 'spare' is not used by experiment 'train'; "
        "add it to experiments.train.params in keel.yaml",
        "-p epochs: 500 is out of range: must be between 1 and 100",
    ]


# -- random proposals -----------------------------------------------------------------------

RANDOM_AXES = ["lr=loguniform(0.001,1)", "epochs=randint(1,5)", "mode=fast,slow"]


def test_random_proposals_are_reproducible_and_follow_the_documented_draws(
    project: ProjectSpec,
) -> None:
    spec = parse_sweep(project, name="train", axes=RANDOM_AXES, strategy="random", trials=20)
    proposals = random_proposals(spec, 20)
    again = parse_sweep(project, name="train", axes=RANDOM_AXES, strategy="random", trials=20)
    assert random_proposals(again, 20) == proposals
    rng = random.Random(child_seed(42, PROPOSAL_STREAM))
    lr = math.exp(rng.uniform(math.log(0.001), math.log(1)))
    first = {
        "lr": tidy_float(lr),
        "epochs": rng.randint(1, 5),
        "mode": rng.choice(["fast", "slow"]),
    }
    assert proposals[0] == first
    assert len({json.dumps(p, sort_keys=True) for p in proposals}) == 20
    for p in proposals:
        assert (
            isinstance(p["lr"], float) and 0.001 <= p["lr"] <= 1 and tidy_float(p["lr"]) == p["lr"]
        )
        assert p["epochs"] in range(1, 6) and p["mode"] in ("fast", "slow")
    other = parse_sweep(
        project, name="train", axes=RANDOM_AXES, strategy="random", trials=20, seed=1
    )
    assert random_proposals(other, 20) != proposals


def test_random_proposals_repeat_only_once_the_space_is_exhausted(project: ProjectSpec) -> None:
    spec = parse_sweep(
        project, name="train", axes=["mode=fast,slow", "epochs=1,2"], strategy="random", trials=9
    )
    proposals = [tuple(sorted(p.items())) for p in random_proposals(spec, 9)]
    assert len(set(proposals[:4])) == 4
    assert len(proposals) == 9 and len(set(proposals)) == 4


def test_random_trials_run_the_proposals_in_order(project: ProjectSpec) -> None:
    spec = parse_sweep(
        project, name="train", axes=RANDOM_AXES, strategy="random", trials=5, seeds=2
    )
    planned = plan_trials(project, spec, profile="dev", partition=None, input_digests={})
    proposals = random_proposals(spec, 5)
    assert [t.params for t, _ in planned] == [p for p in proposals for _ in range(2)]
    assert [(t.config, t.replicate) for t, _ in planned] == [
        (c, r) for c in range(5) for r in range(2)
    ]


# -- folds ----------------------------------------------------------------------------------


def _table(root: Path, name: str, species: str, sites: list[str]) -> None:
    (root / name).write_text(_rows_csv(species, sites), encoding="utf-8")


def _assert_a_partition(tests: list[list[int]], rows: int, k: int) -> None:
    assert len(tests) == k and all(tests)
    assert all(t == sorted(t) for t in tests)
    assert sorted(itertools.chain.from_iterable(tests)) == list(range(rows))


def test_kfold_cuts_shuffled_rows_into_near_equal_parts(tmp_path: Path) -> None:
    _table(tmp_path, "t.csv", "ab" * 15, [f"g{i}" for i in range(30)])
    partition, tests = compute_partition(tmp_path, FoldSpec(k=4, data="t.csv"), seed=5)
    _assert_a_partition(tests, 30, 4)
    assert sorted(len(t) for t in tests) == [7, 7, 8, 8]
    assert [len(t) for t in tests] == [8, 8, 7, 7]
    assert tests != [
        list(range(0, 8)),
        list(range(8, 16)),
        list(range(16, 23)),
        list(range(23, 30)),
    ]
    assert (partition.k, partition.strategy, partition.rows, partition.data) == (
        4,
        "kfold",
        30,
        "t.csv",
    )


def test_stratified_folds_keep_each_class_proportion(tmp_path: Path) -> None:
    species = "a" * 10 + "b" * 7 + "c" * 3 + "d" * 1
    _table(tmp_path, "t.csv", species, ["x"] * len(species))
    folds = FoldSpec(k=3, strategy="stratified", data="t.csv", label="species")
    _, tests = compute_partition(tmp_path, folds, seed=5)
    _assert_a_partition(tests, len(species), 3)
    for label in "abcd":
        counts = [sum(species[i] == label for i in t) for t in tests]
        assert max(counts) - min(counts) <= 1, (label, counts)
    assert max(map(len, tests)) - min(map(len, tests)) <= 1


def test_group_folds_never_split_a_group(tmp_path: Path) -> None:
    sites = [f"s{i % 7}" for i in range(40)]
    _table(tmp_path, "t.csv", "a" * 40, sites)
    folds = FoldSpec(k=3, strategy="group", data="t.csv", group="site")
    _, tests = compute_partition(tmp_path, folds, seed=5)
    _assert_a_partition(tests, 40, 3)
    for site in set(sites):
        holding = {f for f, t in enumerate(tests) for i in t if sites[i] == site}
        assert len(holding) == 1, site
    with pytest.raises(
        UserError, match=r"column 'site' of t\.csv into 8 folds: it has only 7 groups"
    ):
        compute_partition(
            tmp_path, FoldSpec(k=8, strategy="group", data="t.csv", group="site"), seed=5
        )


def test_the_same_seed_gives_the_same_folds_and_another_seed_others(tmp_path: Path) -> None:
    _table(tmp_path, "t.csv", "ab" * 15, ["s1", "s2", "s3"] * 10)
    for folds in (
        FoldSpec(k=5, data="t.csv"),
        FoldSpec(k=5, strategy="stratified", data="t.csv", label="species"),
        FoldSpec(k=2, strategy="group", data="t.csv", group="site"),
    ):
        first, tests = compute_partition(tmp_path, folds, seed=7)
        second, again = compute_partition(tmp_path, folds, seed=7)
        assert first == second and tests == again
        digests = {compute_partition(tmp_path, folds, seed=s)[0].digest for s in range(8)}
        assert len(digests) > 1, folds.strategy


def test_the_partition_digest_is_the_digest_of_the_stored_test_lists(tmp_path: Path) -> None:
    _table(tmp_path, "t.csv", SPECIES, SITES)
    partition, tests = compute_partition(tmp_path, FoldSpec(k=3, data="t.csv"), seed=1)
    assert partition.digest == partition.indices == str(hash_bytes(canonical_json(tests)))
    assert partition.data_digest == str(hash_file(tmp_path / "t.csv")[0])


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,species\n1,a\n\n2,b\n3,a\n\n", encoding="utf-8")
    partition, tests = compute_partition(tmp_path, FoldSpec(k=3, data="t.csv"), seed=1)
    assert partition.rows == 3 and sorted(itertools.chain.from_iterable(tests)) == [0, 1, 2]


def test_unusable_fold_data_is_a_clear_error(tmp_path: Path) -> None:
    _table(tmp_path, "t.csv", "ab", ["s", "s"])
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    cases = [
        (FoldSpec(k=2), "--folds needs --fold-data PATH"),
        (FoldSpec(k=2, data="nope.csv"), "fold data 'nope.csv' does not exist"),
        (FoldSpec(k=2, data="empty.csv"), "fold data 'empty.csv' is empty"),
        (FoldSpec(k=3, data="t.csv"), "cannot split t.csv into 3 folds: it has only 2 rows; "
                                      "use --folds 2 or fewer"),
        (FoldSpec(k=2, strategy="stratified", data="t.csv", label="specie"),
         "fold data 't.csv' has no column 'specie'; did you mean 'species'?"),
    ]  # fmt: skip
    for folds, message in cases:
        with pytest.raises(UserError) as caught:
            compute_partition(tmp_path, folds, seed=0)
        assert message in str(caught.value)


def test_parquet_rows_split_like_the_same_csv(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    _table(tmp_path, "t.csv", SPECIES, SITES)
    table = pa.table({"x": list(range(12)), "species": list(SPECIES), "site": SITES})
    pq.write_table(table, tmp_path / "t.parquet")
    for folds in (
        FoldSpec(k=3, data="t.csv"),
        FoldSpec(k=3, strategy="stratified", data="t.csv", label="species"),
        FoldSpec(k=3, strategy="group", data="t.csv", group="site"),
    ):
        from_csv = compute_partition(tmp_path, folds, seed=3)
        from_parquet = compute_partition(tmp_path, replace(folds, data="t.parquet"), seed=3)
        assert from_parquet[1] == from_csv[1]
        assert from_parquet[0].digest == from_csv[0].digest


def test_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if keel[data] were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingExtra, match=r"pip install 'keel\[data\]'"):
        compute_partition(tmp_path, FoldSpec(k=2, data="t.parquet"), seed=0)


def test_fold_indices_give_sorted_train_and_test_rows() -> None:
    tests = [[4, 1], [0, 5], [2, 3]]
    assert fold_indices(tests, 0) == ([0, 2, 3, 5], [1, 4])
    assert fold_indices(tests, 2) == ([0, 1, 4, 5], [2, 3])
    with pytest.raises(KeelError, match="fold 3 does not exist: there are 3 folds"):
        fold_indices(tests, 3)


def test_the_run_reads_its_fold_with_keel_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert keel.fold is inrun.fold
    with pytest.raises(UserError, match="not a cross-validation trial"):
        keel.fold()
    path = tmp_path / "fold.json"
    path.write_text(json.dumps({"fold": 1, "k": 3, "train": [0, 2], "test": [1]}), "utf-8")
    monkeypatch.setenv(inrun.FOLD_FILE_ENV, str(path))
    assert keel.fold() == ([0, 2], [1])
    path.write_text("{", "utf-8")
    with pytest.raises(UserError, match="cannot read the fold file"):
        keel.fold()
