"""`keel lock`, `check`, `baseline` and `gate` as a user runs them: exit codes, errors, JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.projects import git, make_demo_project

KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"
COMMANDS = [["lock"], ["check"], ["baseline"], ["baseline", "set"], ["baseline", "show"], ["gate"]]


def keel(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    full_env.update(env)
    return subprocess.run(
        [KEEL, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return make_demo_project(tmp_path / "demo")


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_new_command_has_help_with_examples(command: list[str]) -> None:
    result = keel(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: keel " + " ".join(command) in result.stdout
    assert "Examples:" in result.stdout


def _error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_check_exit_codes_follow_the_drift(demo: Path) -> None:
    assert "run `keel lock` first" in _error_line(keel("-C", str(demo), "check"), 2)
    locked = keel("-C", str(demo), "lock")
    assert locked.returncode == 0 and "locked train, fn, hashy (profile dev)" in locked.stdout
    clean = keel("-C", str(demo), "check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift (3 experiment(s) checked)" in clean.stdout
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("defaults: {epochs: 5}", "defaults: {epochs: 6}"))
    drifted = keel("-C", str(demo), "check")
    assert drifted.returncode == 1
    assert "param epochs: 5 → 6 (experiment default)" in drifted.stdout
    report = json.loads(keel("-C", str(demo), "check", "train", "--json").stdout)
    assert report["drifted"] is True and report["exit_code"] == 1
    assert set(report) == {
        "against", "drifted", "exit_code", "experiments", "references", "counts", "drift", "notes",
    }  # fmt: skip
    kinds = [(d["kind"], d["subject"], d["blocking"]) for d in report["drift"]]
    assert ("config", "param epochs", True) in kinds and ("code", "worktree", False) in kinds


def test_check_errors_are_one_line_with_exit_2(demo: Path) -> None:
    keel("-C", str(demo), "lock")
    assert "did you mean 'train'" in _error_line(keel("-C", str(demo), "check", "trian"), 2)
    lock = demo / "keel.lock"
    lock.write_text(lock.read_text().replace("seed = 42", "seed = 42 42"))
    line = _error_line(keel("-C", str(demo), "check"), 2)
    assert line.startswith("error: keel.lock: line ") and "re-create it with `keel lock`" in line
    assert keel("-C", str(demo), "lock").returncode == 0
    assert keel("-C", str(demo), "check").returncode == 0


def test_keel_python_selects_the_interpreter_whose_environment_is_checked(demo: Path) -> None:
    keel("-C", str(demo), "lock")
    line = _error_line(keel("-C", str(demo), "check", KEEL_PYTHON="/nope/python"), 2)
    assert "cannot read the environment of /nope/python" in line


def test_baseline_set_show_and_gate(demo: Path) -> None:
    assert keel("-C", str(demo), "run", "train", "-p", "lr=0.2").returncode == 0
    assert "has no baseline" in _error_line(keel("-C", str(demo), "gate", "train@latest"), 2)
    assert "--why" in keel("-C", str(demo), "baseline", "set", "@latest").stderr
    assert "--why is empty" in _error_line(
        keel("-C", str(demo), "baseline", "set", "@latest", "--why", ""), 2
    )
    made = keel("-C", str(demo), "baseline", "set", "@latest", "--why", "first", LOGNAME="bob")
    assert made.returncode == 0 and "set by bob" in made.stdout
    shown = json.loads(keel("-C", str(demo), "baseline", "show", "train", "--json").stdout)
    assert shown["experiment"] == "train" and shown["history"][0]["why"] == "first"
    assert set(shown["history"][0]) == {
        "kind", "experiment", "run", "manifest", "who", "when", "why", "previous", "digest",
    }  # fmt: skip
    assert "train@baseline" not in keel("-C", str(demo), "show", "train@baseline").stderr
    passed = keel("-C", str(demo), "gate", "train@latest")
    assert passed.returncode == 0 and "PASS" in passed.stdout
    keel("-C", str(demo), "run", "train", "-p", "lr=0.1")
    failed = keel("-C", str(demo), "gate", "train@latest", "--json")
    assert failed.returncode == 1
    verdict = json.loads(failed.stdout)
    assert verdict["passed"] is False and verdict["exit_code"] == 1
    row = next(r for r in verdict["rows"] if r["metric"] == "score")
    assert (row["baseline"], row["run"], row["verdict"]) == (1.0, 0.5, "regression")
    table = keel("-C", str(demo), "gate", "train@latest").stdout
    assert "regression" in table and "FAIL: score (regression)" in table


def test_strict_run_refuses_drift_and_allow_drift_needs_a_reason(demo: Path) -> None:
    keel("-C", str(demo), "--profile", "prod", "lock", "train")
    git(demo, "add", "-A")
    git(demo, "commit", "-qm", "lock")
    refused = keel("-C", str(demo), "run", "train", "--profile", "prod", "-p", "lr=0.3")
    assert "drifted from keel.lock: param lr" in _error_line(refused, 7)
    empty = keel("-C", str(demo), "run", "train", "--profile", "prod", "--allow-drift", "")
    assert empty.returncode == 2 and "'--allow-drift': give a reason" in empty.stderr
    allowed = keel(
        "-C", str(demo), "run", "train", "--profile", "prod", "-p", "lr=0.3", "--allow-drift", "why"
    )
    assert allowed.returncode == 0, allowed.stderr
    shown = json.loads(keel("-C", str(demo), "show", "--json").stdout)
    assert shown["manifest"]["run"]["allow_drift"] == "why"
