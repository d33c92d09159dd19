"""compare_states: every kind of drift named by kind, subject, old → new; code is information."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from keel.compare.drift import (
    Change,
    DriftKind,
    DriftReport,
    compare_states,
    experiment_added,
    state_from_manifest,
    uncompared,
)
from keel.compare.drift_facets import same_value, version_change
from keel.model.manifest import Manifest, ParamValue
from keel.spec.lockfile import CodeState, EnvironmentState, ExperimentState, InputState

FIXTURE = Path(__file__).parents[1] / "model" / "fixtures" / "manifest_v1.json"

ENV = EnvironmentState(
    python_implementation="CPython",
    python_version="3.11.7",
    platform="Linux-6.1-x86_64",
    packages={"numpy": "1.26.4", "click": "8.1.7", "tzdata": "2024a"},
    lock_files={"requirements.txt": "blake3:" + "a" * 64},
    threads={"OMP_NUM_THREADS": "1"},
)
LOCKED = ExperimentState(
    name="train",
    profile="dev",
    params={
        "lr": ParamValue(value=0.1, source="catalog"),
        "epochs": ParamValue(value=5, source="experiment"),
        "flag": ParamValue(value=True, source="catalog"),
    },
    seed=42,
    command="python train.py",
    inputs=(InputState(path="data/points.csv", kind="file", digest="blake3:" + "b" * 64, size=12),),
    environment=ENV,
    code=CodeState(commit="1" * 40, dirty=False),
)


def _messages(current: ExperimentState, reference: ExperimentState = LOCKED) -> list[str]:
    return [d.message for d in compare_states(reference, current)]


def test_identical_states_have_no_drift() -> None:
    assert compare_states(LOCKED, replace(LOCKED)) == ()
    report = DriftReport(against="lock", references={"train": "keel.lock"})
    assert not report and report.exit_code == 0


def _param(name: str, value: object, source: str) -> ExperimentState:
    params = {**LOCKED.params, name: ParamValue(value=value, source=source)}  # type: ignore[arg-type]
    return replace(LOCKED, params=params)


@pytest.mark.parametrize(
    ("current", "message"),
    [
        pytest.param(
            _param("lr", 0.2, "catalog"), "param lr: 0.1 → 0.2 (catalog default)", id="catalog"
        ),
        pytest.param(
            _param("epochs", 6, "experiment"),
            "param epochs: 5 → 6 (experiment default)",
            id="experiment-default",
        ),
        pytest.param(
            _param("epochs", 9, "profile"),
            "param epochs: 5 (experiment default) → 9 (profile 'dev')",
            id="layer-changed",
        ),
        pytest.param(
            replace(LOCKED, params={k: v for k, v in LOCKED.params.items() if k != "lr"}),
            "param lr removed (was 0.1, catalog default)",
            id="removed",
        ),
        pytest.param(
            _param("mode", "fast", "catalog"),
            "param mode added: 'fast' (catalog default)",
            id="added",
        ),
        pytest.param(replace(LOCKED, seed=7), "seed: 42 → 7", id="seed"),
        pytest.param(
            replace(LOCKED, command="python train2.py"),
            "command: 'python train.py' → 'python train2.py'",
            id="command",
        ),
        pytest.param(replace(LOCKED, profile="prod"), "profile: dev → prod", id="profile"),
    ],
)
def test_config_drift_names_param_old_new_and_layer(current: ExperimentState, message: str) -> None:
    drift = compare_states(LOCKED, current)
    assert [d.message for d in drift] == [message]
    assert drift[0].kind is DriftKind.CONFIG and drift[0].blocking


def test_a_profile_value_names_the_profile() -> None:
    locked = replace(
        LOCKED, profile="prod", params={"epochs": ParamValue(value=9, source="profile")}
    )
    now = replace(locked, params={"epochs": ParamValue(value=10, source="profile")})
    assert _messages(now, locked) == ["param epochs: 9 → 10 (profile 'prod')"]


def test_true_is_not_one_but_five_is_five_point_zero() -> None:
    assert same_value(5, 5.0) and not same_value(True, 1) and not same_value([True], [1])
    assert _messages(_param("flag", 1, "catalog")) == ["param flag: true → 1 (catalog default)"]


def _env(**changes: object) -> ExperimentState:
    return replace(LOCKED, environment=replace(ENV, **changes))  # type: ignore[arg-type]


def test_environment_drift_names_every_package_change() -> None:
    packages = {"numpy": "2.0.0", "click": "8.0.0", "tzdata": "2024b", "rich": "13.0"}
    drift = compare_states(LOCKED, _env(packages=packages))
    assert {d.subject: d.change for d in drift} == {
        "package click": Change.DOWNGRADED,
        "package numpy": Change.UPGRADED,
        "package rich": Change.ADDED,
        "package tzdata": Change.CHANGED,
    }
    assert "package numpy: 1.26.4 → 2.0.0 (upgraded)" in [d.message for d in drift]
    assert all(d.kind is DriftKind.ENVIRONMENT and d.blocking for d in drift)
    assert _messages(_env(packages={"numpy": "1.26.4", "click": "8.1.7"})) == [
        "package tzdata removed (was 2024a)"
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"python_version": "3.12.1"}, "python: CPython 3.11.7 → CPython 3.12.1"),
        ({"platform": "Linux-6.5"}, "platform: Linux-6.1-x86_64 → Linux-6.5"),
        ({"threads": {"OMP_NUM_THREADS": "4"}}, "OMP_NUM_THREADS: 1 → 4"),
        ({"threads": {}}, "OMP_NUM_THREADS unset (was 1)"),
        (
            {"threads": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2"}},
            "MKL_NUM_THREADS set to 2 (was unset)",
        ),
        (
            {"lock_files": {"requirements.txt": "blake3:" + "d" * 64}},
            "lock file requirements.txt changed",
        ),
        ({"lock_files": {}}, "lock file requirements.txt removed"),
    ],
    ids=["python", "platform", "threads", "threads-unset", "threads-set", "lock-file", "lock-gone"],
)
def test_environment_drift_of_python_platform_threads_and_lock_files(
    changes: dict[str, object], message: str
) -> None:
    assert _messages(_env(**changes)) == [message]


def test_version_change_compares_numeric_releases() -> None:
    assert version_change("1.9", "1.10") is Change.UPGRADED
    assert version_change("2.0", "2.0.0") is Change.CHANGED
    assert version_change("1.0.post1", "1.0") is Change.CHANGED
    assert version_change("abc", "1.0") is Change.CHANGED


def test_data_drift_names_the_input() -> None:
    changed = InputState(path="data/points.csv", kind="file", digest="blake3:" + "e" * 64, size=18)
    drift = compare_states(LOCKED, replace(LOCKED, inputs=(changed,)))
    assert [d.message for d in drift] == [
        "input data/points.csv changed: blake3:bbbbbbbbbbbb → blake3:eeeeeeeeeeee (12 → 18 bytes)"
    ]
    assert drift[0].kind is DriftKind.DATA
    missing = InputState(path="data/points.csv", kind="missing")
    assert _messages(replace(LOCKED, inputs=(missing,))) == [
        "input data/points.csv is missing (was blake3:bbbbbbbbbbbb)"
    ]
    assert _messages(replace(LOCKED, inputs=())) == ["input data/points.csv is no longer declared"]


def test_code_drift_is_information_and_does_not_fail() -> None:
    now = replace(
        LOCKED,
        code=CodeState(commit="2" * 40, dirty=True, changed=("a.py", "b.py", "c", "d", "e", "f")),
    )
    drift = compare_states(LOCKED, now)
    assert [d.message for d in drift] == [
        "commit moved: 1111111111 → 2222222222",
        "uncommitted changes: a.py, b.py, c, d, e (+1 more)",
    ]
    assert not any(d.blocking for d in drift)
    report = DriftReport(against="lock", references={"train": "keel.lock"}, items=drift)
    assert not report.drifted and report.exit_code == 0
    assert report.counts == {"config": 0, "environment": 0, "data": 0, "code": 2}


def test_uncaptured_sides_are_not_compared_but_noted() -> None:
    reference = replace(LOCKED, environment=None)
    assert compare_states(reference, _env(python_version="3.12")) == ()
    notes = uncompared(reference, LOCKED, what="baseline 06g")
    assert notes == ("train: the environment of baseline 06g was not captured; not compared",)
    unread = replace(LOCKED, code=CodeState(commit=None, dirty=False, reason="no git"))
    assert compare_states(LOCKED, unread) == ()


def test_report_json_shape() -> None:
    drift = compare_states(LOCKED, _param("lr", 0.2, "catalog"))
    report = DriftReport(
        against="lock",
        references={"train": "keel.lock", "fn": "keel.lock"},
        items=(*drift, experiment_added("fn", "keel.lock")),
    )
    data = report.to_json()
    assert data["drifted"] is True and data["exit_code"] == 1
    assert data["experiments"] == ["fn", "train"]
    assert data["counts"] == {"config": 2, "environment": 0, "data": 0, "code": 0}
    first = data["drift"][0]  # type: ignore[index]
    assert first == {
        "experiment": "train",
        "kind": "config",
        "subject": "param lr",
        "change": "changed",
        "message": "param lr: 0.1 → 0.2 (catalog default)",
        "old": {"value": 0.1, "source": "catalog"},
        "new": {"value": 0.2, "source": "catalog"},
        "blocking": True,
    }
    assert "keel lock fn" in str(data["drift"][1]["message"])  # type: ignore[index]
    json.dumps(data)


def test_a_manifest_becomes_the_same_state_shape() -> None:
    manifest = Manifest.from_json(json.loads(FIXTURE.read_text()))
    state = state_from_manifest(manifest)
    assert state.name == manifest.run.experiment and state.seed == manifest.seeds.root
    assert state.params == manifest.config.params
    assert [i.path for i in state.inputs] == [i.path for i in manifest.inputs]
    assert state.code is not None and state.code.commit == manifest.code.get("commit")
    assert compare_states(state, replace(state)) == ()
