"""Resolving a run: layered values, argv, environment, seed, and every problem at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keel.errors import InvalidParameter, ValidationError
from keel.model.params import Layer, ResolvedParam
from keel.model.plan import InputSpec, MetricSpec
from keel.resolve import catalog_rows, resolve_run
from keel.spec import ProjectSpec
from tests.spec.samples import SMALL_CATALOG

Make = Callable[[str], ProjectSpec]

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _values(plan_params: tuple[ResolvedParam, ...]) -> dict[str, tuple[object, Layer]]:
    return {p.name: (p.value, p.layer) for p in plan_params}


@pytest.mark.parametrize(
    ("profile", "overrides", "n_estimators"),
    [
        pytest.param("dev", {}, (200, Layer.EXPERIMENT), id="experiment-default"),
        pytest.param("prod", {}, (500, Layer.PROFILE), id="profile-value"),
        pytest.param("dev", {"n_estimators": "7"}, (7, Layer.CLI), id="cli-override"),
        pytest.param("prod", {"n_estimators": "7"}, (7, Layer.CLI), id="cli-beats-profile"),
    ],
)
def test_values_layer_catalog_experiment_profile_then_cli(
    iris: ProjectSpec,
    profile: str,
    overrides: dict[str, str],
    n_estimators: tuple[int, Layer],
) -> None:
    plan = resolve_run(iris, experiment="train", profile=profile, overrides=overrides)
    assert _values(plan.params) == {
        "model": ("forest", Layer.CATALOG),
        "n_estimators": n_estimators,
        "c": (1.0, Layer.CATALOG),
        "test_size": (0.25, Layer.CATALOG),
        "features": (FEATURES, Layer.CATALOG),
    }
    assert plan.argv == (
        "python",
        "train.py",
        "--model",
        "forest",
        "--n-estimators",
        str(n_estimators[0]),
        "--c",
        "1.0",
        "--test-size",
        "0.25",
        "--seed",
        "42",
    )


def test_the_plan_carries_everything_the_experiment_declares(
    iris: ProjectSpec, tmp_path: Path
) -> None:
    plan = resolve_run(iris, experiment="train", profile="prod")
    assert plan.project == "iris-demo"
    assert plan.project_root == tmp_path.resolve()
    assert plan.spec_file == tmp_path.resolve() / "keel.yaml"
    assert plan.spec_digest == iris.digest
    assert plan.experiment == "train" and plan.profile == "prod" and plan.strict is True
    assert plan.seed == 42 and plan.seed_source == "experiment"
    assert plan.entrypoint is None
    assert plan.cwd == tmp_path.resolve()
    assert plan.inputs == (InputSpec(path="data/iris.csv", store=True),)
    assert plan.outputs == ("out/model.pkl", "out/metrics.json")
    assert plan.metrics_file == "out/metrics.json"
    assert plan.metrics == (MetricSpec(name="accuracy", goal="max", tolerance=0.0),)
    assert plan.env_allow == ("OMP_NUM_THREADS",)
    assert plan.why == "Baseline classifiers on iris"
    assert plan.tags == ("baseline",)
    assert plan.timeout_s is None


def test_every_param_reaches_the_run_as_a_keel_param_variable(iris: ProjectSpec) -> None:
    plan = resolve_run(iris, experiment="train", overrides={"c": "1e-3"})
    assert plan.extra_env == {
        "KEEL_PARAM_MODEL": "forest",
        "KEEL_PARAM_N_ESTIMATORS": "200",
        "KEEL_PARAM_C": "0.001",
        "KEEL_PARAM_TEST_SIZE": "0.25",
        "KEEL_PARAM_FEATURES": '["sepal_length","sepal_width","petal_length","petal_width"]',
    }


def test_the_experiment_and_profile_definitions_are_recorded_as_json(iris: ProjectSpec) -> None:
    plan = resolve_run(iris, experiment="train", profile="prod")
    assert plan.experiment_def == {
        "command": "python train.py --model {model} --n-estimators {n_estimators} --c {c} "
        "--test-size {test_size} --seed {seed}",
        "params": ["model", "n_estimators", "c", "test_size", "features"],
        "defaults": {"n_estimators": 200},
        "seed": 42,
        "inputs": [{"path": "data/iris.csv", "store": True}],
        "outputs": ["out/model.pkl", "out/metrics.json"],
        "metrics_file": "out/metrics.json",
        "metrics": {"accuracy": {"goal": "max", "tolerance": 0.0}},
        "env": ["OMP_NUM_THREADS"],
        "why": "Baseline classifiers on iris",
        "tags": ["baseline"],
    }
    assert plan.profile_def == {"strict": True, "params": {"n_estimators": 500}, "env": {}}


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        pytest.param(7, (7, "cli"), id="cli"),
        pytest.param(0, (0, "cli"), id="cli-zero"),
        pytest.param(None, (42, "experiment"), id="experiment"),
    ],
)
def test_the_seed_comes_from_the_cli_then_the_experiment(
    iris: ProjectSpec, seed: int | None, expected: tuple[int, str]
) -> None:
    plan = resolve_run(iris, experiment="train", seed=seed)
    assert (plan.seed, plan.seed_source) == expected
    assert plan.argv is not None and plan.argv[-1] == str(expected[0])


def test_without_any_seed_the_seed_is_zero(make_project: Make) -> None:
    project = make_project(SMALL_CATALOG + "experiments:\n  t: {command: 'x {seed}'}\n")
    plan = resolve_run(project, experiment="t")
    assert (plan.seed, plan.seed_source, plan.argv) == (0, "default", ("x", "0"))


def test_a_negative_seed_is_refused(iris: ProjectSpec) -> None:
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(iris, experiment="train", seed=-1)
    assert str(caught.value) == "--seed: must be at least 0, got -1"


def test_why_from_the_caller_replaces_the_experiments(iris: ProjectSpec) -> None:
    assert resolve_run(iris, experiment="train", why="retry").why == "retry"


def test_an_unknown_experiment_names_the_closest_one(iris: ProjectSpec) -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_run(iris, experiment="trian")
    assert str(caught.value) == "keel.yaml: unknown experiment 'trian'; did you mean 'train'?"


def test_an_unknown_profile_names_the_closest_one(iris: ProjectSpec) -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_run(iris, experiment="train", profile="prd")
    assert str(caught.value) == "keel.yaml: unknown profile 'prd'; did you mean 'prod'?"


def test_an_unknown_parameter_names_the_closest_one(make_project: Make) -> None:
    project = make_project(SMALL_CATALOG + "experiments:\n  train: {command: 'x {lr}'}\n")
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(project, experiment="train", overrides={"lrr": "0.1"})
    assert str(caught.value) == (
        "-p lrr: unknown parameter 'lrr' for experiment 'train'; did you mean 'lr'?"
    )
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, ValueError)


def test_a_catalog_parameter_the_experiment_does_not_use_is_refused(make_project: Make) -> None:
    project = make_project(SMALL_CATALOG + "experiments:\n  t: {command: x, params: [lr]}\n")
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(project, experiment="t", overrides={"mode": "slow"})
    assert str(caught.value) == (
        "-p mode: parameter 'mode' is not used by experiment 't'; "
        "add it to experiments.t.params in keel.yaml"
    )


def test_every_bad_override_is_reported_in_one_error(iris: ProjectSpec) -> None:
    overrides = {
        "n_estimatrs": "3",
        "model": "svm",
        "c": "abc",
        "test_size": "0.95",
        "n_estimators": "0",
        "features": "[1,",
    }
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(iris, experiment="train", overrides=overrides)
    assert [str(p) for p in caught.value.problems] == [
        "-p n_estimatrs: unknown parameter 'n_estimatrs' for experiment 'train'; "
        "did you mean 'n_estimators'?",
        "-p model: 'svm' is not one of the choices: logreg, forest",
        "-p c: expected a number, got 'abc'; write it like 0.5 or 1e-3",
        "-p test_size: 0.95 is out of range: must be between 0.05 and 0.9",
        "-p n_estimators: 0 is out of range: must be between 1 and 5000",
        "-p features: '[1,' is not a JSON list: Expecting value; or write a,b,c",
    ]


def test_a_profile_value_for_a_param_the_experiment_does_not_use_is_ignored(
    make_project: Make,
) -> None:
    project = make_project(
        SMALL_CATALOG
        + "experiments:\n  t: {command: x, params: [lr]}\n"
        + "profiles:\n  fast: {params: {mode: slow, lr: 0.5}}\n"
    )
    plan = resolve_run(project, experiment="t", profile="fast")
    assert plan.params == (ResolvedParam(name="lr", value=0.5, layer=Layer.PROFILE),)


def test_a_required_parameter_without_a_value_is_a_problem(make_project: Make) -> None:
    project = make_project(
        "project: p\nparams:\n  data: {type: path}\nexperiments:\n  t: {command: 'x {data}'}\n"
    )
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(project, experiment="t")
    assert str(caught.value) == (
        "-p data: parameter 'data' has no value: the catalog gives it no default; "
        "give one with -p data=VALUE, or a default in keel.yaml"
    )
    plan = resolve_run(project, experiment="t", overrides={"data": "in.csv"})
    assert plan.argv == ("x", "in.csv")


def test_a_missing_input_names_the_file_line_and_path(iris: ProjectSpec, tmp_path: Path) -> None:
    (tmp_path / "data" / "iris.csv").unlink()
    with pytest.raises(ValidationError) as caught:
        resolve_run(iris, experiment="train")
    assert type(caught.value) is ValidationError
    assert str(caught.value) == (
        f"keel.yaml:37: experiments.train.inputs[0]: input 'data/iris.csv' does not exist in "
        f"{tmp_path.resolve()}; create it, or fix the path"
    )


def test_inputs_are_not_checked_when_asked_not_to(iris: ProjectSpec, tmp_path: Path) -> None:
    (tmp_path / "data" / "iris.csv").unlink()
    assert resolve_run(iris, experiment="train", check_inputs=False).inputs


def test_bad_overrides_and_missing_inputs_are_reported_together(
    iris: ProjectSpec, tmp_path: Path
) -> None:
    (tmp_path / "data" / "iris.csv").unlink()
    with pytest.raises(InvalidParameter) as caught:
        resolve_run(iris, experiment="train", overrides={"model": "svm"})
    assert [p.key for p in caught.value.problems] == ["-p model", "experiments.train.inputs[0]"]


def test_an_entrypoint_experiment_has_no_argv(make_project: Make, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    project = make_project(
        SMALL_CATALOG + "experiments:\n  t: {entrypoint: 'pkg.mod:main', cwd: src, timeout: 60}\n"
    )
    plan = resolve_run(project, experiment="t")
    assert plan.argv is None and plan.entrypoint == "pkg.mod:main"
    assert plan.cwd == tmp_path.resolve() / "src" and plan.cwd.is_absolute()
    assert plan.timeout_s == 60.0


def test_a_missing_working_folder_is_a_problem(make_project: Make) -> None:
    project = make_project(SMALL_CATALOG + "experiments:\n  t: {command: x, cwd: src}\n")
    with pytest.raises(ValidationError) as caught:
        resolve_run(project, experiment="t")
    assert "experiments.t.cwd: folder 'src' does not exist" in str(caught.value)


def test_the_profile_environment_is_passed_to_the_run(make_project: Make) -> None:
    project = make_project(
        SMALL_CATALOG
        + "experiments:\n  t: {command: x, params: [lr]}\n"
        + "profiles:\n  ci: {env: {OMP_NUM_THREADS: 1}}\n"
    )
    plan = resolve_run(project, experiment="t", profile="ci")
    assert plan.extra_env == {"KEEL_PARAM_LR": "0.1", "OMP_NUM_THREADS": "1"}


def test_catalog_rows_list_every_parameter_without_an_experiment(iris: ProjectSpec) -> None:
    rows = catalog_rows(iris, None)
    assert [r["name"] for r in rows] == ["model", "n_estimators", "c", "test_size", "features"]
    assert rows[2] == {
        "name": "c",
        "type": "float",
        "default": 1.0,
        "range": "[0.0001, 1000] (log)",
        "unit": None,
        "doc": "Inverse regularisation strength",
    }


def test_catalog_rows_for_an_experiment_show_the_default_it_gets(iris: ProjectSpec) -> None:
    rows = {r["name"]: r for r in catalog_rows(iris, "train")}
    assert (rows["n_estimators"]["default"], rows["n_estimators"]["source"]) == (200, "experiment")
    assert (rows["model"]["default"], rows["model"]["source"]) == ("forest", "catalog")
    assert rows["model"]["range"] == "logreg, forest"
    prod = {r["name"]: r for r in catalog_rows(iris, "train", profile="prod")}
    assert (prod["n_estimators"]["default"], prod["n_estimators"]["source"]) == (500, "profile")


def test_catalog_rows_for_an_unknown_experiment_suggest_a_name(iris: ProjectSpec) -> None:
    with pytest.raises(ValidationError, match="did you mean 'train'"):
        catalog_rows(iris, "trn")
