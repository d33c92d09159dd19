"""`keel sweep` as a library: frozen plans, sealed trials, seeds, folds, resume, isolation.

The project is a small git repository whose experiment is a plain Python script (no keel
import), so a trial costs about a Python start-up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from keel.base.canonical import JsonValue, loads
from keel.base.digest import Digest
from keel.errors import InvalidParameter, UserError, ValidationError
from keel.model.manifest import Manifest
from keel.model.sweep import REF_PREFIX
from keel.model.sweeprecord import COPIED_FLAG, trial_ref
from keel.ops.sweep import PoolOptions, SweepOutcome, SweepRequest, resume_sweep, start_sweep
from keel.ops.sweep_freeze import load_sweep
from keel.ops.sweep_table import sweep_table
from keel.ops.sync import load_manifest
from keel.ops.workspace import Workspace
from keel.resolve.sweep import child_seed, fold_indices
from tests.projects import git, make_git_project

SWEEP_YAML = """\
project: sweepdemo

params:
  lr: {type: float, default: 0.1, min: 0.0001, max: 10}
  n: {type: int, default: 1, min: 1, max: 1000}
  sleep: {type: float, default: 0.0, min: 0, max: 600}
  fail: {type: bool, default: false}
  edit: {type: bool, default: false}

experiments:
  train:
    command: >-
      python trial.py --lr {lr} --n {n} --seed {seed} --sleep {sleep} --fail {fail}
      --edit {edit}
    params: [lr, n, sleep, fail, edit]
    seed: 7
    inputs: [data/rows.csv]
    outputs: [out/model.txt, out/metrics.json]
    metrics_file: out/metrics.json
    metrics:
      score: {goal: max}

profiles:
  dev: {}

sweeps:
  tune:
    experiment: train
    params:
      lr: [0.5, 1]
    seeds: 2
"""

TRIAL_PY = """\
import argparse, json, os, random, subprocess, sys, time

VERSION = 1
ap = argparse.ArgumentParser()
for name in ("lr", "seed", "sleep"):
    ap.add_argument("--" + name, type=float)
ap.add_argument("--n", type=int)
ap.add_argument("--fail")
ap.add_argument("--edit")
a = ap.parse_args()
fold_file = os.environ.get("KEEL_FOLD_FILE")
fold = json.load(open(fold_file)) if fold_file else None
if a.edit == "true":  # edit and commit the user's project while the sweep runs
    root = os.environ["SWEEP_TEST_PROJECT"]
    spec = open(os.path.join(root, "keel.yaml")).read()
    open(os.path.join(root, "keel.yaml"), "w").write(
        spec.replace("n: {type: int, default: 1,", "n: {type: int, default: 5,"))
    code = open(os.path.join(root, "trial.py")).read()
    open(os.path.join(root, "trial.py"), "w").write(code.replace("VERSION = 1", "VERSION = 2"))
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=T"]
    subprocess.run(git + ["commit", "-qam", "edited mid-sweep"], cwd=root, check=True)
if os.environ.get("SWEEP_TEST_KILL_WORKER") == str(a.lr):  # the keel process running it dies
    os.kill(os.getppid(), 9)
    sys.exit(0)
if not os.environ.get("SWEEP_TEST_NO_SLEEP"):
    time.sleep(a.sleep)
if a.fail == "true":
    print("failing on purpose", file=sys.stderr)
    sys.exit(3)
rows = open("data/rows.csv").read().splitlines()[1:]
rng = random.Random(int(a.seed))
score = round(a.lr * a.n + rng.random(), 6)
os.makedirs("out", exist_ok=True)
where = fold["fold"] if fold else -1
open("out/model.txt", "w").write(f"v{VERSION} lr={a.lr} n={a.n} seed={int(a.seed)} fold={where}\\n")
metrics = {"score": score, "rows": len(rows)}
if fold:
    metrics.update(fold=fold["fold"], k=fold["k"], test_rows=len(fold["test"]))
