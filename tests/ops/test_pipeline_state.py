"""The consolidated stage state: what it remembers, and concurrent writers."""

from __future__ import annotations

import json
from pathlib import Path

from keel.ops.pipeline_state import MAX_KEYS, STATE_FILE, StageState, run_usable
from keel.ops.stagekey import Components
from keel.ops.workspace import Workspace
from tests.projects import make_git_project


def _ws(tmp_path: Path) -> Workspace:
    root = make_git_project(tmp_path / "p", {"keel.yaml": "project: p\n"})
    return Workspace.open(root, environ={})


def _components(config: str = "c1", source: str = "d1") -> Components:
    return Components(
        config=config, params={"c": 1.0}, code={"t.py": "x"}, inputs={"in.csv": source}, env="e"
    )


def test_a_success_is_found_by_its_key_with_its_outputs(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    state = StageState.load(ws)
    comps = _components()
    state.record_success("train", components=comps, run="r1", outputs={"out/m": "m1"})
    state.flush()
    again = StageState.load(ws)
    hit = again.hit("train", comps.key)
    assert hit is not None and (hit.run, hit.outputs) == ("r1", {"out/m": "m1"})
    latest = again.latest("train")
    assert latest is not None and latest.components == comps
    assert again.hit("train", _components(config="c2").key) is None


def test_two_writers_recording_different_stages_keep_both(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    first, second = StageState.load(ws), StageState.load(ws)
    first.record_success("a", components=_components(), run="ra", outputs={})
    second.record_success("b", components=_components(), run="rb", outputs={})
    first.flush()
    second.flush()
    merged = StageState.load(ws)
    assert merged.latest_key("a") is not None and merged.latest_key("b") is not None


def test_only_the_latest_keys_are_kept_and_a_success_clears_a_failure(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    state = StageState.load(ws)
    keys = []
    for n in range(MAX_KEYS + 2):
        comps = _components(source=f"d{n}")
        keys.append(comps.key)
        state.record_failure("s", key=comps.key, run=f"f{n}")
        state.record_success("s", components=comps, run=f"r{n}", outputs={})
    state.record_failure("s", key="k", run="bad")
    state.flush()
    data = json.loads((ws.store_root / STATE_FILE).read_text())
    assert list(data["stages"]["s"]["keys"]) == keys[-MAX_KEYS:]
    assert StageState.load(ws).failed("s") == ("k", "bad")


def test_a_run_counts_only_if_its_inputs_are_what_the_key_says() -> None:
    comps = _components(source="d1")
    same = {"inputs": [{"path": "./in.csv", "digest": "d1"}]}
    other = {"inputs": [{"path": "in.csv", "digest": "d2"}]}
    moved = {"inputs": [{"path": "in.csv", "digest": "d1", "changed_during_run": True}]}
    assert run_usable(same, comps)
    assert not run_usable(other, comps)
    assert not run_usable(moved, comps)
