"""Optuna as a sweep strategy: deterministic proposals, its study in keel's own SQLite index,
resume continuing the study, and keel's index commands unharmed by optuna's tables."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest

from keel.base.canonical import JsonValue
from keel.ops.listing import list_runs
from keel.ops.sweep import PoolOptions, SweepOutcome, SweepRequest, resume_sweep, start_sweep
from keel.ops.sweep_freeze import load_sweep
from keel.ops.sweep_table import asked_configs
from keel.ops.workspace import Workspace
from keel.resolve.sweep import child_seed
from tests.cli.test_cli import keel
from tests.ops.test_sweep import make_sweep_project, open_ws

optuna = pytest.importorskip("optuna")

AXES = ("lr=uniform(0.1,2)", "n=randint(1,5)")


def _optuna(ws: Workspace, *, trials: int = 4, seeds: int = 1) -> SweepOutcome:
    request = SweepRequest(name="train", axes=AXES, strategy="optuna", trials=trials,
                           seeds=seeds, seed=3)  # fmt: skip
    return start_sweep(ws, request, pool_options=PoolOptions(jobs=2))


def _proposals(outcome: SweepOutcome) -> list[dict[str, JsonValue]]:
    seen: dict[int, dict[str, JsonValue]] = {}
    for t in outcome.trials:
        seen.setdefault(t.trial.config, dict(t.trial.params))
    return [seen[c] for c in sorted(seen)]


def _tables(url: str) -> set[str]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_an_optuna_sweep_is_deterministic_and_keeps_its_study_in_the_index(
    tmp_path: Path,
) -> None:
    ws = open_ws(make_sweep_project(tmp_path / "proj"))
    first = _optuna(ws)
    assert first.ok and len(first.trials) == 4
    record = first.record
    assert record.strategy["study"] == f"keel-sweep-{record.id}"
    assert record.strategy["sampler_seed"] == child_seed(3, 2**20 + 3)
    assert record.strategy["batch"] == 2
    again = _optuna(ws)
    assert _proposals(first) == _proposals(again)
    assert len({str(p) for p in _proposals(first)}) == 4
    study = optuna.load_study(study_name=str(record.strategy["study"]), storage=ws.index_url)
    told = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == 4
    for config in asked_configs(ws, record):
        trial = study.trials[config.number]
        scores = [first.states[t.trial.key].metrics["score"] for t in config.trials]
        assert trial.value == pytest.approx(sum(scores) / len(scores))
    # keel's tables and optuna's share the database without clashing
    tables = _tables(ws.index_url)
    assert {"studies", "trials", "alembic_version"} <= tables
    assert not any(t.startswith("keel_") for t in tables)  # no keel command opened it yet
    root = ws.root
    listed = json.loads(keel("ls", "--json", "-n", "100", cwd=root, check=True).stdout)
    assert len(listed) == 8
    assert {"keel_runs", "keel_alembic_version", "studies"} <= _tables(ws.index_url)
    assert "already at revision" in keel("migrate", cwd=root, check=True).stdout
    assert "indexed 8 runs" in keel("reindex", cwd=root, check=True).stdout
    listed = json.loads(keel("ls", "--json", "-e", "train", "-n", "100", cwd=root,
                             check=True).stdout)  # fmt: skip
    assert len(listed) == 8
    assert len(list_runs(open_ws(root), limit=None)) == 8
    assert len(optuna.load_study(study_name=str(record.strategy["study"]),
                                 storage=ws.index_url).trials) == 4  # fmt: skip


def test_resuming_an_interrupted_optuna_sweep_continues_its_study(tmp_path: Path) -> None:
    ws = open_ws(make_sweep_project(tmp_path / "proj"))

    def interrupt_after_first_trial(kind: str, data: Mapping[str, JsonValue]) -> None:
        if kind == "trial" and data.get("done") == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the sweep stops after this trial

    request = SweepRequest(name="train", axes=AXES, strategy="optuna", trials=4, seed=3)
    stopped = start_sweep(ws, request, pool_options=PoolOptions(jobs=2),
                          on_event=interrupt_after_first_trial)  # fmt: skip
    assert stopped.interrupted
    assert len(asked_configs(ws, stopped.record)) == 2  # one batch asked, not told
    assert stopped.statuses == {"missing": 1, "succeeded": 1}
    finished = resume_sweep(ws, stopped.record.id)
    assert finished.ok and len(finished.trials) == 4
    study = optuna.load_study(study_name=f"keel-sweep-{stopped.record.id}",
                              storage=ws.index_url)  # fmt: skip
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    uninterrupted = _optuna(ws)
    assert _proposals(finished)[:2] == _proposals(uninterrupted)[:2]
    assert resume_sweep(ws, load_sweep(ws, stopped.record.id).id).to_run == 0