json.dump(metrics, open("out/metrics.json", "w"))
"""

ROWS_CSV = "x,label,group\n" + "".join(f"{i},{i % 2},{i // 3}\n" for i in range(12))


def make_sweep_project(root: Path, *, commit: bool = True) -> Path:
    """A small project for sweeps: keel.yaml, trial.py and a 12-row table (a git repo)."""
    files = {"keel.yaml": SWEEP_YAML, "trial.py": TRIAL_PY, "data/rows.csv": ROWS_CSV,
             ".gitignore": ".keel/\nout/\n"}  # fmt: skip
    if commit:
        return make_git_project(root, files)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def open_ws(root: Path, **env: str) -> Workspace:
    """A workspace on ``root`` with a clean environment (plus ``env``)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ.pop("PYTHONHASHSEED", None)
    environ.update(env)
    return Workspace.open(root, environ=environ)


def manifests(ws: Workspace, outcome: SweepOutcome) -> dict[int, Manifest]:
    """Each trial's sealed manifest, by trial index."""
    out = {}
    for t in outcome.trials:
        digest = ws.objects.get_ref(trial_ref(outcome.record.id, t.trial.key))
        assert digest is not None, f"trial {t.trial.index} has no run"
        out[t.trial.index] = load_manifest(ws, digest)
    return out


def output_text(ws: Workspace, m: Manifest, path: str) -> str:
    rec = next(o for o in m.outputs if o.path == path)
    assert rec.digest is not None
    return ws.objects.get_bytes(Digest.parse(rec.digest)).decode()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_sweep_project(tmp_path / "proj")


def sweep(ws: Workspace, *axes: str, **options: object) -> SweepOutcome:
    return start_sweep(ws, SweepRequest(name="train", axes=axes, **options))  # type: ignore[arg-type]


def test_every_trial_is_a_sealed_run_with_its_sweep_trial_and_seed(project: Path) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "lr=0.5,1", seeds=2)
    assert outcome.ok and outcome.statuses == {"succeeded": 4}
    record = outcome.record
    assert ws.objects.get_ref(f"{REF_PREFIX}{record.id}") is not None
    assert record.root_seed == 7
    runs = manifests(ws, outcome)
    for t in outcome.trials:
        m = runs[t.trial.index]
        assert m.run.status.value == "succeeded"
        assert m.sweep is not None
        assert m.sweep["id"] == record.id and m.sweep["trial"] == t.trial.index
        assert m.sweep["key"] == t.trial.key and m.sweep["config"] == t.trial.config
        assert m.sweep["replicate"] == t.trial.replicate
        assert m.seeds.root == child_seed(7, t.trial.replicate) == t.trial.seed
        assert m.config.params["lr"].value == t.trial.params["lr"]
        assert m.config.params["lr"].source == "sweep"
        assert m.run.executor.name == "local" and m.run.executor.worker
        assert m.code["commit"] == record.code["commit"]
        assert m.flags == ()
    seeds = {runs[i].seeds.root for i in runs}
    assert len(seeds) == 2  # replicates differ; configurations share them
    assert output_text(ws, runs[0], "out/model.txt").startswith("v1 lr=0.5 n=1 seed=")


