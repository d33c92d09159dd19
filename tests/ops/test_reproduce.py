"""`keel reproduce` on real git repositories with real child processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.compare.verdict import Verdict
from keel.errors import RunRefError, UserError
from keel.model.manifest import Manifest
from keel.ops.determinism import DeterminismRequest, determinism
from keel.ops.listing import list_runs, show_run
from keel.ops.reproduce import (
    EnvMode,
    ReproduceRequest,
    Reproduction,
    parse_tolerances,
    reproduce,
)
from keel.ops.run import RunRequest, run_experiment
from keel.ops.workspace import Workspace
from tests.projects import git, install_wheel, make_wheel

MakeWs = Callable[..., Workspace]
KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"

EXPERIMENTS = """\
  hashfile:
    command: python scripts/hashfile.py
    params: []
    outputs: [out/hash.txt]
  urandom:
    command: python scripts/urandom.py
    params: []
    outputs: [out/random.txt]
  noisy:
    command: python scripts/noisy.py
    params: []
    outputs: [out/random.txt, out/noisy.json]
    metrics_file: out/noisy.json
    metrics:
      acc: {goal: max}
  tolerant:
    command: python scripts/noisy.py
    params: []
    outputs: [out/random.txt, out/noisy.json]
    metrics_file: out/noisy.json
    metrics:
      acc: {goal: max, tolerance: 0.01}
  digestonly:
    command: python train.py --lr {lr} --epochs {epochs} --mode {mode} --seed {seed}
    params: [lr, epochs, mode, sleep, fail]
    inputs: [{path: data/points.csv, store: false}]
    outputs: [out/model.txt]
"""
SCRIPTS = {
    "hashfile.py": "import os\nos.makedirs('out', exist_ok=True)\n"
    "open('out/hash.txt', 'w').write(str(hash('keel')))\n",
    "urandom.py": "import os\nos.makedirs('out', exist_ok=True)\n"
    "open('out/random.txt', 'w').write(os.urandom(8).hex())\n",
    "noisy.py": "import json, os\nos.makedirs('out', exist_ok=True)\n"
    "open('out/random.txt', 'w').write(os.urandom(8).hex())\n"
    "jitter = int.from_bytes(os.urandom(4), 'big') / 2**32 * 1e-3\n"
    "json.dump({'acc': 0.5 + jitter}, open('out/noisy.json', 'w'))\n",
}


def add_experiments(root: Path) -> None:
    """Add the hashfile/urandom/noisy/tolerant/digestonly experiments and commit them."""
    spec = root / "keel.yaml"
    spec.write_text(spec.read_text().replace("\nprofiles:", EXPERIMENTS + "\nprofiles:"))
    (root / "scripts").mkdir()
    for name, text in SCRIPTS.items():
        (root / "scripts" / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "more experiments")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the user's project except keel's store, and git's state but worktrees."""
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".keel/", ".git/worktrees/")) or not path.is_file():
            continue
        files[rel] = path.read_bytes()
    return files


def worktrees(root: Path) -> list[str]:
    out = git(root, "worktree", "list", "--porcelain")
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def reproduced(ws: Workspace, ref: str, **kwargs: object) -> Reproduction:
    return reproduce(ws, ReproduceRequest(ref=ref, **kwargs))  # type: ignore[arg-type]


def _run(ws: Workspace, experiment: str, **overrides: str) -> Manifest:
    return run_experiment(ws, RunRequest(experiment=experiment, overrides=overrides)).manifest


