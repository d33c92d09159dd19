"""Experiments: command or entrypoint, placeholders, parameters, defaults and paths."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keel.spec import InputDecl, ProjectSpec, parse_template
from keel.spec.experiment import path_problem
from tests.spec.samples import SMALL_CATALOG

Problems = Callable[[str], list[str]]
Make = Callable[[str], ProjectSpec]


def _with(experiment: str) -> str:
    """SMALL_CATALOG plus one experiment named ``train`` (its body starts on line 8)."""
    body = "\n".join("    " + line for line in experiment.strip("\n").splitlines())
    return SMALL_CATALOG + "experiments:\n  train:\n" + body + "\n"


def test_an_unknown_key_names_its_line_and_the_closest_key(make_problems: Problems) -> None:
    assert make_problems(_with("comand: python x.py")) == [
        "keel.yaml:8: experiments.train.comand: unknown key; did you mean 'command'?",
    ]


def test_an_experiment_without_command_or_entrypoint_is_refused(make_problems: Problems) -> None:
    assert make_problems(_with("why: nothing to run")) == [
        "keel.yaml:7: experiments.train: an experiment needs a command or an entrypoint"
    ]


def test_command_and_entrypoint_together_are_refused(make_problems: Problems) -> None:
    assert make_problems(_with("command: python x.py\nentrypoint: pkg.mod:main")) == [
        "keel.yaml:7: experiments.train: give either command or entrypoint, not both"
    ]


def test_an_entrypoint_alone_is_accepted(make_project: Make) -> None:
    exp = make_project(_with("entrypoint: pkg.train:main")).experiments["train"]
    assert exp.entrypoint == "pkg.train:main" and exp.command is None


@pytest.mark.parametrize(
    "entrypoint",
    [
        pytest.param("pkg.train", id="no-function"),
        pytest.param("pkg/train.py:main", id="file-path"),
        pytest.param("pkg.train:main()", id="call"),
        pytest.param(":main", id="no-module"),
    ],
)
def test_an_entrypoint_must_be_module_colon_function(
    make_problems: Problems, entrypoint: str
) -> None:
    assert make_problems(_with(f"entrypoint: '{entrypoint}'")) == [
        f"keel.yaml:8: experiments.train.entrypoint: '{entrypoint}' is not of the form "
        "package.module:function"
    ]


def test_an_undefined_placeholder_gets_the_closest_name(make_problems: Problems) -> None:
    assert make_problems(_with("command: python x.py --lr {lrr} --seed {sed}")) == [
        "keel.yaml:8: experiments.train.command: undefined placeholder {lrr}; did you mean 'lr'?",
        "keel.yaml:8: experiments.train.command: undefined placeholder {sed}; did you mean 'seed'?",
    ]


def test_a_placeholder_must_be_a_param_of_the_experiment(make_problems: Problems) -> None:
    (problem,) = make_problems(_with("command: x {mode}\nparams: [lr]"))
    assert problem.startswith(
        "keel.yaml:8: experiments.train.command: undefined placeholder {mode}"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        pytest.param(
            "x {lr",
            "bad placeholder in '{lr': expected '}' before end of string; "
            "write {{ and }} for literal braces",
            id="unclosed-brace",
        ),
        pytest.param(
            "x {lr:.3f}",
            "bad placeholder in '{lr:.3f}': placeholder {lr} takes no "
            "format spec or conversion; write {{ and }} for literal braces",
            id="format-spec",
        ),
        pytest.param(
            "x 'unclosed",
            "cannot split the command into arguments: No closing quotation; check its quotes",
            id="unbalanced-quote",
        ),
        pytest.param("", "the command is empty", id="empty"),
    ],
)
def test_a_malformed_command_is_refused(
    make_problems: Problems, command: str, message: str
) -> None:
    assert make_problems(_with(f'command: "{command}"')) == [
        f"keel.yaml:8: experiments.train.command: {message}"
    ]


def test_escaped_braces_are_not_placeholders(make_project: Make) -> None:
    project = make_project(_with("command: \"python -c 'print({{1: {lr}}})'\""))
    assert project.experiments["train"].command == "python -c 'print({{1: {lr}}})'"


def test_omitted_params_mean_the_whole_catalog(make_project: Make) -> None:
    exp = make_project(_with("command: x")).experiments["train"]
    assert exp.params == ("lr", "epochs", "mode")


def test_params_must_be_in_the_catalog_and_listed_once(make_problems: Problems) -> None:
    assert make_problems(_with("command: x\nparams: [lr, epoch, lr]")) == [
        "keel.yaml:9: experiments.train.params[1]: 'epoch' is not in the catalog; "
        "did you mean 'epochs'?",
        "keel.yaml:9: experiments.train.params[2]: 'lr' is listed twice",
    ]


def test_defaults_are_checked_against_the_catalog(make_problems: Problems) -> None:
    text = _with("command: x\nparams: [lr, mode]\ndefaults: {lr: 20, mode: slw, epochs: 2}")
    assert make_problems(text) == [
        "keel.yaml:10: experiments.train.defaults.lr: 20 is out of range: must be between "
        "0.0001 and 10",
        "keel.yaml:10: experiments.train.defaults.mode: 'slw' is not one of the choices: "
        "fast, slow; did you mean 'slow'?",
        "keel.yaml:10: experiments.train.defaults.epochs: 'epochs' is not a parameter of this "
        "experiment; valid names: lr, mode",
    ]


def test_defaults_are_normalised(make_project: Make) -> None:
    exp = make_project(_with("command: x\ndefaults: {lr: 1}")).experiments["train"]
    assert exp.defaults == {"lr": 1.0} and isinstance(exp.defaults["lr"], float)


def test_inputs_take_a_path_or_a_mapping(make_project: Make) -> None:
    exp = make_project(_with("command: x\ninputs: [a.csv, {path: big/, store: false}]"))
    assert exp.experiments["train"].inputs == (
        InputDecl(path="a.csv"),
        InputDecl(path="big/", store=False),
    )


def test_an_unknown_key_in_an_input_is_named_with_its_index(make_problems: Problems) -> None:
    assert make_problems(_with("command: x\ninputs:\n  - a.csv\n  - {path: b, stor: false}")) == [
        "keel.yaml:11: experiments.train.inputs[1].stor: unknown key; did you mean 'store'?"
    ]


def test_a_single_path_where_a_list_is_expected_gets_a_hint(make_problems: Problems) -> None:
    assert make_problems(_with("command: x\noutputs: out/model.pkl")) == [
        "keel.yaml:9: experiments.train.outputs: expected a list, got 'out/model.pkl' (text); "
        "write a list: [out/model.pkl]"
    ]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param(
            "/etc/passwd",
            "'/etc/passwd' is absolute; give paths relative to the project root",
            id="absolute",
        ),
        pytest.param(
            "~/data.csv",
            "'~/data.csv' is absolute; give paths relative to the project root",
            id="home",
        ),
        pytest.param(
            "C:\\data.csv",
            "'C:\\data.csv' is absolute; give paths relative to the project root",
            id="windows-drive",
        ),
        pytest.param("../x.csv", "'../x.csv' leads outside the project", id="parent"),
        pytest.param(
            "data/../../x.csv", "'data/../../x.csv' leads outside the project", id="climbs-out"
        ),
        pytest.param("..\\x.csv", "'..\\x.csv' leads outside the project", id="windows-parent"),
        pytest.param("", "the path is empty", id="empty"),
    ],
)
def test_a_path_outside_the_project_is_refused(path: str, reason: str) -> None:
    assert path_problem(path) == reason


@pytest.mark.parametrize("path", ["data/iris.csv", "./data", "a/../b", "out/"])
def test_a_relative_path_inside_the_project_is_accepted(path: str) -> None:
    assert path_problem(path) is None


def test_every_path_key_is_checked(make_problems: Problems) -> None:
    text = _with(
        "command: x\ninputs: [/data]\noutputs: [../out]\nmetrics_file: /m.json\ncwd: ../.."
    )
    assert [p.split(": ")[1] for p in make_problems(text)] == [
        "experiments.train.inputs[0]",
        "experiments.train.outputs[0]",
        "experiments.train.metrics_file",
        "experiments.train.cwd",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            "seed: -1",
            "keel.yaml:9: experiments.train.seed: must be at least 0, got -1",
            id="negative-seed",
        ),
        pytest.param(
            "seed: 1.5",
            "keel.yaml:9: experiments.train.seed: expected an integer, got 1.5",
            id="float-seed",
        ),
        pytest.param(
            "timeout: 0",
            "keel.yaml:9: experiments.train.timeout: must be greater than 0, got 0",
            id="zero-timeout",
        ),
        pytest.param(
            "metrics: {acc: {goal: maximize}}",
            "keel.yaml:9: "
            "experiments.train.metrics.acc.goal: must be one of: max, min; got "
            "'maximize' (text)",
            id="bad-goal",
        ),
        pytest.param(
            "metrics: {acc: {goal: max, tolerance: -0.1}}",
            "keel.yaml:9: experiments.train.metrics.acc.tolerance: must be at least 0, got -0.1",
            id="negative-tolerance",
        ),
        pytest.param(
            "metrics: {acc: {tolerance: 0.1}}",
            "keel.yaml:9: experiments.train.metrics.acc.goal: required key is missing",
            id="missing-goal",
        ),
        pytest.param(
            "env: [OMP-THREADS]",
            "keel.yaml:9: experiments.train.env[0]: "
            "'OMP-THREADS' is not a valid environment variable name",
            id="bad-env-name",
        ),
        pytest.param(
            "tags: baseline",
            "keel.yaml:9: experiments.train.tags: expected a list, "
            "got 'baseline' (text); write a list: [baseline]",
            id="tags-not-list",
        ),
    ],
)
def test_bad_experiment_fields_are_reported(
    make_problems: Problems, body: str, problem: str
) -> None:
    assert make_problems(_with("command: x\n" + body)) == [problem]


def test_an_experiment_name_must_be_simple(make_problems: Problems) -> None:
    text = SMALL_CATALOG + "experiments:\n  'my exp': {command: x}\n"
    assert make_problems(text) == [
        "keel.yaml:7: experiments.my exp: 'my exp' is not a valid experiment name; "
        "use letters, digits, _ and -"
    ]


def test_seed_is_absent_unless_declared(make_project: Make) -> None:
    assert make_project(_with("command: x")).experiments["train"].seed is None


@pytest.mark.parametrize(
    ("token", "pieces"),
    [
        pytest.param("--lr={lr}", [("--lr=", "lr")], id="prefix"),
        pytest.param("{a}{b}", [("", "a"), ("", "b")], id="two"),
        pytest.param("{{x}}", [("{", None), ("x}", None)], id="escaped"),
        pytest.param("plain", [("plain", None)], id="no-placeholder"),
    ],
)
def test_parse_template_splits_a_token_into_text_and_names(
    token: str, pieces: list[tuple[str, str | None]]
) -> None:
    assert parse_template(token) == pieces
