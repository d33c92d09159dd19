"""Why a stage would run: reasons that name the value at fault."""

from __future__ import annotations

from collections.abc import Mapping

from keel.base.canonical import JsonValue
from keel.capture.codehash import MISSING
from keel.ops.pipeline_explain import MAX_PACKAGE_REASONS, explain, params_changes
from keel.ops.stagekey import PENDING, Components


class _Sources:
    def __init__(
        self,
        *,
        old_config: Mapping[str, JsonValue] | None = None,
        new_config: Mapping[str, JsonValue] | None = None,
        old_env: Mapping[str, JsonValue] | None = None,
        new_env: Mapping[str, JsonValue] | None = None,
    ) -> None:
        self.configs = (old_config, new_config)
        self.envs = (old_env, new_env)

    def current_config(self) -> Mapping[str, JsonValue] | None:
        return self.configs[1]

    def recorded_config(self) -> Mapping[str, JsonValue] | None:
        return self.configs[0]

    def current_env(self) -> Mapping[str, JsonValue] | None:
        return self.envs[1]

    def recorded_env(self) -> Mapping[str, JsonValue] | None:
        return self.envs[0]


BASE = Components(config="c", params={"c": 1.0}, code={"t.py": "a"}, inputs={"d": "x"}, env="e")


def test_a_stage_without_a_success_was_never_run() -> None:
    assert explain(BASE, None, sources=_Sources()) == ["never run"]


def test_param_changes_name_old_and_new_values() -> None:
    assert params_changes(
        {"c": 1.0, "mode": "fast", "gone": [1, 2], "n": 1},
        {"c": 0.5, "mode": "slow", "new": True, "n": 1.0},
    ) == [
        "param c: 1.0 → 0.5",
        "param gone removed (was [1, 2])",
        "param mode: fast → slow",
        "param n: 1 → 1.0",
        "param new added: true",
    ]


def test_a_config_change_beyond_params_is_named() -> None:
    old = {"command": ["python", "t.py"], "seed": 1, "outputs": ["a"]}
    new = {"command": ["python", "t2.py"], "seed": 2, "outputs": ["a", "b"]}
    now = BASE._replace(config="c2")
    assert explain(now, BASE, sources=_Sources(old_config=old, new_config=new)) == [
        "seed: 1 → 2",
        "declared outputs changed",
        "command: python t.py → python t2.py",
    ]


def test_a_command_that_follows_a_param_is_not_named_twice() -> None:
    old = {"command": ["python", "t.py", "1.0"]}
    new = {"command": ["python", "t.py", "0.5"]}
    now = BASE._replace(config="c2", params={"c": 0.5})
    reasons = explain(now, BASE, sources=_Sources(old_config=old, new_config=new))
    assert reasons == ["param c: 1.0 → 0.5"]


def test_code_and_input_changes_name_the_file() -> None:
    now = BASE._replace(
        code={"t.py": "b", "helper.py": "h", "conf.yaml": MISSING}, inputs={"d": "y"}
    )
    was = BASE._replace(code={"t.py": "a", "old.py": "o", "conf.yaml": "c"})
    assert explain(now, was, sources=_Sources()) == [
        "code conf.yaml missing",
        "code helper.py added",
        "code old.py no longer used",
        "code t.py changed",
        "input d changed",
    ]


def test_an_input_awaiting_its_upstream_gives_no_reason_of_its_own() -> None:
    now = BASE._replace(inputs={"d": PENDING})
    assert explain(now, BASE, sources=_Sources()) == []
    assert explain(BASE, BASE, sources=_Sources()) == ["cache key changed (keel's key format)"]


def test_a_package_change_names_both_versions() -> None:
    old = {"python": {"version": "3.11.4"}, "packages": {"numpy": "2.3.1", "gone": "1"}}
    new = {"python": {"version": "3.11.5"}, "packages": {"numpy": "2.4.0", "new": "0.1"}}
    now = BASE._replace(env="e2")
    assert explain(now, BASE, sources=_Sources(old_env=old, new_env=new)) == [
        "python 3.11.4 → 3.11.5",
        "package gone 1 removed",
        "package new 0.1 added",
        "package numpy 2.3.1 → 2.4.0",
    ]


def test_many_package_changes_are_summarised() -> None:
    old: dict[str, JsonValue] = {"packages": {f"p{i:02}": "1" for i in range(20)}}
    new: dict[str, JsonValue] = {"packages": {f"p{i:02}": "2" for i in range(20)}}
    reasons = explain(BASE._replace(env="e2"), BASE, sources=_Sources(old_env=old, new_env=new))
    assert len(reasons) == MAX_PACKAGE_REASONS
    assert reasons[-1] == f"and {20 - MAX_PACKAGE_REASONS + 1} more package changes"
