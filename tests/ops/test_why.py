"""`keel why` names the difference that moved the metric, measured by real re-runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.compare.attribution import Factor
from keel.errors import UserError
from keel.ops.run import RunRequest, run_experiment
from keel.ops.why import explain
from keel.ops.workspace import Workspace
from tests.projects import git, make_git_project

MakeWs = Callable[..., Workspace]

KEEL_YAML = """\
project: whydemo
params:
  scale: {type: float, default: 1.0, min: 0, max: 100}
experiments:
  fit:
    command: python fit.py --scale {scale} --seed {seed}
    params: [scale]
    seed: 1
    inputs: [data.csv]
    outputs: [out/m.json]
    metrics_file: out/m.json
    metrics:
      score: {goal: max, tolerance: 0.0}
    env: [OMP_NUM_THREADS]
"""

FIT_PY = """\
import argparse, json, os
OFFSET = 0.0
ap = argparse.ArgumentParser()
ap.add_argument("--scale", type=float); ap.add_argument("--seed", type=int)
a = ap.parse_args()
rows = len(open("data.csv").read().splitlines()) - 1
threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
score = a.scale * rows + a.seed * 0.5 + OFFSET + threads * 100
os.makedirs("out", exist_ok=True)
json.dump({"score": score}, open("out/m.json", "w"))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {
        "keel.yaml": KEEL_YAML,
        "fit.py": FIT_PY,
        "data.csv": "x\n1\n2\n",
        ".gitignore": ".keel/\nout/\ndata.csv\n",
    }  # data lives outside git
    return make_git_project(tmp_path / "whydemo", files)


def _run(make_workspace: MakeWs, root: Path, **kw: object) -> str:
    env = kw.pop("env", {})
    assert isinstance(env, dict)
    ws = make_workspace(root, **env)
    return run_experiment(ws, RunRequest(experiment="fit", **kw)).run_id  # type: ignore[arg-type]


def test_changed_parameter_is_named(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project)
    b = _run(make_workspace, project, overrides={"scale": "3"})
    report = explain(make_workspace(project), a, b)
    assert report.attribution.causes == (Factor.PARAMS,)
    assert report.attribution.base == report.attribution.a


def test_new_rows_in_the_input_are_named(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project)
    (project / "data.csv").write_text("x\n1\n2\n3\n4\n")
    b = _run(make_workspace, project)
    report = explain(make_workspace(project), a, b)
    assert report.attribution.causes == (Factor.INPUTS,)
    assert report.differing == (Factor.INPUTS,)


def test_code_commit_is_named_and_the_working_tree_is_untouched(
    project: Path, make_workspace: MakeWs
) -> None:
    a = _run(make_workspace, project)
    (project / "fit.py").write_text(FIT_PY.replace("OFFSET = 0.0", "OFFSET = 10.0"))
    git(project, "commit", "-qam", "offset")
    b = _run(make_workspace, project)
    before = (project / "fit.py").read_bytes(), git(project, "rev-parse", "HEAD")
    report = explain(make_workspace(project), a, b)
    assert report.attribution.causes == (Factor.CODE,)
    assert ((project / "fit.py").read_bytes(), git(project, "rev-parse", "HEAD")) == before


def test_seed_is_named(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project)
    b = _run(make_workspace, project, seed=9)
    assert explain(make_workspace(project), a, b).attribution.causes == (Factor.SEED,)


def test_thread_count_variable_is_named(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project, env={"OMP_NUM_THREADS": "1"})
    b = _run(make_workspace, project, env={"OMP_NUM_THREADS": "2"})
    report = explain(make_workspace(project, OMP_NUM_THREADS="1"), a, b)
    assert report.attribution.causes == (Factor.ENV_VARS,)


def test_run_budget_is_respected_and_the_rest_reported(
    project: Path, make_workspace: MakeWs
) -> None:
    a = _run(make_workspace, project)
    (project / "data.csv").write_text("x\n1\n2\n3\n")
    b = _run(make_workspace, project, overrides={"scale": "2"}, seed=4)
    report = explain(make_workspace(project), a, b, max_runs=2)
    at = report.attribution
    assert [e.factor for e in at.effects] == [Factor.PARAMS]
    assert at.untried == (Factor.SEED, Factor.INPUTS)
    assert at.causes == ()  # params alone cover 2 of the 5.5 points
    assert report.to_json()["verdict"].endswith("not tried: seed, inputs")


def test_identical_runs_have_nothing_to_explain(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project)
    b = _run(make_workspace, project)
    report = explain(make_workspace(project), a, b)
    assert report.differing == ()
    assert "nothing to explain" in report.attribution.verdict()


def test_unknown_metric_is_a_clear_error(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project)
    with pytest.raises(UserError, match="did you mean 'score'"):
        explain(make_workspace(project), a, a, metric="scor")


def test_why_json_from_the_command_line(project: Path, make_workspace: MakeWs) -> None:
    a = _run(make_workspace, project)
    b = _run(make_workspace, project, overrides={"scale": "5"})
    keel = shutil.which("keel", path=str(Path(sys.executable).parent))
    assert keel
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    done = subprocess.run(
        [keel, "-C", str(project), "why", a, b, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    assert data["causes"] == ["params"] and data["metric"] == "score"
    assert data["effects"][0]["share"] == pytest.approx(1.0)