def test_old_run_reproduces_after_the_tree_moved_on_and_the_tree_is_untouched(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    original = _run(ws, "train", lr="0.5")
    (demo / "train.py").write_text((demo / "train.py").read_text().replace("weights", "W"))
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("defaults: {epochs: 5}", "defaults: {epochs: 7}"))
    git(demo, "commit", "-qam", "moved on")
    (demo / "data" / "points.csv").write_text("x,y\n9,9\n")  # uncommitted edit of the input
    (demo / "notes.txt").write_text("edited\n")
    before = snapshot(demo)

    result = reproduced(ws, original.run.id)

    assert result.verdict is Verdict.REPRODUCED and result.exit_code == 0, result.record
    assert snapshot(demo) == before
    assert len(worktrees(demo)) == 1 and result.sandbox is None
    assert result.outcome is not None
    m = result.outcome.manifest
    assert m.run.reproduces == original.run.id and "reproduction" in m.run.tags
    assert m.config.params == original.config.params
    assert m.code["commit"] == original.code["commit"] and m.inputs[0].digest == (
        original.inputs[0].digest
    )
    record = m.reproduction
    assert record is not None and record["verdict"] == "REPRODUCED"
    assert record["of"] == original.run.id and record["outputs_compared"] == 2
    total, overhead = record["time_to_reproduce_s"], record["overhead_s"]
    assert isinstance(total, float) and isinstance(overhead, float) and 0 <= overhead <= total
    assert isinstance(record["environment_changes"], list)


def test_run_made_in_a_dirty_tree_reproduces_from_its_patch_and_untracked_files(
    demo: Path, make_workspace: MakeWs
) -> None:
    train = demo / "train.py"
    train.write_text(train.read_text() + "import scratch\n"
                     "open('out/model.txt', 'a').write(scratch.VALUE)\n")  # fmt: skip
    (demo / "scratch.py").write_text("VALUE = 'from an untracked file\\n'\n")
    (demo / "notes.txt").unlink()
    ws = make_workspace(demo)
    original = _run(ws, "train")
    assert original.code["dirty"] is True
    git(demo, "checkout", "-q", "--", ".")
    (demo / "scratch.py").unlink()

    result = reproduced(ws, original.run.id)

    assert result.verdict is Verdict.REPRODUCED, result.record
    assert not (demo / "scratch.py").exists() and (demo / "notes.txt").exists()


def test_recorded_pythonhashseed_makes_a_hash_dependent_output_reproduce(
    demo: Path, make_workspace: MakeWs
) -> None:
    add_experiments(demo)
    original = _run(make_workspace(demo), "hashfile")
    # today's shell has another PYTHONHASHSEED: the recorded derivation wins
    result = reproduced(make_workspace(demo, PYTHONHASHSEED="7"), original.run.id)
    assert result.verdict is Verdict.REPRODUCED, result.record


