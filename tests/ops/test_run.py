"""A run captures everything §2 promises, in a real git repo with a real child process."""

from __future__ import annotations

import filecmp
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.base.digest import Digest
from keel.capture.git import restore_code
from keel.errors import InvalidParameter, StrictViolation
from keel.model.run import RunStatus
from keel.ops.listing import list_runs, show_run
from keel.ops.run import RunRequest, run_experiment
from keel.ops.workspace import Workspace
from tests.projects import git

MakeWs = Callable[..., Workspace]


def _dirty(root: Path) -> None:
    (root / "train.py").write_text((root / "train.py").read_text() + "\n# tuned\n")
    (root / "notes.txt").unlink()
    (root / "scratch.py").write_text("print('untracked helper')\n")
    (root / "blob.bin").write_bytes(bytes(range(256)))
    git(root, "add", "blob.bin")


def test_dirty_run_records_every_provenance_facet(demo: Path, make_workspace: MakeWs) -> None:
    _dirty(demo)
    ws = make_workspace(demo, OMP_NUM_THREADS="1", AWS_SECRET_ACCESS_KEY="hunter2")
    outcome = run_experiment(ws, RunRequest(experiment="train", overrides={"lr": "0.5"}))
    m = outcome.manifest
    assert m.run.status is RunStatus.SUCCEEDED and m.run.exit_code == 0
    # code
    assert m.code["dirty"] is True and m.code["branch"] == "main"
    assert m.code["remote"] == "https://example.com/demo.git"
    assert isinstance(m.code["diff"], str) and m.code["changed_during_run"] is False
    assert [u["path"] for u in m.code["untracked"]] == ["scratch.py"]  # type: ignore[index,union-attr]
    # config with sources
    params = {k: (v.value, v.source) for k, v in m.config.params.items()}
    assert params["lr"] == (0.5, "cli") and params["epochs"] == (5, "experiment")
    assert params["mode"] == ("fast", "catalog")
    assert m.config.command is not None and "--lr" in m.config.command
    assert m.config.spec_digest.startswith("blake3:")
    # seeds
    assert m.seeds.root == 42 and m.seeds.pythonhashseed == "42"
    assert m.seeds.pythonhashseed_source == "derived"
    assert m.seeds.seeded and m.seeds.seeded[0]["seed"] == 42
    # inputs, outputs, metrics, artifacts, logs
    assert m.inputs[0].path == "data/points.csv" and m.inputs[0].stored
    assert not m.inputs[0].changed_during_run
    assert {o.path for o in m.outputs} == {"out/model.txt", "out/metrics.json"}
    assert all(o.stored and o.digest for o in m.outputs)
    assert m.metrics["score"].value == 2.5 and m.metrics["score"].goal == "max"
    assert [p.step for p in m.metrics["loss"].series] == [0, 1, 2, 3, 4]
    assert [a.path for a in m.artifacts] == ["out/extra/plot.txt"]
    out = ws.objects.get_bytes(Digest.parse(m.logs["stdout"].digest)).decode()
    assert "training on 2 rows" in out
    assert b"a warning" in ws.objects.get_bytes(Digest.parse(m.logs["stderr"].digest))
    # environment and hardware
    env = m.environment
    assert env["env_vars"] == {"OMP_NUM_THREADS": "1"} or env["env_vars"]["OMP_NUM_THREADS"] == "1"  # type: ignore[index,call-overload]
    assert "pytest" in env["packages"]  # type: ignore[operator]
    assert "requirements.txt" in env["lock_files"]  # type: ignore[operator]
    assert m.hardware["captured"] is True and m.hardware["cpu_logical"]
    assert m.run.keel_version and m.run.executor.name == "local" and m.run.duration_s
    # nothing secret anywhere in the sealed bytes
    raw = ws.objects.get_bytes(outcome.digest)
    assert b"hunter2" not in raw and b"s3cret" not in raw


def test_recorded_patch_and_untracked_files_reproduce_the_dirty_tree(
    demo: Path, make_workspace: MakeWs, tmp_path: Path
) -> None:
    _dirty(demo)
    ws = make_workspace(demo)
    m = run_experiment(ws, RunRequest(experiment="train")).manifest
    dest = tmp_path / "restored"
    restore_code(m.code, dest, lambda d: ws.objects.get_bytes(Digest.parse(d)))
    for rel in ("train.py", "scratch.py", "blob.bin", "keel.yaml", "data/points.csv"):
        assert filecmp.cmp(demo / rel, dest / rel, shallow=False), rel
    assert not (dest / "notes.txt").exists()


def test_input_edited_during_the_run_is_flagged(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo, EDIT_INPUT_DURING_RUN="1")
    m = run_experiment(ws, RunRequest(experiment="train")).manifest
    assert m.inputs[0].changed_during_run and m.inputs[0].digest_after != m.inputs[0].digest
    assert "input data/points.csv changed during run" in m.flags


def test_code_edited_during_the_run_is_flagged(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo, EDIT_CODE_DURING_RUN="1")
    m = run_experiment(ws, RunRequest(experiment="train")).manifest
    assert m.code["changed_during_run"] is True
    assert "code changed during run" in m.flags


