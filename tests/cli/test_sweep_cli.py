"""`keel sweep` as a user runs it: real processes, exit codes, one-line errors, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import KEEL, keel
from tests.ops.test_sweep import make_sweep_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_sweep_project(tmp_path / "proj")


def _refs(project: Path, folder: str) -> list[Path]:
    base = project / ".keel" / "refs" / folder
    return [p for p in base.rglob("*") if p.is_file()] if base.is_dir() else []


def test_sweep_json_prints_the_sweep_and_its_trials(project: Path) -> None:
    result = keel("sweep", "train", "-p", "lr=0.5,1", "--seeds", "2", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"sweep", "experiment", "interrupted", "statuses", "trials"}
    assert data["statuses"] == {"succeeded": 4} and data["interrupted"] is False
    assert [t["index"] for t in data["trials"]] == [0, 1, 2, 3]
    first = data["trials"][0]
    assert set(first) == {"index", "key", "config", "replicate", "fold", "seed", "params", "run",
                          "status"}  # fmt: skip
    assert first["status"] == "succeeded" and first["params"] == {"lr": 0.5}
    assert "4 of 4 trials to run" in result.stderr
    shown = keel("show", first["run"], cwd=project, check=True).stdout
    assert f"{data['sweep']} trial 0 (config 0, replicate 0)" in shown
    table = json.loads(keel("sweep", "show", data["sweep"], "--json", cwd=project,
                            check=True).stdout)  # fmt: skip
    assert [r["params"] for r in table["rows"]] == [{"lr": 0.5}, {"lr": 1.0}]
    listed = json.loads(keel("sweep", "ls", "--json", cwd=project, check=True).stdout)
    assert [s["id"] for s in listed] == [data["sweep"]]
    again = keel("sweep", "--resume", data["sweep"], cwd=project)
    assert again.returncode == 0 and "nothing to run" in again.stderr


def test_a_failing_trial_makes_the_sweep_exit_1_and_says_how_to_rerun(project: Path) -> None:
    result = keel("sweep", "train", "-p", "fail=false,true", cwd=project)
    assert result.returncode == 1
    assert "1 failed; re-run them with: keel sweep --resume" in result.stderr
    assert "config" in result.stdout and "1/1" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["train", "-p", "nope=1,2"], 5, "nope"),
        (["no-such", "-p", "lr=1,2"], 4, "no-such"),
        (["train", "-p", "lr=1,2", "--executor", "pool", "--scheduler", "tcp://127.0.0.1:1"], 2,
         "--scheduler is only for --executor dask"),
        (["--resume", "abc", "-p", "lr=1"], 2, "drop -p"),
        ([], 2, "name the EXPERIMENT"),
        (["show", "zzz"], 6, "no sweep matches 'zzz'"),
    ],
    ids=["unknown-param", "unknown-experiment", "scheduler-without-dask", "resume-with-axes",
         "nothing-named", "show-unknown"],
)  # fmt: skip
def test_bad_input_is_a_clear_error_and_records_nothing(
    project: Path, args: list[str], code: int, message: str
) -> None:
    result = keel("sweep", *args, cwd=project)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _refs(project, "sweeps") == []


def test_help_shows_how_to_sweep_resume_show_and_list() -> None:
    out = keel("sweep", "--help", check=True).stdout
    assert "Usage: keel sweep [OPTIONS] EXPERIMENT" in out
    for word in ("--resume", "--strategy", "--executor", "--folds", "keel sweep show"):
        assert word in out
    for sub in ("show", "ls"):
        out = keel("sweep", sub, "--help", check=True).stdout
        assert f"Usage: keel sweep {sub}" in out
        assert f"keel sweep {sub}" in out.split("Examples:")[1]


def test_ctrl_c_stops_the_sweep_cleanly_and_resume_finishes_it(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    proc = subprocess.Popen(
        [KEEL, "sweep", "train", "-p", "sleep=0,60", "-p", "lr=0.5,1,2", "--executor", "pool",
         "--jobs", "2"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # a guard against hanging, not a speed check
        # three quick trials sealed, two sleeping ones running: the sixth waits for a worker
        while len(_refs(project, "active")) < 2 or len(_refs(project, "sweep-trials")) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sleeping trials never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    sweep_id = err.split("keel sweep --resume ")[-1].split()[0]
    assert "interrupted: 3 of 6 trials not succeeded" in err
    table = json.loads(keel("sweep", "show", sweep_id, "--json", cwd=project, check=True).stdout)
    # the two running trials were sealed killed, the pending one never started
    assert table["statuses"] == {"killed": 2, "missing": 1, "succeeded": 3}
    assert _refs(project, "active") == []  # nothing left running or unsealed
    resumed = keel("sweep", "--resume", sweep_id, "--json", cwd=project,
                   env={"SWEEP_TEST_NO_SLEEP": "1"})  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "3 of 6 trials to run" in resumed.stderr
    assert json.loads(resumed.stdout)["statuses"] == {"succeeded": 6}


def test_a_trial_whose_keel_died_reads_as_lost_and_resume_reruns_it(
    project: Path, tmp_path: Path
) -> None:
    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_SANDBOX_DIR"] = str(tmp_path)  # what the killed sweep leaves stays here
    proc = subprocess.Popen(
        [KEEL, "sweep", "train", "-p", "sleep=60", "-p", "lr=0.5,1"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120  # a guard against hanging, not a speed check
    while not _refs(project, "active"):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)  # keel dies without sealing anything
    for child in family:
        child.kill()
    proc.wait()
    out = keel("sweep", "show", "--json", cwd=project, check=True).stdout
    assert json.loads(out)["statuses"] == {"lost": 1, "missing": 1}
    resumed = keel("sweep", "--resume", "@latest", "--json", cwd=project,
                   env={"SWEEP_TEST_NO_SLEEP": "1"})  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "2 of 2 trials to run" in resumed.stderr
    assert _refs(project, "active") == []
    listed = json.loads(keel("ls", "--json", "--status", "lost", cwd=project, check=True).stdout)
    assert len(listed) == 1
