"""The `keel` command as a user runs it: real processes, real exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.projects import make_demo_project

KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"
COMMANDS = ["init", "run", "ls", "show", "params", "verify", "reindex", "migrate"]


def keel(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    full_env.update(env or {})
    return subprocess.run(
        [KEEL, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return make_demo_project(tmp_path / "demo")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS)
def test_every_command_has_help_with_an_example_or_summary(command: str) -> None:
    result = keel(command, "--help", check=True)
    assert "Usage: keel " + command in result.stdout
    assert len(result.stdout.splitlines()) > 4


def test_top_level_help_lists_every_command() -> None:
    out = keel("--help", check=True).stdout
    for command in COMMANDS:
        assert command in out


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_typo_in_param_name_is_one_line_naming_the_closest(demo: Path) -> None:
    err = _one_line_error(keel("-C", str(demo), "run", "train", "-p", "lrr=0.1"))
    assert "did you mean 'lr'" in err
    assert len(err.strip().splitlines()) == 1


def test_typo_in_keel_yaml_names_file_line_and_key(demo: Path) -> None:
    spec = demo / "keel.yaml"
    spec.write_text(
        spec.read_text().replace("    command: python train.py", "    comand: python train.py")
    )
    err = _one_line_error(keel("-C", str(demo), "run", "train"))
    assert "keel.yaml:" in err and "comand" in err and "did you mean 'command'" in err


def test_outside_a_project_says_to_run_init(tmp_path: Path) -> None:
    err = _one_line_error(keel("ls", cwd=tmp_path))
    assert "keel init" in err


def test_unknown_run_reference_is_a_clean_error(demo: Path) -> None:
    err = _one_line_error(keel("-C", str(demo), "show", "zzzz"))
    assert "no run matches 'zzzz'" in err


def test_run_exit_code_follows_the_command(demo: Path) -> None:
    ok = keel("-C", str(demo), "run", "train")
    assert ok.returncode == 0, ok.stderr
    assert "succeeded" in ok.stderr and "keel show" in ok.stderr
    failed = keel("-C", str(demo), "run", "train", "-p", "fail=true")
    assert failed.returncode == 3
    listing = json.loads(keel("-C", str(demo), "ls", "--json", check=True).stdout)
    assert [r["status"] for r in listing] == ["failed", "succeeded"]


def test_init_then_run_the_scaffolded_example(tmp_path: Path) -> None:
    keel("init", str(tmp_path / "study"), check=True)
    run = keel("-C", str(tmp_path / "study"), "run", "estimate", "-p", "samples=2000")
    assert run.returncode == 0, run.stderr
    shown = json.loads(keel("-C", str(tmp_path / "study"), "show", "--json", check=True).stdout)
    assert shown["manifest"]["metrics"]["abs_error"]["goal"] == "min"
    assert keel("init", str(tmp_path / "study")).returncode != 0


def test_params_lists_the_catalog_with_effective_defaults(demo: Path) -> None:
    rows = json.loads(keel("-C", str(demo), "params", "train", "--json", check=True).stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["epochs"]["default"] == 5
    assert "Learning rate" in keel("-C", str(demo), "params", check=True).stdout


def _wait_for_running(demo: Path) -> None:
    for _ in range(200):
        if list((demo / ".keel" / "refs" / "active").glob("*")):
            return
        time.sleep(0.05)
    pytest.fail("the run never started")


def test_sigterm_stops_the_command_and_records_killed_with_logs(demo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    proc = subprocess.Popen(
        [KEEL, "-C", str(demo), "run", "train", "-p", "sleep=60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for_running(demo)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    shown = json.loads(keel("-C", str(demo), "show", "--json", check=True).stdout)
    assert shown["manifest"]["run"]["status"] == "killed"
    assert shown["manifest"]["logs"]["stdout"]["size"] > 0


def test_keel_killed_with_sigkill_leaves_a_lost_run(demo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    proc = subprocess.Popen(
        [KEEL, "-C", str(demo), "run", "train", "-p", "sleep=60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_running(demo)
    proc.kill()
    proc.wait()
    listing = json.loads(keel("-C", str(demo), "ls", "--json", check=True).stdout)
    assert [r["status"] for r in listing] == ["lost"]
    shown = json.loads(keel("-C", str(demo), "show", "--json", check=True).stdout)
    assert "keel process ended without recording the run's end" in shown["manifest"]["flags"]


def test_verify_reports_a_corrupted_object_and_reads_refuse_it(demo: Path) -> None:
    keel("-C", str(demo), "run", "train", check=True)
    assert keel("-C", str(demo), "verify").returncode == 0
    ref = next((demo / ".keel" / "refs" / "runs").iterdir()).read_text().strip()
    hexd = ref.split(":", 1)[1]
    obj = demo / ".keel" / "objects" / "blake3" / hexd[:2] / hexd[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes().replace(b"succeeded", b"SUCCEEDED"))
    result = keel("-C", str(demo), "verify")
    assert result.returncode == 1 and f"CORRUPT {ref}" in result.stdout
    err = _one_line_error(keel("-C", str(demo), "show", "@latest"))
    assert "keel verify" in err


def _store_snapshot(demo: Path) -> dict[str, bytes]:
    store = demo / ".keel"
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and "cache" not in p.relative_to(store).parts
    }


def test_bad_inputs_change_nothing_already_stored(demo: Path) -> None:
    keel("-C", str(demo), "run", "train", check=True)
    keel("-C", str(demo), "ls", check=True)
    before = _store_snapshot(demo)
    bad_runs = [
        ("run", "train", "-p", "lr=99"),
        ("run", "train", "-p", "mode=medium"),
        ("run", "train", "-p", "nope=1"),
        ("run", "trian"),
        ("run", "train", "--profile", "prdo"),
        ("run", "train", "-p", "lr"),
    ]
    for args in bad_runs:
        err = _one_line_error(keel("-C", str(demo), *args))
        assert err.startswith("error:") or "Error:" in err, err
    (demo / "notes.txt").write_text("dirty\n")
    _one_line_error(keel("-C", str(demo), "--profile", "prod", "run", "train"))
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("max: 10", "max: ten"))
    _one_line_error(keel("-C", str(demo), "run", "train"))
    assert _store_snapshot(demo) == before


def test_show_json_has_every_provenance_section(demo: Path) -> None:
    keel("-C", str(demo), "run", "train", check=True)
    shown = json.loads(keel("-C", str(demo), "show", "--json", check=True).stdout)
    m = shown["manifest"]
    assert shown["digest"].startswith("blake3:") and m["schema_version"] == 1
    for section in (
        "run",
        "config",
        "seeds",
        "code",
        "inputs",
        "environment",
        "hardware",
        "outputs",
        "artifacts",
        "metrics",
        "logs",
        "flags",
        "not_captured",
    ):
        assert section in m, section
    for key in (
        "started_at",
        "ended_at",
        "duration_s",
        "exit_code",
        "host",
        "user",
        "keel_version",
        "executor",
    ):
        assert m["run"][key] is not None, key
    for key in ("python", "packages", "lock_files", "env_vars", "blas", "container"):
        assert key in m["environment"], key
    for key in ("cpu_model", "cpu_logical", "memory_bytes", "gpus"):
        assert key in m["hardware"], key