def test_failing_command_is_sealed_as_failed_with_its_logs(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    m = run_experiment(ws, RunRequest(experiment="train", overrides={"fail": "true"})).manifest
    assert m.run.status is RunStatus.FAILED and m.run.exit_code == 3
    assert b"failing on purpose" in ws.objects.get_bytes(Digest.parse(m.logs["stderr"].digest))


def test_user_pythonhashseed_is_passed_and_recorded(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo, PYTHONHASHSEED="123")
    m = run_experiment(ws, RunRequest(experiment="hashy")).manifest
    assert m.seeds.pythonhashseed == "123" and m.seeds.pythonhashseed_source == "user"
    again = run_experiment(
        make_workspace(demo, PYTHONHASHSEED="123"), RunRequest(experiment="hashy")
    )
    first = ws.objects.get_bytes(Digest.parse(m.logs["stdout"].digest))
    second = ws.objects.get_bytes(Digest.parse(again.manifest.logs["stdout"].digest))
    assert first == second


def test_entrypoint_function_receives_resolved_params(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    m = run_experiment(ws, RunRequest(experiment="fn", overrides={"lr": "2"})).manifest
    assert m.run.status is RunStatus.SUCCEEDED
    assert m.metrics["score"].value == 6.0 and m.config.entrypoint == "funcs:train"


def test_strict_profile_refuses_a_dirty_tree_and_stores_nothing(
    demo: Path, make_workspace: MakeWs
) -> None:
    (demo / "notes.txt").write_text("edited\n")
    ws = make_workspace(demo, profile="prod")
    with pytest.raises(StrictViolation, match="uncommitted changes"):
        run_experiment(ws, RunRequest(experiment="train"))
    assert list(ws.objects.list_refs("runs/")) == []


def test_strict_profile_runs_on_a_clean_tree_with_profile_values(
    demo: Path, make_workspace: MakeWs
) -> None:
    m = run_experiment(
        make_workspace(demo, profile="prod"), RunRequest(experiment="train")
    ).manifest
    assert m.config.params["epochs"].value == 9 and m.config.params["epochs"].source == "profile"


def test_invalid_parameter_stores_nothing(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    with pytest.raises(InvalidParameter) as info:
        run_experiment(ws, RunRequest(experiment="train", overrides={"lrr": "1", "epochs": "0"}))
    text = str(info.value)
    assert "did you mean 'lr'" in text and "epochs" in text
    assert not (ws.store_root / "objects").exists() or not list(ws.objects.iter_digests())


def test_runs_are_listed_filtered_and_shown(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    a = run_experiment(ws, RunRequest(experiment="train", overrides={"lr": "0.2"})).run_id
    b = run_experiment(ws, RunRequest(experiment="train", overrides={"lr": "0.4"})).run_id
    run_experiment(ws, RunRequest(experiment="fn"))
    assert [r.id for r in list_runs(ws, experiment="train")] == [b, a]
    assert [r.id for r in list_runs(ws, params={"lr": "0.2"})] == [a]
    best = list_runs(ws, experiment="train", sort_metric="score")
    assert [r.id for r in best] == [b, a]
    view = show_run(ws, "train@latest")
    assert view.summary.id == b and "training on" in view.log_tail
    assert show_run(ws, a[:-2]).summary.id == a


def test_reindex_rebuilds_an_identical_index(demo: Path, make_workspace: MakeWs) -> None:
    from keel.ops.sync import reindex

    ws = make_workspace(demo)
    for lr in ("0.1", "0.3"):
        run_experiment(ws, RunRequest(experiment="train", overrides={"lr": lr}))
    before = list_runs(ws)
    (ws.store_root / "index.db").unlink()
    ws.close()
    ws = make_workspace(demo)
    assert reindex(ws) == 2
    assert list_runs(ws) == before


def test_keel_json_output_round_trips_the_manifest(demo: Path) -> None:
    import shutil
    import sys

    keel = shutil.which("keel", path=str(Path(sys.executable).parent))
    assert keel
    done = subprocess.run(
        [keel, "-C", str(demo), "run", "train", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    assert data["manifest"]["run"]["status"] == "succeeded"
    assert "training on" in done.stderr


def test_command_that_cannot_start_is_sealed_as_failed_with_the_reason(
    demo: Path, make_workspace: MakeWs
) -> None:
    spec = demo / "keel.yaml"
    spec.write_text(
        spec.read_text().replace(
            "\nprofiles:",
            "\n  broken:\n    command: no-such-program-xyz --go\n    params: []\n\nprofiles:",
        )
    )
    ws = make_workspace(demo)
    m = run_experiment(ws, RunRequest(experiment="broken")).manifest
    assert m.run.status is RunStatus.FAILED and m.run.exit_code is None
    assert any("no-such-program-xyz" in f for f in m.flags)
    assert b"cannot start" in ws.objects.get_bytes(Digest.parse(m.logs["stderr"].digest))
    assert list(ws.objects.list_refs("active/")) == []