def test_the_same_spec_gives_the_same_trials_seeds_and_random_proposals(project: Path) -> None:
    ws = open_ws(project)
    request = SweepRequest(name="train", axes=("lr=loguniform(0.01,1)", "n=randint(1,9)"),
                           strategy="random", trials=3, seed=11)  # fmt: skip
    from keel.ops.sweep_freeze import prepare_sweep

    first, second = prepare_sweep(ws, request), prepare_sweep(ws, request)
    assert [t.trial for t in first.trials] == [t.trial for t in second.trials]
    assert len({json.dumps(t.trial.params, sort_keys=True) for t in first.trials}) == 3
    assert {t.trial.seed for t in first.trials} == {child_seed(11, 0)}
    declared = prepare_sweep(ws, SweepRequest(name="tune"))
    assert [(t.trial.params["lr"], t.trial.replicate) for t in declared.trials] == [
        (0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]  # fmt: skip


def test_edits_to_keel_yaml_and_code_mid_sweep_do_not_leak_into_later_trials(
    project: Path,
) -> None:
    ws = open_ws(project, SWEEP_TEST_PROJECT=str(project))
    outcome = sweep(ws, "edit=true,false", "lr=0.5")
    assert outcome.ok, outcome.statuses
    assert "VERSION = 2" in (project / "trial.py").read_text()  # the first trial did edit
    assert "edited mid-sweep" in git(project, "log", "-1", "--format=%s")
    later = manifests(ws, outcome)[1]
    assert later.config.params["n"].value == 1  # keel.yaml's default as frozen, not 5
    assert output_text(ws, later, "out/model.txt").startswith("v1 ")  # the frozen code
    assert later.code["commit"] == outcome.record.code["commit"]
    assert "code changed during run" not in later.flags
    # and a resume after the edits still runs the frozen code and plan
    ws.objects.delete_ref(trial_ref(outcome.record.id, outcome.trials[1].trial.key))
    again = resume_sweep(open_ws(project, SWEEP_TEST_PROJECT=str(project)), outcome.record.id)
    rerun = manifests(ws, again)[1]
    assert rerun.run.id != later.run.id
    assert rerun.config.params["n"].value == 1
    assert output_text(ws, rerun, "out/model.txt") == output_text(ws, later, "out/model.txt")


def test_resume_runs_only_missing_and_failed_trials_and_then_nothing(project: Path) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "lr=0.5,1", "fail=false,true")
    assert outcome.statuses == {"failed": 2, "succeeded": 2}
    assert not outcome.ok
    sid = outcome.record.id
    good = [t for t in outcome.trials if not t.trial.params["fail"]]
    ws.objects.delete_ref(trial_ref(sid, good[0].trial.key))  # as if it never ran
    events: list[tuple[str, Mapping[str, JsonValue]]] = []
    again = resume_sweep(ws, sid[:6], on_event=lambda k, d: events.append((k, d)))
    assert events[0] == ("sweep", {"id": sid, "experiment": "train", "total": 4, "to_run": 3,
                                   "resumed": True})  # fmt: skip
    ran = {r.key for r in again.results}
    assert ran == {good[0].trial.key} | {t.trial.key for t in outcome.trials
                                         if t.trial.params["fail"]}  # fmt: skip
    assert again.statuses == {"failed": 2, "succeeded": 2}


def test_resuming_a_finished_sweep_twice_runs_nothing(project: Path) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "lr=0.5,1")
    ws.objects.delete_ref(trial_ref(outcome.record.id, outcome.trials[0].trial.key))
    first = resume_sweep(ws, outcome.record.id)
    assert len(first.results) == 1 and first.ok
    second = resume_sweep(ws, outcome.record.id)
    assert second.to_run == 0 and second.results == () and second.ok


def test_a_crash_and_a_hang_are_isolated_and_the_rest_go_on(project: Path) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "fail=false,true", "sleep=0,60", timeout_s=1.0)
    by_params = {(t.trial.params["fail"], t.trial.params["sleep"]): outcome.states[t.trial.key]
                 for t in outcome.trials}  # fmt: skip
    assert by_params[(False, 0.0)].status == "succeeded"
    assert by_params[(True, 0.0)].status == "failed"
    assert by_params[(False, 60.0)].status == "killed"
    assert by_params[(True, 60.0)].status == "killed"
    runs = manifests(ws, outcome)
    killed = [m for m in runs.values() if m.run.status.value == "killed"]
    assert all("run killed: timeout" in m.flags for m in killed)


