"""Finding and loading keel.yaml: the whole file, and every problem in it at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keel.base.digest import hash_bytes
from keel.errors import ProjectNotFound, UserError, ValidationError
from keel.model.params import ParamKind
from keel.spec import (
    InputDecl,
    MetricDecl,
    ProfileSpec,
    ProjectSpec,
    StoreSpec,
    find_spec_file,
    load_project,
)
from tests.spec.samples import IRIS_YAML, write_spec

Problems = Callable[[str], list[str]]


@pytest.fixture
def iris(tmp_path: Path) -> ProjectSpec:
    return load_project(write_spec(tmp_path, IRIS_YAML, dedent=False))


def test_the_guide_example_loads_with_every_value(iris: ProjectSpec, tmp_path: Path) -> None:
    assert iris.name == "iris-demo"
    assert iris.root == tmp_path.resolve()
    assert iris.file == tmp_path.resolve() / "keel.yaml"
    assert iris.digest == str(hash_bytes(IRIS_YAML.encode()))
    assert list(iris.params) == ["model", "n_estimators", "c", "test_size", "features"]
    assert iris.params["model"].type is ParamKind.CHOICE
    assert iris.params["model"].choices == ("logreg", "forest")
    assert iris.params["c"].log is True and iris.params["c"].min == 0.0001
    assert iris.params["features"].default == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert iris.profiles == {
        "dev": ProfileSpec(),
        "prod": ProfileSpec(strict=True, params={"n_estimators": 500}),
    }
    assert iris.store == StoreSpec()


def test_the_guide_example_experiment_is_read_as_declared(iris: ProjectSpec) -> None:
    train = iris.experiments["train"]
    assert train.command == (
        "python train.py --model {model} --n-estimators {n_estimators} --c {c} "
        "--test-size {test_size} --seed {seed}"
    )
    assert train.params == ("model", "n_estimators", "c", "test_size", "features")
    assert train.defaults == {"n_estimators": 200}
    assert train.seed == 42
    assert train.inputs == (InputDecl(path="data/iris.csv"),)
    assert train.outputs == ("out/model.pkl", "out/metrics.json")
    assert train.metrics_file == "out/metrics.json"
    assert train.metrics == {"accuracy": MetricDecl(goal="max", tolerance=0.0)}
    assert train.env == ("OMP_NUM_THREADS",)
    assert train.why == "Baseline classifiers on iris"
    assert train.tags == ("baseline",)
    assert train.timeout is None and train.cwd is None


def test_the_line_map_is_kept_for_later_problems(iris: ProjectSpec) -> None:
    assert iris.line_of(("experiments", "train", "inputs")) == 37
    assert iris.line_of(("experiments", "train", "inputs", 0)) == 37
    assert iris.line_of(("profiles", "prod", "params", "n_estimators")) == 50
    problem = iris.problem(("experiments", "train", "seed"), "bad seed", hint="fix it")
    assert str(problem) == "keel.yaml:36: experiments.train.seed: bad seed; fix it"


def test_the_spec_file_is_found_from_a_nested_folder(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "project: p\n")
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    assert find_spec_file(nested) == spec.resolve()
    assert find_spec_file(spec) == spec.resolve()


def test_no_spec_file_up_to_the_root_tells_the_user_to_run_keel_init(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound) as caught:
        find_spec_file(tmp_path)
    message = str(caught.value)
    assert message == (
        f"no keel.yaml in {tmp_path.resolve()} or any folder above it; "
        "run `keel init` to create a project here"
    )


def test_loading_a_missing_file_is_project_not_found(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound, match="keel init"):
        load_project(tmp_path / "keel.yaml")


def test_many_problems_across_sections_are_reported_together(make_problems: Problems) -> None:
    text = """\
        project: demo
        params:
          lr: {type: float, default: 20, min: 0.0001, max: 10}
          mode: {type: choice, choices: [fast, slow], default: quick}
          flag: {type: bool, default: 'no'}
        experiments:
          train:
            comand: python train.py --lr {lr}
            entrypoint: pkg.mod:main
            params: [lr, mode, flags]
          eval:
            command: python eval.py --lr {l_r}
            params: [lr]
        profiles:
          prod: {strict: true, params: {mode: fast, lr: -1}}
        stoer: {}
        """
    assert make_problems(text) == [
        "keel.yaml:3: params.lr.default: 20 is out of range: must be between 0.0001 and 10",
        "keel.yaml:4: params.mode.default: 'quick' is not one of the choices: fast, slow",
        "keel.yaml:5: params.flag.default: expected true or false, got 'no' (text); "
        "write true or false without quotes",
        "keel.yaml:8: experiments.train.comand: unknown key; did you mean 'command'?",
        "keel.yaml:10: experiments.train.params[2]: 'flags' is not in the catalog; "
        "did you mean 'flag'?",
        "keel.yaml:12: experiments.eval.command: undefined placeholder {l_r}; did you mean 'lr'?",
        "keel.yaml:16: stoer: unknown key; did you mean 'store'?",
    ]


def test_all_problems_arrive_in_one_validation_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "project: p\nparams: {a: {type: int, default: x}}\nextra: 1\n")
    with pytest.raises(ValidationError) as caught:
        load_project(spec)
    assert len(caught.value.problems) == 2
    assert str(caught.value) == (
        "keel.yaml:2: params.a.default: expected an integer, got 'x' (text)\n"
        "keel.yaml:3: extra: unknown key; valid names: experiments, params, profiles, project, "
        "remotes, store, sweeps"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "", "keel.yaml:1: keel.yaml is empty; start it with `project: NAME`", id="empty"
        ),
        pytest.param(
            "- a\n- b\n",
            "keel.yaml:1: keel.yaml is not a mapping of sections; start it with `project: NAME`",
            id="list",
        ),
        pytest.param(
            "params: {}\n", "keel.yaml: project: required key is missing", id="no-project"
        ),
        pytest.param(
            "project: ' '\n", "keel.yaml:1: project: the project name is empty", id="blank-project"
        ),
        pytest.param(
            "project: p\nparams: [a]\n",
            "keel.yaml:2: params: expected a mapping, got a list",
            id="params-list",
        ),
        pytest.param(
            "project: p\nstore: {index: nope}\n",
            "keel.yaml:2: store.index: 'nope' is "
            "not a database URL; write it like sqlite:///.keel/index.db or "
            "postgresql://host/db",
            id="store-index",
        ),
    ],
)
def test_a_malformed_top_level_is_reported(
    make_problems: Problems, text: str, problem: str
) -> None:
    assert make_problems(text) == [problem]


def test_empty_sections_are_allowed(make_project: Callable[[str], ProjectSpec]) -> None:
    project = make_project("project: p\nparams:\nexperiments:\nprofiles:\n")
    assert project.params == {} and project.experiments == {}
    assert list(project.profiles) == ["dev"]


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "keel.yaml"
    spec.write_bytes(b"project: p\nwhy: caf\xe9\n")
    with pytest.raises(ValidationError) as caught:
        load_project(spec)
    assert str(caught.value) == "keel.yaml:2: the file is not valid UTF-8 text"


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    spec = tmp_path / "keel.yaml"
    spec.write_bytes(b"\xef\xbb\xbfproject: p\n")
    assert load_project(spec).name == "p"


def test_a_duplicate_key_is_reported_with_the_problems_of_the_rest(
    make_problems: Problems,
) -> None:
    text = "project: p\nparams:\n  a: {type: int, default: 1}\n  a: {type: str}\nstor: {}\n"
    assert make_problems(text) == [
        "keel.yaml:4: params.a: duplicate key (first defined on line 3); keep one of them",
        "keel.yaml:5: stor: unknown key; did you mean 'store'?",
    ]


def test_a_refused_tag_stops_before_the_schema_is_checked(make_problems: Problems) -> None:
    assert make_problems("project: !!python/name:os.getcwd\nstor: {}\n") == [
        "keel.yaml:1: project: tag '!!python/name:os.getcwd' is not allowed; keel.yaml holds "
        "plain data only: mappings, lists, text, numbers, booleans, null"
    ]


def test_a_spec_path_that_cannot_be_read_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").mkdir()
    with pytest.raises(UserError, match=r"cannot read .*keel.yaml"):
        load_project(tmp_path / "keel.yaml")