def test_entrypoint_experiment_reproduces_with_its_api_metrics(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    original = _run(ws, "fn", lr="2")
    result = reproduced(ws, original.run.id)
    assert result.verdict is Verdict.REPRODUCED and result.record["metrics_compared"] == 1
    assert result.outcome is not None and result.outcome.manifest.metrics["score"].value == 6.0


def test_user_pythonhashseed_is_given_back(demo: Path, make_workspace: MakeWs) -> None:
    add_experiments(demo)
    original = _run(make_workspace(demo, PYTHONHASHSEED="123"), "hashfile")
    result = reproduced(make_workspace(demo), original.run.id)
    assert result.verdict is Verdict.REPRODUCED, result.record
    assert result.outcome is not None
    assert result.outcome.manifest.seeds.pythonhashseed == "123"


def test_random_output_diverges_naming_the_output(demo: Path, make_workspace: MakeWs) -> None:
    add_experiments(demo)
    ws = make_workspace(demo)
    result = reproduced(ws, _run(ws, "urandom").run.id)
    assert result.verdict is Verdict.DIVERGED and result.exit_code == 1
    differences = result.record["differences"]
    assert isinstance(differences, list) and len(differences) == 1
    assert differences[0] == {  # type: ignore[comparison-overlap]
        **differences[0],  # type: ignore[dict-item]
        "kind": "output", "name": "out/random.txt", "tolerated": False,
    }  # fmt: skip


def test_metric_within_declared_tolerance_with_a_differing_output(
    demo: Path, make_workspace: MakeWs
) -> None:
    add_experiments(demo)
    ws = make_workspace(demo)
    result = reproduced(ws, _run(ws, "tolerant").run.id)
    assert result.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE and result.exit_code == 0
    names = {d["name"] for d in result.record["differences"]}  # type: ignore[index,union-attr]
    assert names == {"out/random.txt", "out/noisy.json", "acc"}


def test_tolerance_option_widens_an_exact_metric(demo: Path, make_workspace: MakeWs) -> None:
    add_experiments(demo)
    ws = make_workspace(demo)
    run_id = _run(ws, "noisy").run.id
    assert reproduced(ws, run_id).verdict is Verdict.DIVERGED
    widened = reproduced(ws, run_id, tolerances={"acc": 0.01})
    assert widened.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE
    assert widened.record["tolerances"] == {"acc": 0.01}


def test_noise_profile_says_whether_a_metric_difference_is_within_noise(
    demo: Path, make_workspace: MakeWs
) -> None:
    add_experiments(demo)
    ws = make_workspace(demo)
    run_id = _run(ws, "noisy").run.id
    measured = determinism(ws, DeterminismRequest(experiment="noisy", replicates=4))
    result = reproduced(ws, run_id)
    assert result.record["noise_profile"] == str(measured.digest)
    acc = next(d for d in result.record["differences"] if d["name"] == "acc")  # type: ignore[index,union-attr]
    assert isinstance(acc["within_noise"], bool)  # type: ignore[index,call-overload]


def test_commit_that_no_longer_exists_is_not_reproducible(
    demo: Path, make_workspace: MakeWs
) -> None:
    git(demo, "checkout", "-qb", "experiment")
    (demo / "train.py").write_text((demo / "train.py").read_text() + "\n# on a branch\n")
    git(demo, "commit", "-qam", "branch work")
    ws = make_workspace(demo)
    original = _run(ws, "train")
    git(demo, "checkout", "-q", "main")
    git(demo, "branch", "-qD", "experiment")
    git(demo, "reflog", "expire", "--expire=now", "--all")
    git(demo, "gc", "-q", "--prune=now")

    result = reproduced(ws, original.run.id)

    assert result.verdict is Verdict.NOT_REPRODUCIBLE and result.exit_code == 2
    assert str(original.code["commit"]) in str(result.record["reason"])
    assert result.outcome is None and len(worktrees(demo)) == 1


def test_missing_input_object_is_not_reproducible_naming_the_digest(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    original = _run(ws, "train")
    digest = str(original.inputs[0].digest)
    hexdigest = digest.split(":")[1]
    (ws.store_root / "objects" / "blake3" / hexdigest[:2] / hexdigest[2:]).unlink()

    result = reproduced(ws, original.run.id)

    assert result.verdict is Verdict.NOT_REPRODUCIBLE
    assert digest in str(result.record["reason"]) and "data/points.csv" in str(
        result.record["reason"]
    )
    assert len(worktrees(demo)) == 1


def test_digest_only_input_is_taken_from_the_project_only_when_unchanged(
    demo: Path, make_workspace: MakeWs
) -> None:
    add_experiments(demo)
    ws = make_workspace(demo)
    original = _run(ws, "digestonly")
    assert original.inputs[0].stored is False
    assert reproduced(ws, original.run.id).verdict is Verdict.REPRODUCED
    (demo / "data" / "points.csv").write_text("x,y\n5,5\n")
    changed = reproduced(ws, original.run.id)
    assert changed.verdict is Verdict.NOT_REPRODUCIBLE
    assert "data/points.csv" in str(changed.record["reason"])


def test_run_still_running_is_not_reproducible(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    worker = threading.Thread(target=_run, args=(make_workspace(demo), "train"),
                              kwargs={"sleep": "3"})  # fmt: skip
    worker.start()
    try:
        active = ws.store_root / "refs" / "active"
        for _ in range(200):
            if active.is_dir() and any(active.iterdir()):
                break
            time.sleep(0.05)
        run_id = next(active.iterdir()).name
        result = reproduced(ws, run_id)
    finally:
        worker.join()
    assert result.verdict is Verdict.NOT_REPRODUCIBLE
    assert "still running" in str(result.record["reason"])


def test_project_without_git_is_not_reproducible(tmp_path: Path, make_workspace: MakeWs) -> None:
    from tests.projects import make_demo_project

    root = make_demo_project(tmp_path / "nogit", commit=False)
    ws = make_workspace(root)
    result = reproduced(ws, _run(ws, "train").run.id)
    assert result.verdict is Verdict.NOT_REPRODUCIBLE and "git" in str(result.record["reason"])


def test_keep_leaves_the_worktree_for_inspection(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    result = reproduced(ws, _run(ws, "train").run.id, keep=True)
    assert result.sandbox is not None and (result.sandbox / "out" / "model.txt").is_file()
    assert len(worktrees(demo)) == 2
    git(demo, "worktree", "remove", "--force", str(result.sandbox))


def test_reproduction_is_a_sealed_listed_run(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    original = _run(ws, "train")
    result = reproduced(ws, original.run.id)
    assert result.outcome is not None
    rep_id = result.outcome.run_id
    view = show_run(ws, rep_id)
    assert view.manifest.run.reproduces == original.run.id
    assert view.digest == str(result.outcome.digest)
    assert rep_id in [r.id for r in list_runs(ws)]
    shown = _keel("-C", str(demo), "show", rep_id)
    assert shown.returncode == 0, shown.stderr
    assert f"reproduces  {original.run.id}" in shown.stdout and "REPRODUCED" in shown.stdout


def test_bad_references_and_tolerances_are_user_errors(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    with pytest.raises(RunRefError, match="no run matches"):
        reproduced(ws, "zzzz")
    run_id = _run(ws, "train").run.id
    with pytest.raises(UserError, match="did you mean 'score'"):
        reproduced(ws, run_id, tolerances={"scor": 0.1})
    for bad in ("score", "score=x", "=1", "score=-1", "score=inf"):
        with pytest.raises(UserError, match="NAME=ABS"):
            parse_tolerances([bad])
    assert parse_tolerances(["score=0.5", "loss=1e-3"]) == {"score": 0.5, "loss": 0.001}


# -- the command ------------------------------------------------------------------------------


def _keel(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    full.pop("PYTHONHASHSEED", None)
    full.update(env or {})
    return subprocess.run([KEEL, *args], env=full, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


JSON_KEYS = {
    "of", "original_seal", "verdict", "reason", "differences", "outputs_compared",
    "metrics_compared", "environment_changes", "tolerances", "env_mode", "noise_profile",
    "time_to_reproduce_s", "run_s", "overhead_s", "run", "reproduction", "digest", "sandbox",
    "exit_code",
}  # fmt: skip


def test_reproduce_help_has_examples_and_exit_codes() -> None:
    out = _keel("reproduce", "--help").stdout
    assert "Usage: keel reproduce" in out and "Examples:" in out and "keel reproduce @latest" in out
    assert "2 NOT_REPRODUCIBLE" in out and "--env [current|recorded]" in out


def test_reproduce_command_exit_codes_and_json(demo: Path) -> None:
    add_experiments(demo)
    assert _keel("-C", str(demo), "run", "train").returncode == 0
    ok = _keel("-C", str(demo), "reproduce", "train@latest", "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["verdict"] == "REPRODUCED" and data["exit_code"] == 0
    assert data.keys() == JSON_KEYS
    assert "training on" in ok.stderr  # the run's own output goes to stderr

    assert _keel("-C", str(demo), "run", "urandom").returncode == 0
    diverged = _keel("-C", str(demo), "reproduce", "urandom@latest")
    assert diverged.returncode == 1 and "DIVERGED" in diverged.stdout
    assert "out/random.txt" in diverged.stdout and "keel show" in diverged.stdout

    bad = _keel("-C", str(demo), "reproduce", "train@latest", "--tolerance", "score")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "NAME=ABS" in bad.stderr
    missing = _keel("-C", str(demo), "reproduce", "nope")
    assert missing.returncode == 6 and "no run matches 'nope'" in missing.stderr


def test_not_reproducible_exits_2_with_the_reason(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    original = _run(ws, "train")
    hexdigest = str(original.inputs[0].digest).split(":")[1]
    (ws.store_root / "objects" / "blake3" / hexdigest[:2] / hexdigest[2:]).unlink()
    result = _keel("-C", str(demo), "reproduce", original.run.id)
    assert result.returncode == 2 and "NOT_REPRODUCIBLE" in result.stdout
    assert hexdigest[:12] in result.stdout.replace("\n", "") and "Traceback" not in result.stderr
    as_json = _keel("-C", str(demo), "reproduce", original.run.id, "--json")
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and data["verdict"] == "NOT_REPRODUCIBLE"
    assert hexdigest in data["reason"] and data["reproduction"] is None and data["exit_code"] == 2
    assert data.keys() == JSON_KEYS


def test_keep_prints_the_worktree(demo: Path) -> None:
    assert _keel("-C", str(demo), "run", "train").returncode == 0
    kept = _keel("-C", str(demo), "reproduce", "@latest", "--keep")
    assert kept.returncode == 0, kept.stderr
    line = next(x for x in kept.stdout.splitlines() if "kept the worktree at" in x)
    path = line.split("kept the worktree at ")[1].split(" (")[0]
    assert Path(path, "train.py").is_file()
    git(demo, "worktree", "remove", "--force", path)


# -- --env recorded ---------------------------------------------------------------------------


PKG_EXPERIMENT = """\
  pkg:
    command: python pkgver.py
    params: []
    outputs: [out/version.txt]
"""
PKG_SCRIPT = """\
import os, keeldemo
os.makedirs("out", exist_ok=True)
open("out/version.txt", "w").write(keeldemo.__version__)
"""


def _pkg_project(demo: Path) -> None:
    spec = demo / "keel.yaml"
    spec.write_text(spec.read_text().replace("\nprofiles:", PKG_EXPERIMENT + "\nprofiles:"))
    (demo / "pkgver.py").write_text(PKG_SCRIPT)
    git(demo, "add", "-A")
    git(demo, "commit", "-qm", "pkg")


@pytest.mark.slow
def test_env_recorded_rebuilds_the_recorded_package_versions(
    demo: Path, make_workspace: MakeWs, tmp_path: Path
) -> None:
    from keel.ops.run import ExecOptions, execute_plan, resolve_plan

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    v1, v2 = make_wheel(wheels, "1.0"), make_wheel(wheels, "2.0")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install_wheel(v1, venv)
    _pkg_project(demo)
    ws = make_workspace(demo, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    plan = resolve_plan(ws, RunRequest(experiment="pkg"))
    original = execute_plan(ws, plan, options=ExecOptions(python=str(venv / "bin" / "python")))
    assert original.manifest.environment["packages"] == {"keeldemo": "1.0"}
    install_wheel(v2, venv)  # the environment moved on
    events: list[str] = []

    def again() -> Reproduction:
        request = ReproduceRequest(ref=original.run_id, env=EnvMode.RECORDED)
        return reproduce(ws, request, on_event=lambda _, data: events.append(str(data)))

    result = again()

    assert result.verdict is Verdict.REPRODUCED, result.record
    assert result.outcome is not None and result.record["env_mode"] == "recorded"
    packages = result.outcome.manifest.environment["packages"]
    assert isinstance(packages, dict) and packages["keeldemo"] == "1.0"
    assert any("building the recorded environment" in e for e in events)
    envs = sorted((ws.cache_dir / "envs").iterdir())
    assert again().verdict is Verdict.REPRODUCED and any("reusing" in e for e in events)
    assert envs == sorted((ws.cache_dir / "envs").iterdir())
    current = reproduce(ws, ReproduceRequest(ref=original.run_id))  # keel's python: no keeldemo
    assert current.verdict is Verdict.DIVERGED


@pytest.mark.slow
def test_rebuilt_environment_imports_the_running_keel(tmp_path: Path) -> None:
    from importlib.metadata import version

    from keel.ops.rebuild_env import rebuild_env, recorded_pins

    environment: dict[str, object] = {
        "captured": True,
        "python": {"executable": sys.executable, "version": "x"},
        "packages": {"keel": "0.0.1", "pip": "1", "setuptools": "1", "wheel": "1"},
    }
    assert recorded_pins(environment) == ()  # type: ignore[arg-type]
    python = rebuild_env(environment, cache_root=tmp_path, environ=dict(os.environ))  # type: ignore[arg-type]
    probe = "import keel, importlib.metadata as m; print(keel.__file__, m.version('keel'))"
    out = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert "keel-link" in out.stdout and out.stdout.split()[1] == version("keel")
    with pytest.raises(UserError, match="environment was not captured"):
        recorded_pins({"captured": False, "reason": "test"})
