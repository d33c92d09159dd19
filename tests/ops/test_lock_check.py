"""`keel lock` and `keel check` on real git repositories: every kind of drift, named correctly."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.compare.drift import DriftKind, DriftReport
from keel.errors import StrictViolation, UserError
from keel.model.run import RunStatus
from keel.ops.baseline import set_baseline
from keel.ops.check import check_drift
from keel.ops.lock import lock_experiments
from keel.ops.run import RunRequest, run_experiment
from keel.ops.workspace import Workspace
from tests.projects import git

MakeWs = Callable[..., Workspace]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _messages(report: DriftReport, kind: DriftKind | None = None) -> list[str]:
    return [d.message for d in report.items if kind is None or d.kind is kind]


def _commit(root: Path, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def test_lock_is_deterministic_and_an_unchanged_project_has_no_drift(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    outcome = lock_experiments(ws)
    first = (demo / "keel.lock").read_bytes()
    lock_experiments(make_workspace(demo))
    assert (demo / "keel.lock").read_bytes() == first
    data = tomllib.loads(first.decode())
    assert outcome.locked == ("train", "fn", "hashy") and set(data["experiments"]) == {
        "train",
        "fn",
        "hashy",
    }
    train = data["experiments"]["train"]
    assert train["params"]["lr"] == {"value": 0.1, "source": "catalog"}
    assert train["params"]["epochs"] == {"value": 5, "source": "experiment"}
    assert train["seed"] == 42 and train["profile"] == "dev"
    assert train["inputs"]["data/points.csv"]["digest"].startswith("blake3:")
    assert train["code"] == {"commit": git(demo, "rev-parse", "HEAD").strip(), "dirty": False}
    env = data["environments"][train["environment"]]
    assert env["packages"]["pytest"] and env["python_version"] == sys.version.split()[0]
    assert "requirements.txt" in env["lock_files"]
    report = check_drift(make_workspace(demo))
    assert not report and report.items == () and report.exit_code == 0
    assert report.references == {"train": "keel.lock", "fn": "keel.lock", "hashy": "keel.lock"}


def test_edited_catalog_default_is_config_drift_naming_param_values_and_layer(
    demo: Path, make_workspace: MakeWs
) -> None:
    lock_experiments(make_workspace(demo))
    _edit(demo / "keel.yaml", "    default: 0.1\n", "    default: 0.2\n")
    report = check_drift(make_workspace(demo))
    assert report.drifted and report.exit_code == 1
    config = [(d.experiment, d.message) for d in report.items if d.kind is DriftKind.CONFIG]
    assert config == [
        ("fn", "param lr: 0.1 → 0.2 (catalog default)"),
        ("train", "param lr: 0.1 → 0.2 (catalog default)"),
    ]


def test_edited_experiment_default_is_config_drift(demo: Path, make_workspace: MakeWs) -> None:
    lock_experiments(make_workspace(demo))
    _edit(demo / "keel.yaml", "defaults: {epochs: 5}", "defaults: {epochs: 6}")
    report = check_drift(make_workspace(demo), ["train"])
    assert _messages(report, DriftKind.CONFIG) == ["param epochs: 5 → 6 (experiment default)"]


def test_changed_profile_value_names_the_profile(demo: Path, make_workspace: MakeWs) -> None:
    lock_experiments(make_workspace(demo, profile="prod"), ["train"])
    _edit(demo / "keel.yaml", "params: {epochs: 9}", "params: {epochs: 10}")
    report = check_drift(make_workspace(demo), ["train"])  # the lock's profile, not dev
    assert _messages(report, DriftKind.CONFIG) == ["param epochs: 9 → 10 (profile 'prod')"]


def test_changed_input_row_is_data_drift_naming_the_input(
    demo: Path, make_workspace: MakeWs
) -> None:
    lock_experiments(make_workspace(demo))
    with open(demo / "data" / "points.csv", "a") as fh:
        fh.write("5,6\n")
    report = check_drift(make_workspace(demo))
    [drift] = [d for d in report.items if d.kind is DriftKind.DATA]
    assert drift.experiment == "train" and drift.subject == "input data/points.csv"
    assert drift.message.startswith("input data/points.csv changed: blake3:")
    assert drift.message.endswith("(12 → 16 bytes)")
    (demo / "data" / "points.csv").unlink()
    report = check_drift(make_workspace(demo), ["train"])
    assert _messages(report, DriftKind.DATA)[0].startswith("input data/points.csv is missing")


def test_a_new_commit_is_reported_but_does_not_fail(demo: Path, make_workspace: MakeWs) -> None:
    lock_experiments(make_workspace(demo))
    _commit(demo, "lock")
    report = check_drift(make_workspace(demo), ["train"])
    head = git(demo, "rev-parse", "HEAD").strip()
    assert _messages(report) == [f"commit moved: {_locked_commit(demo)[:10]} → {head[:10]}"]
    assert not report.drifted and report.exit_code == 0


def _locked_commit(root: Path) -> str:
    commit: str = tomllib.loads((root / "keel.lock").read_text())["experiments"]["train"]["code"][
        "commit"
    ]
    return commit


def test_an_uncommitted_edit_is_reported_but_does_not_fail(
    demo: Path, make_workspace: MakeWs
) -> None:
    lock_experiments(make_workspace(demo))  # keel.lock itself stays uncommitted here
    (demo / "notes.txt").write_text("edited\n")
    (demo / "scratch.py").write_text("x = 1\n")
    report = check_drift(make_workspace(demo), ["train"])
    assert _messages(report) == ["uncommitted changes: notes.txt, scratch.py"]
    assert report.items[0].kind is DriftKind.CODE and not report.drifted


def test_thread_count_variable_is_environment_drift(demo: Path, make_workspace: MakeWs) -> None:
    lock_experiments(make_workspace(demo, OMP_NUM_THREADS="1"))
    report = check_drift(make_workspace(demo, OMP_NUM_THREADS="4"), ["train"])
    assert _messages(report, DriftKind.ENVIRONMENT) == ["OMP_NUM_THREADS: 1 → 4"]
    report = check_drift(make_workspace(demo), ["hashy"])
    assert _messages(report, DriftKind.ENVIRONMENT) == ["OMP_NUM_THREADS unset (was 1)"]


def _wheel(folder: Path, version: str) -> Path:
    """A minimal pure-Python wheel of the package ``keeldrift``."""
    path = folder / f"keeldrift-{version}-py3-none-any.whl"
    info = f"keeldrift-{version}.dist-info"
    files = {
        "keeldrift/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: keeldrift\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: keel-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            data = text.encode()
            zf.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        zf.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return path


def _pip_install(python: Path, wheel: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
         "--no-deps", "--disable-pip-version-check", "-q", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def drift_venv(tmp_path: Path) -> Callable[[str], Path]:
    """A dedicated, bare venv; calling the result installs that version of keeldrift into it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"

    def install(version: str) -> Path:
        _pip_install(python, _wheel(tmp_path, version))
        return python

    return install


