"""The project-facts and plan caches never serve a stale answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keel.errors import ValidationError
from keel.ops.run import RunRequest, resolve_plan, run_experiment
from keel.ops.workspace import Workspace

MakeWs = Callable[..., Workspace]


def test_repeated_request_is_served_from_the_plan_cache(demo: Path, make_workspace: MakeWs) -> None:
    first = resolve_plan(make_workspace(demo), RunRequest(experiment="train"))
    ws = make_workspace(demo)
    again = resolve_plan(ws, RunRequest(experiment="train"))
    assert again == first
    assert ws._project is None  # keel.yaml was not parsed again


def test_editing_keel_yaml_invalidates_both_caches(demo: Path, make_workspace: MakeWs) -> None:
    run_experiment(make_workspace(demo), RunRequest(experiment="train"))
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("defaults: {epochs: 5}", "defaults: {epochs: 7}"))
    m = run_experiment(make_workspace(demo), RunRequest(experiment="train")).manifest
    assert m.config.params["epochs"].value == 7
    assert m.config.spec_digest != ""


def test_a_different_request_is_resolved_afresh(demo: Path, make_workspace: MakeWs) -> None:
    resolve_plan(make_workspace(demo), RunRequest(experiment="train"))
    plan = resolve_plan(make_workspace(demo), RunRequest(experiment="train", overrides={"lr": "2"}))
    assert plan.param_values["lr"] == 2.0


def test_cached_plan_is_not_used_when_an_input_disappeared(
    demo: Path, make_workspace: MakeWs
) -> None:
    resolve_plan(make_workspace(demo), RunRequest(experiment="train"))
    (demo / "data" / "points.csv").unlink()
    with pytest.raises(ValidationError, match=r"data/points\.csv"):
        resolve_plan(make_workspace(demo), RunRequest(experiment="train"))


def test_corrupt_cache_entries_are_ignored(demo: Path, make_workspace: MakeWs) -> None:
    first = resolve_plan(make_workspace(demo), RunRequest(experiment="train"))
    for entry in (demo / ".keel" / "cache").rglob("*.json"):
        entry.write_text("{not json")
    assert resolve_plan(make_workspace(demo), RunRequest(experiment="train")) == first


def test_invalid_keel_yaml_is_reported_even_after_a_valid_one_was_cached(
    demo: Path, make_workspace: MakeWs
) -> None:
    make_workspace(demo)
    spec = demo / "keel.yaml"
    spec.write_text(
        spec.read_text().replace("    command: python train.py", "    comand: python train.py")
    )
    with pytest.raises(ValidationError, match="did you mean 'command'"):
        make_workspace(demo)


def test_plans_with_dataset_inputs_are_cached_with_their_dataset(
    demo: Path, make_workspace: MakeWs
) -> None:
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("\nprofiles:", "\n  use:\n    command: python -c "
                    "pass\n    params: []\n    inputs: [{dataset: people@0123456789ab}]\n"
                    "\nprofiles:"))  # fmt: skip
    first = resolve_plan(make_workspace(demo), RunRequest(experiment="use"))
    ws = make_workspace(demo)
    again = resolve_plan(ws, RunRequest(experiment="use"))
    assert again == first and again.inputs[0].dataset == "people@0123456789ab"
    assert not (demo / again.inputs[0].path).exists()  # put in place by the run, not needed here
    assert ws._project is None  # served from the cache
