"""A real package upgrade between runs is named by `keel diff` and, as the cause, by `keel why`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.compare.attribution import Factor
from keel.compare.change import ChangeKind
from keel.ops.diff import diff_runs
from keel.ops.run import ExecOptions, RunRequest, execute_plan, resolve_plan
from keel.ops.why import explain
from keel.ops.workspace import Workspace
from tests.projects import install_wheel, make_git_project, make_wheel

MakeWs = Callable[..., Workspace]

KEEL_YAML = """\
project: pkgdemo
experiments:
  pkg:
    command: python score.py
    outputs: [out/m.json]
    metrics_file: out/m.json
    metrics:
      score: {goal: max}
"""
SCORE_PY = """\
import json, os, keeldemo
os.makedirs("out", exist_ok=True)
json.dump({"score": float(keeldemo.__version__)}, open("out/m.json", "w"))
"""


@pytest.mark.slow
def test_package_upgrade_is_named_by_diff_and_by_why(
    tmp_path: Path, make_workspace: MakeWs
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    v1, v2 = make_wheel(wheels, "1.0"), make_wheel(wheels, "2.0")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    files = {"keel.yaml": KEEL_YAML, "score.py": SCORE_PY, ".gitignore": ".keel/\nout/\n"}
    root = make_git_project(tmp_path / "pkgdemo", files)
    ws = make_workspace(root, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    options = ExecOptions(python=str(venv / "bin" / "python"))
    plan = resolve_plan(ws, RunRequest(experiment="pkg"))
    install_wheel(v1, venv)
    a = execute_plan(ws, plan, options=options).manifest
    install_wheel(v2, venv)  # the package is upgraded between the runs
    b = execute_plan(ws, plan, options=options).manifest
    assert (a.metrics["score"].value, b.metrics["score"].value) == (1.0, 2.0)

    changes = diff_runs(ws, a.run.id, b.run.id).diff
    env = {c.key: (c.a, c.b) for c in changes.of(ChangeKind.ENVIRONMENT)}
    assert any("keeldemo" in key and value == ("1.0", "2.0") for key, value in env.items()), env
    assert not changes.of(ChangeKind.CONFIG) and not changes.of(ChangeKind.CODE)

    without = explain(ws, a.run.id, b.run.id)
    assert without.attribution.untried == (Factor.PACKAGES,)
    report = explain(ws, a.run.id, b.run.id, include_packages=True)
    assert report.attribution.causes == (Factor.PACKAGES,), report.to_json()
    assert report.attribution.base == 1.0