def test_package_upgrade_in_the_locked_interpreter_is_environment_drift(
    demo: Path, make_workspace: MakeWs, drift_venv: Callable[[str], Path]
) -> None:
    python = str(drift_venv("1.0"))
    lock_experiments(make_workspace(demo), python=python)
    env = next(iter(tomllib.loads((demo / "keel.lock").read_text())["environments"].values()))
    assert env["packages"] == {"keeldrift": "1.0"}
    assert not check_drift(make_workspace(demo), python=python)
    drift_venv("2.0")
    report = check_drift(make_workspace(demo), ["train"], python=python)
    [drift] = report.items
    assert drift.kind is DriftKind.ENVIRONMENT and drift.subject == "package keeldrift"
    assert drift.message == "package keeldrift: 1.0 → 2.0 (upgraded)"
    # keel's own interpreter is another environment altogether
    assert "package keeldrift removed (was 1.0)" in _messages(check_drift(make_workspace(demo)))


def test_an_interpreter_that_cannot_run_is_an_error(demo: Path, make_workspace: MakeWs) -> None:
    with pytest.raises(UserError, match="cannot read the environment of /nope/python"):
        lock_experiments(make_workspace(demo), python="/nope/python")


def test_unknown_experiment_suggests_the_closest(demo: Path, make_workspace: MakeWs) -> None:
    lock_experiments(make_workspace(demo))
    with pytest.raises(UserError, match="unknown experiment 'trian': did you mean 'train'"):
        check_drift(make_workspace(demo), ["trian"])
    with pytest.raises(UserError, match="unknown experiment 'trian': did you mean 'train'"):
        lock_experiments(make_workspace(demo), ["trian"])


def test_check_without_a_lock_says_to_run_keel_lock(demo: Path, make_workspace: MakeWs) -> None:
    with pytest.raises(UserError, match=r"run `keel lock` first"):
        check_drift(make_workspace(demo))


def test_locking_some_experiments_keeps_the_others(demo: Path, make_workspace: MakeWs) -> None:
    lock_experiments(make_workspace(demo), ["train"])
    report = check_drift(make_workspace(demo))
    assert _messages(report) == [
        "experiment fn is not in keel.lock: lock it with `keel lock fn`",
        "experiment hashy is not in keel.lock: lock it with `keel lock hashy`",
    ]
    _edit(demo / "keel.yaml", "    default: 0.1\n", "    default: 0.2\n")
    lock_experiments(make_workspace(demo), ["fn"])
    report = check_drift(make_workspace(demo), ["train", "fn"])
    assert _messages(report, DriftKind.CONFIG) == ["param lr: 0.1 → 0.2 (catalog default)"]
    assert report.items[0].experiment == "train"