def test_a_worker_that_dies_stops_the_sweep_clearly_and_resume_reruns_its_trial(
    project: Path,
) -> None:
    ws = open_ws(project, SWEEP_TEST_KILL_WORKER="2.0")
    request = SweepRequest(name="train", axes=("lr=2,0.5,1",))
    stopped = r"the pool executor stopped working .*`keel sweep --resume \w+`"
    with pytest.raises(UserError, match=stopped):
        start_sweep(ws, request, pool_options=PoolOptions(executor="pool", jobs=1))
    from keel.ops.sweep_table import all_trials, trial_states

    record = load_sweep(ws, "@latest")
    states = trial_states(ws, record, all_trials(ws, record))
    assert [states[t.trial.key].status for t in record.trials] == ["lost", "missing", "missing"]
    finished = resume_sweep(open_ws(project), record.id)
    assert finished.ok and len(finished.results) == 3
    assert manifests(ws, finished)[0].run.status.value == "succeeded"
    assert ws.objects.get_ref(f"runs/{states[record.trials[0].trial.key].run_id}") is not None


def test_folds_record_the_partition_and_each_trial_gets_its_fold(project: Path) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "lr=0.5", folds=3, fold_data="data/rows.csv", seeds=2)
    assert outcome.ok
    part = outcome.record.partition
    assert part is not None and part.k == 3 and part.rows == 12
    test_lists = loads(ws.objects.get_bytes(Digest.parse(part.indices)))
    assert isinstance(test_lists, list)
    assert sorted(i for fold in test_lists for i in fold) == list(range(12))  # type: ignore[union-attr]
    runs = manifests(ws, outcome)
    for t in outcome.trials:
        m = runs[t.trial.index]
        assert m.sweep is not None and m.sweep["fold"] == t.trial.fold
        assert m.sweep["folds"] == 3 and m.sweep["partition"] == part.digest
        assert m.metrics["fold"].value == t.trial.fold
        _, test = fold_indices(test_lists, t.trial.fold or 0)  # type: ignore[arg-type]
        assert m.metrics["test_rows"].value == len(test)
    assert [(t.trial.replicate, t.trial.fold) for t in outcome.trials] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]  # fmt: skip


def test_show_aggregates_per_configuration_in_config_order_and_marks_the_best(
    project: Path,
) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "lr=2,0.5,1", seeds=2)
    table = sweep_table(ws, load_sweep(ws, outcome.record.id))
    assert [r.params["lr"] for r in table.rows] == [2.0, 0.5, 1.0]
    assert [r.best for r in table.rows] == [True, False, False]
    assert table.metric == "score" and table.goal == "max"
    first = table.rows[0].metrics["score"]
    values = [outcome.states[t.trial.key].metrics["score"]
              for t in outcome.trials if t.trial.config == 0]  # fmt: skip
    assert first.n == 2 and first.mean == pytest.approx(sum(values) / 2)
    assert first.std == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    assert table.to_json()["rows"][0]["metrics"]["score"]["n"] == 2  # type: ignore[index, call-overload]
    with pytest.raises(UserError, match="metric 'rows' has no declared goal"):
        sweep_table(ws, outcome.record, metric="rows")


