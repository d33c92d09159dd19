"""`keel status` and `keel repro` as a user runs them: output, JSON shapes, exit codes, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.projects import make_git_project

KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"
KEEL_YAML = """\
project: clipipe
params:
  c: {type: float, default: 1.0}
experiments:
  prepare:
    command: python prepare.py
    params: []
    inputs: [data/raw.csv]
    outputs: [out/clean.csv]
  train:
    command: python train.py {c}
    params: [c]
    inputs: [out/clean.csv]
    outputs: [out/model.txt]
"""
FILES = {
    "keel.yaml": KEEL_YAML,
    ".gitignore": ".keel/\nout/\n",
    "data/raw.csv": "x\n1\n",
    "prepare.py": "import os\nos.makedirs('out', exist_ok=True)\n"
    "open('out/clean.csv', 'w').write(open('data/raw.csv').read())\n",
    "train.py": "import sys\nopen('out/model.txt', 'w').write(sys.argv[1])\n",
}


def keel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return subprocess.run(
        [KEEL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_git_project(tmp_path / "clipipe", FILES)


def test_status_and_repro_say_what_runs_and_exit_by_whether_anything_would(
    project: Path,
) -> None:
    before = keel("status", cwd=project)
    assert before.returncode == 1, before.stderr
    assert before.stdout.splitlines() == [
        "prepare: will run — never run",
        "train: will run — upstream prepare will run; never run",
        "2 stages: 2 will run",
    ]
    ran = keel("repro", cwd=project)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("prepare: ran (run ") and lines[0].endswith(") — never run")
    assert lines[-1] == "2 stages: 2 ran"
    assert "train: running — never run" in ran.stderr
    after = keel("status", cwd=project)
    assert (after.returncode, after.stdout.splitlines()) == (
        0,
        ["prepare: up to date", "train: up to date", "2 stages, all up to date"],
    )
    again = keel("repro", cwd=project)
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "2 stages, all up to date"
    dry = keel("repro", "--dry-run", "--force", "train", cwd=project)
    assert dry.returncode == 1
    assert "train: will run — forced (--force)" in dry.stdout


def test_json_documents_have_a_stable_shape(project: Path) -> None:
    status = json.loads(keel("status", "--json", cwd=project).stdout)
    assert set(status) == {"up_to_date", "counts", "stages"}
    assert status["counts"] == {"up-to-date": 0, "restore": 0, "run": 2}
    assert set(status["stages"][0]) == {
        "name", "action", "reasons", "run", "key", "restore", "upstream",
    }  # fmt: skip
    assert status["stages"][1]["upstream"] == ["prepare"]
    ran = keel("repro", "--json", cwd=project)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert set(doc) == {"ok", "counts", "stages"}
    assert doc["ok"] is True
    assert doc["counts"]["ran"] == 2
    assert set(doc["stages"][0]) == {
        "name", "outcome", "reasons", "run", "restored", "error", "flags",
    }  # fmt: skip
    up = json.loads(keel("status", "--json", cwd=project).stdout)
    assert up["up_to_date"] is True
    assert [s["run"] for s in up["stages"]] == [s["run"] for s in doc["stages"]]


def test_a_failed_stage_fails_the_command_and_skips_its_downstream(tmp_path: Path) -> None:
    files = {**FILES, "prepare.py": "import sys\nsys.exit('no data today')\n"}
    root = make_git_project(tmp_path / "failing", files)
    result = keel("repro", cwd=root)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("prepare: failed (run ")
    assert "  error: run " in lines[1] and lines[1].endswith("with exit code 1: no data today")
    assert "train: skipped: upstream prepare failed" in lines
    assert lines[-1] == "2 stages: 1 failed, 1 skipped"


def test_an_unknown_target_is_a_one_line_error_naming_the_closest_stage(project: Path) -> None:
    result = keel("status", "trian", cwd=project)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown stage 'trian'; did you mean 'train'?"


def test_a_pipeline_cycle_is_a_one_line_error_and_nothing_runs(tmp_path: Path) -> None:
    yaml = (
        "project: cyc\nexperiments:\n"
        "  a:\n    command: python a.py\n    inputs: [y]\n    outputs: [x]\n"
        "  b:\n    command: python b.py\n    inputs: [x]\n    outputs: [y]\n"
    )
    root = make_git_project(tmp_path / "cyc", {"keel.yaml": yaml, ".gitignore": ".keel/\n"})
    result = keel("repro", cwd=root)
    assert result.returncode == 4
    assert result.stderr.strip() == (
        "error: keel.yaml: pipeline cycle: a → b → a; a stage cannot read what it or a stage "
        "downstream of it writes"
    )
    assert not (root / ".keel" / "refs" / "runs").exists()


@pytest.mark.parametrize("command", ["status", "repro"])
def test_help_explains_the_exit_status_with_examples(command: str, project: Path) -> None:
    result = keel(command, "--help", cwd=project)
    assert result.returncode == 0
    assert "Exit status" in result.stdout and "Examples:" in result.stdout
