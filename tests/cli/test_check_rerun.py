"""`keel check --rerun`: the canary that re-runs baselines in the current environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.projects import make_git_project

KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"

KEEL_YAML = """\
project: canary
experiments:
  fit:
    command: python fit.py
    outputs: [out/m.json]
    metrics_file: out/m.json
    metrics:
      score: {goal: max, tolerance: 0.0}
"""
FIT_PY = """\
import json, os
os.makedirs("out", exist_ok=True)
json.dump({"score": float(os.environ.get("DEMO_FACTOR", "1"))}, open("out/m.json", "w"))
"""


def _keel(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")} | env
    return subprocess.run([KEEL, "-C", str(root), *args], env=full, capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip


def _project(tmp_path: Path) -> Path:
    files = {"keel.yaml": KEEL_YAML, "fit.py": FIT_PY, ".gitignore": ".keel/\nout/\n"}
    return make_git_project(tmp_path / "canary", files)


def test_rerun_without_a_baseline_says_how_to_set_one(tmp_path: Path) -> None:
    done = _keel(_project(tmp_path), "check", "--rerun")
    assert done.returncode == 2 and "keel baseline set" in done.stderr
    assert "Traceback" not in done.stderr


def test_rerun_passes_while_the_baseline_holds_and_fails_when_the_environment_moved(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    assert _keel(root, "run", "fit", DEMO_FACTOR="1").returncode == 0
    assert _keel(root, "baseline", "set", "fit@latest", "--why", "first").returncode == 0
    held = _keel(root, "check", "--rerun", "--json", DEMO_FACTOR="1")
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["rerun"][0]["verdict"] == "REPRODUCED"
    moved = _keel(root, "check", "--rerun", "--json", DEMO_FACTOR="3")
    assert moved.returncode == 1
    data = json.loads(moved.stdout)
    assert data["rerun"][0]["experiment"] == "fit" and data["rerun"][0]["verdict"] == "DIVERGED"
    table = _keel(root, "check", "--rerun", DEMO_FACTOR="3")
    assert "DIVERGED" in table.stdout and table.returncode == 1