def test_trials_writing_a_committed_output_do_not_change_it_for_each_other(
    tmp_path: Path,
) -> None:
    root = make_sweep_project(tmp_path / "proj")
    (root / ".gitignore").write_text(".keel/\nout/metrics.json\n")
    (root / "out").mkdir()
    (root / "out" / "model.txt").write_text("committed placeholder\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "track the model file")
    ws = open_ws(root)
    outcome = sweep(ws, "lr=0.5,1")
    runs = manifests(ws, outcome)
    assert all("code changed during run" not in m.flags for m in runs.values())
    texts = [output_text(ws, runs[i], "out/model.txt") for i in (0, 1)]
    assert texts[0].startswith("v1 lr=0.5") and texts[1].startswith("v1 lr=1.0")
    assert (root / "out" / "model.txt").read_text() == "committed placeholder\n"


def test_a_project_outside_git_is_copied_and_flagged(tmp_path: Path) -> None:
    root = make_sweep_project(tmp_path / "plain", commit=False)
    ws = open_ws(root)
    outcome = sweep(ws, "lr=0.5,1")
    assert outcome.ok
    assert COPIED_FLAG in outcome.record.flags
    assert all(COPIED_FLAG in m.flags for m in manifests(ws, outcome).values())
    (root / "trial.py").write_text(TRIAL_PY.replace("VERSION = 1", "VERSION = 3"))
    ws.objects.delete_ref(trial_ref(outcome.record.id, outcome.trials[0].trial.key))
    with pytest.raises(UserError, match="not a git repository, and the project's files"):
        resume_sweep(ws, outcome.record.id)


def test_bad_input_is_refused_before_anything_is_recorded(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = open_ws(project)
    with pytest.raises(InvalidParameter) as info:
        sweep(ws, "lr=0.5,99", "nope=1,2", seeds=0)
    assert len(info.value.problems) >= 2
    with pytest.raises(ValidationError):
        start_sweep(ws, SweepRequest(name="no-such-experiment", axes=("lr=1,2",)))
    with pytest.raises(UserError, match="--scheduler is only for --executor dask"):
        start_sweep(
            ws,
            SweepRequest(name="train", axes=("lr=1,2",)),
            pool_options=PoolOptions(executor="pool", scheduler="tcp://127.0.0.1:1"),
        )

    def unreachable(self: PoolOptions) -> object:
        raise UserError("cannot reach the Dask scheduler at tcp://10.0.0.1:8786")

    monkeypatch.setattr(PoolOptions, "open", unreachable)
    with pytest.raises(UserError, match="cannot reach"):
        start_sweep(
            ws,
            SweepRequest(name="train", axes=("lr=1,2",)),
            pool_options=PoolOptions(executor="dask", scheduler="tcp://10.0.0.1:8786"),
        )
    assert list(ws.objects.list_refs("")) == []


def test_sweep_refs_resolve_by_id_prefix_and_latest(project: Path) -> None:
    ws = open_ws(project)
    outcome = sweep(ws, "lr=0.5")
    assert load_sweep(ws, "@latest").id == outcome.record.id
    assert load_sweep(ws, outcome.record.id[:8]).id == outcome.record.id
    from keel.errors import RunRefError

    with pytest.raises(RunRefError, match="no sweep matches 'zzz'"):
        load_sweep(ws, "zzz")


def test_a_dataset_input_is_frozen_at_the_version_latest_meant_when_the_sweep_began(
    tmp_path: Path,
) -> None:
    from keel.ops.data import add_dataset

    root = make_sweep_project(tmp_path / "ds", commit=False)
    spec = root / "keel.yaml"
    spec.write_text(spec.read_text().replace(
        "inputs: [data/rows.csv]", "inputs: [{dataset: rows, path: data/rows.csv}]"))  # fmt: skip
    (root / ".gitignore").write_text(".keel/\nout/\ndata/\n")
    source = tmp_path / "rows.csv"
    source.write_text(ROWS_CSV)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=T", "commit", "-qm", "init")
    ws = open_ws(root)
    v1 = add_dataset(ws, name="rows", path=source).version
    outcome = sweep(ws, "lr=0.5,1")
    assert outcome.ok, outcome.statuses
    pinned = ["data/rows.csv", True, f"rows@{v1.version}"]
    assert all(t.plan["inputs"] == [pinned] for t in outcome.record.trials)
    for m in manifests(ws, outcome).values():
        assert (m.inputs[0].dataset, m.inputs[0].version) == ("rows", v1.version)
        assert m.metrics["rows"].value == 12
    source.write_text(ROWS_CSV + "12,0,4\n")
    v2 = add_dataset(ws, name="rows", path=source).version
    assert v2.version != v1.version
    again = load_sweep(ws, outcome.record.id)  # the record still names v1
    assert all(t.plan["inputs"] == [pinned] for t in again.trials)
