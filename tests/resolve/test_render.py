"""Values as command-line arguments and environment variables."""

from __future__ import annotations

import pytest

from keel.base.canonical import JsonValue
from keel.resolve import arg_text, env_text, render_argv
from keel.resolve.render import param_env


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(1.0, "1.0", id="float-one"),
        pytest.param(0.0001, "0.0001", id="small-float"),
        pytest.param(1e-7, "1e-07", id="tiny-float"),
        pytest.param(200, "200", id="int"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param("a b", "a b", id="text"),
        pytest.param(["a", 1, 2.5, True], "a,1,2.5,true", id="list"),
        pytest.param(None, "", id="null"),
    ],
)
def test_arg_text_is_minimal_and_unambiguous(value: JsonValue, text: str) -> None:
    assert arg_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(["a", 1], '["a",1]', id="list-as-json"),
        pytest.param({"k": [1, 2]}, '{"k":[1,2]}', id="mapping-as-json"),
        pytest.param(0.5, "0.5", id="scalar-as-arg"),
        pytest.param(False, "false", id="bool-as-arg"),
    ],
)
def test_env_text_writes_lists_as_compact_json(value: JsonValue, text: str) -> None:
    assert env_text(value) == text


def test_placeholders_are_filled_inside_each_argument() -> None:
    argv = render_argv(
        "python train.py --lr={lr} --name '{name} run' {{literal}} --seed {seed}",
        {"lr": 0.01, "name": "my model"},
        seed=3,
    )
    assert argv == (
        "python",
        "train.py",
        "--lr=0.01",
        "--name",
        "my model run",
        "{literal}",
        "--seed",
        "3",
    )


def test_a_value_with_spaces_stays_one_argument() -> None:
    assert render_argv("echo {msg}", {"msg": "a b; rm -rf /"}, seed=0) == ("echo", "a b; rm -rf /")


def test_param_env_names_are_upper_case_with_the_keel_prefix() -> None:
    assert param_env({"lr": 0.1, "features": ["a", "b"]}) == {
        "KEEL_PARAM_LR": "0.1",
        "KEEL_PARAM_FEATURES": '["a","b"]',
    }
