"""Baselines (audited, with history), `@baseline` references, and the gate on real runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.base.clock import parse_iso
from keel.base.digest import Digest
from keel.compare.gate import Verdict
from keel.errors import RunRefError, UserError
from keel.ops.baseline import (
    baseline_experiments,
    baseline_history,
    current_baseline,
    gate_run,
    set_baseline,
)
from keel.ops.listing import show_run
from keel.ops.refs import resolve_ref
from keel.ops.run import RunOutcome, RunRequest, run_experiment
from keel.ops.workspace import Workspace

MakeWs = Callable[..., Workspace]


def _run(ws: Workspace, lr: str = "0.2", **overrides: str) -> RunOutcome:
    return run_experiment(ws, RunRequest(experiment="train", overrides={"lr": lr, **overrides}))


def test_set_records_who_when_why_and_keeps_the_history(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo, LOGNAME="alice")
    first, second = _run(ws, "0.2"), _run(ws, "0.4")
    a = set_baseline(ws, first.run_id, why="  first good model ")
    b = set_baseline(ws, "train@latest", why="better score")
    assert (a.run, a.why, a.who, a.previous) == (first.run_id, "first good model", "alice", None)
    assert a.manifest == str(first.digest) and parse_iso(a.when)
    assert (b.run, b.previous) == (second.run_id, a.digest)
    history = baseline_history(ws, "train")
    assert [r.run for r in history] == [second.run_id, first.run_id]
    assert history == [b, a]
    assert ws.objects.get_ref("baselines/train") == Digest.parse(b.digest)
    stored = ws.objects.get_bytes(Digest.parse(a.digest))
    assert stored == canonical_json({k: v for k, v in a.to_json().items() if k != "digest"})
    assert current_baseline(ws, "train") == b and baseline_experiments(ws) == ["train"]


def test_only_a_succeeded_run_can_become_a_baseline(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    failed = _run(ws, fail="true")
    with pytest.raises(UserError, match=r"failed: only a succeeded run can become a baseline"):
        set_baseline(ws, failed.run_id, why="oops")
    assert current_baseline(ws, "train") is None


@pytest.mark.parametrize("why", ["", "   "], ids=["empty", "blank"])
def test_an_empty_why_is_refused(demo: Path, make_workspace: MakeWs, why: str) -> None:
    ws = make_workspace(demo)
    run = _run(ws)
    with pytest.raises(UserError, match="--why is empty"):
        set_baseline(ws, run.run_id, why=why)


def test_the_current_baseline_cannot_be_set_again(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    run = _run(ws)
    set_baseline(ws, run.run_id, why="one")
    with pytest.raises(UserError, match="already is the baseline of train"):
        set_baseline(ws, run.run_id, why="again")


def test_baseline_references_resolve_everywhere(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    base = _run(ws, "0.2")
    _run(ws, "0.3")
    with pytest.raises(RunRefError, match="none is set"):
        resolve_ref(ws, "@baseline")
    set_baseline(ws, base.run_id, why="reference")
    assert resolve_ref(ws, "train@baseline").id == base.run_id
    assert resolve_ref(ws, "@baseline").id == base.run_id
    assert show_run(ws, "train@baseline").summary.id == base.run_id
    fn = run_experiment(ws, RunRequest(experiment="fn"))
    set_baseline(ws, fn.run_id, why="fn too")
    with pytest.raises(RunRefError, match="baselines are set for fn, train"):
        resolve_ref(ws, "@baseline")
    assert resolve_ref(ws, "@baseline", baseline_of="train").id == base.run_id
    with pytest.raises(RunRefError, match="'hashy' has no baseline: set one with"):
        resolve_ref(ws, "hashy@baseline")
    with pytest.raises(UserError, match="did you mean 'train'"):
        baseline_history(ws, "trian")


def test_gate_passes_within_tolerance_and_fails_a_regression(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    set_baseline(ws, _run(ws, "0.2").run_id, why="score 1.0")
    same = gate_run(ws, _run(ws, "0.2").run_id)
    assert same.result.passed and same.result.exit_code == 0
    score = {r.metric: r for r in same.result.rows}["score"]
    assert (score.baseline, score.run, score.verdict) == (1.0, 1.0, Verdict.WITHIN)
    better = gate_run(ws, _run(ws, "0.3").run_id)
    assert {r.metric: r.verdict for r in better.result.rows}["score"] is Verdict.IMPROVED
    worse = gate_run(ws, _run(ws, "0.19").run_id)  # tolerance 0.0 in the demo
    assert not worse.result.passed and worse.result.exit_code == 1
    assert [r.metric for r in worse.result.failures] == ["score"]
    assert worse.to_json()["against"] == worse.reference.id


def test_a_slow_decay_is_caught_against_the_baseline(demo: Path, make_workspace: MakeWs) -> None:
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("tolerance: 0.0", "tolerance: 0.05"))
    ws = make_workspace(demo)
    base = _run(ws, "0.2")  # score = lr * 5 epochs = 1.0
    set_baseline(ws, base.run_id, why="score 1.0")
    previous = base.run_id
    against_previous, against_baseline = [], []
    for lr in ("0.194", "0.188", "0.182"):  # scores 0.97, 0.94, 0.91: 0.03 worse each time
        run = _run(ws, lr).run_id
        against_previous.append(gate_run(ws, run, against=previous).result.passed)
        against_baseline.append(gate_run(ws, run).result.passed)
        previous = run
    assert against_previous == [True, True, True]
    assert against_baseline == [True, False, False]


def test_a_metric_missing_from_the_run_fails_the_gate(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    set_baseline(ws, _run(ws).run_id, why="has a score")
    train = demo / "train.py"
    train.write_text(train.read_text().replace('metrics = {"score"', 'metrics = {"other"'))
    outcome = gate_run(ws, _run(ws).run_id)
    missing = {r.metric: r for r in outcome.result.rows}["score"]
    assert missing.verdict is Verdict.MISSING and missing.run is None
    assert not outcome.result.passed


def test_gate_without_a_baseline_says_how_to_set_one(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    run = _run(ws)
    with pytest.raises(RunRefError, match=r"'train' has no baseline: set one with `keel baseline"):
        gate_run(ws, run.run_id)