def test_an_experiment_removed_from_keel_yaml_is_config_drift(
    demo: Path, make_workspace: MakeWs
) -> None:
    lock_experiments(make_workspace(demo))
    _edit(
        demo / "keel.yaml",
        "  hashy:\n    command: python -c \"print(hash('keel'))\"\n    params: []\n",
        "",
    )
    report = check_drift(make_workspace(demo))
    assert _messages(report, DriftKind.CONFIG) == [
        "experiment hashy is in keel.lock but no longer in keel.yaml"
    ]


def test_check_against_the_baseline_and_against_a_run(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    tuned = run_experiment(ws, RunRequest(experiment="train", overrides={"lr": "0.5"}))
    set_baseline(ws, tuned.run_id, why="tuned")
    report = check_drift(make_workspace(demo), against="baseline")
    assert report.references == {"train": f"baseline {tuned.run_id}"}
    assert _messages(report, DriftKind.CONFIG) == [
        "param lr: 0.5 (command line) → 0.1 (catalog default)"
    ]
    plain = run_experiment(ws, RunRequest(experiment="train"))
    with open(demo / "data" / "points.csv", "a") as fh:
        fh.write("7,8\n")
    report = check_drift(make_workspace(demo), against=plain.run_id)
    assert report.against == "run" and report.references == {"train": f"run {plain.run_id}"}
    assert [d.kind for d in report.items if d.blocking] == [DriftKind.DATA]
    with pytest.raises(UserError, match="is a run of train"):
        check_drift(make_workspace(demo), ["fn"], against=plain.run_id)


def test_check_against_baseline_without_any_baseline_says_how_to_set_one(
    demo: Path, make_workspace: MakeWs
) -> None:
    with pytest.raises(UserError, match="keel baseline set RUN --why TEXT"):
        check_drift(make_workspace(demo), against="baseline")


def _locked_and_committed(demo: Path, make_workspace: MakeWs, profile: str = "prod") -> None:
    lock_experiments(make_workspace(demo, profile=profile), ["train"])
    _commit(demo, "lock")


def test_strict_profile_refuses_to_run_on_drift_and_stores_nothing(
    demo: Path, make_workspace: MakeWs
) -> None:
    _locked_and_committed(demo, make_workspace)
    _edit(demo / "keel.yaml", "    default: 0.1\n", "    default: 0.2\n")
    _commit(demo, "new lr")
    ws = make_workspace(demo, profile="prod")
    with pytest.raises(StrictViolation) as caught:
        run_experiment(ws, RunRequest(experiment="train"))
    message = str(caught.value)
    assert "drifted from keel.lock: param lr: 0.1 → 0.2 (catalog default)" in message
    assert "`keel --profile prod lock train`" in message and "--allow-drift" in message
    assert list(ws.objects.list_refs("runs/")) == []


def test_allow_drift_runs_and_records_the_reason_and_the_drift(
    demo: Path, make_workspace: MakeWs
) -> None:
    _locked_and_committed(demo, make_workspace)
    request = RunRequest(experiment="train", overrides={"lr": "0.3"}, allow_drift="try lr 0.3")
    m = run_experiment(make_workspace(demo, profile="prod"), request).manifest
    assert m.run.status is RunStatus.SUCCEEDED and m.run.allow_drift == "try lr 0.3"
    assert m.flags == (
        "drift from keel.lock allowed (try lr 0.3): "
        "param lr: 0.1 (catalog default) → 0.3 (command line)",
    )
    with pytest.raises(UserError, match="--allow-drift needs a reason"):
        run_experiment(
            make_workspace(demo, profile="prod"), RunRequest(experiment="train", allow_drift=" ")
        )


def test_the_python_api_takes_the_drift_reason_too(
    demo: Path, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.api

    _locked_and_committed(demo, make_workspace)
    monkeypatch.setenv("USER", "alice")
    with pytest.raises(StrictViolation):
        keel.api.run("train", project=demo, profile="prod", params={"lr": 0.3})
    outcome = keel.api.run(
        "train", project=demo, profile="prod", params={"lr": 0.3}, allow_drift="try lr 0.3"
    )
    assert outcome.manifest.run.allow_drift == "try lr 0.3"


def test_strict_run_without_drift_runs_and_a_dev_lock_is_drift_under_prod(
    demo: Path, make_workspace: MakeWs
) -> None:
    _locked_and_committed(demo, make_workspace)
    m = run_experiment(make_workspace(demo, profile="prod"), RunRequest(experiment="train"))
    assert m.manifest.run.status is RunStatus.SUCCEEDED and m.manifest.run.allow_drift is None
    assert not any("drift" in f for f in m.manifest.flags)
    _locked_and_committed(demo, make_workspace, profile="dev")
    with pytest.raises(StrictViolation, match=r"profile: dev → prod; param epochs: 5 "):
        run_experiment(make_workspace(demo, profile="prod"), RunRequest(experiment="train"))


def test_strict_profile_without_a_lock_does_not_check_drift(
    demo: Path, make_workspace: MakeWs
) -> None:
    m = run_experiment(make_workspace(demo, profile="prod"), RunRequest(experiment="train"))
    assert m.manifest.run.status is RunStatus.SUCCEEDED
