"""Pipelines on real small git projects with real runs: what `repro` runs, skips and restores,
and what `status` says about it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest

from keel.base.canonical import JsonValue
from keel.errors import ValidationError
from keel.ops.pipeline import Action, StageStatus, pipeline_status
from keel.ops.pipeline_run import Outcome, ReproOptions, StageResult, repro
from keel.ops.pipeline_state import STATE_FILE
from keel.ops.stagekey import manifest_json
from keel.ops.workspace import Workspace
from tests.projects import make_git_project

KEEL_YAML = """\
project: pipe
params:
  c: {type: float, default: 1.0}
experiments:
  prepare:
    command: python prepare.py
    params: []
    inputs: [data/raw.csv]
    outputs: [data/clean.csv]
  train:
    command: python train.py --c {c}
    params: [c]
    inputs: [data/clean.csv]
    outputs: [out/model.txt]
  evaluate:
    command: python evaluate.py
    params: []
    inputs: [out/model.txt]
    outputs: [out/score.txt]
  side:
    command: python side.py
    params: []
    outputs: [out/side.txt]
"""
FILES = {
    "keel.yaml": KEEL_YAML,
    ".gitignore": ".keel/\nout/\ndata/clean.csv\n",
    "data/raw.csv": "x,y\n1,2\n3,4\n",
    "prepare.py": (
        "rows = open('data/raw.csv').read().split()\n"
        "open('data/clean.csv', 'w').write('\\n'.join(r.strip() for r in rows) + '\\n')\n"
    ),
    "helper.py": "def scale(x):\n    return x * 2\n",
    "train.py": (
        "import argparse, os\n"
        "from helper import scale\n"
        "ap = argparse.ArgumentParser()\n"
        "ap.add_argument('--c', type=float)\n"
        "a = ap.parse_args()\n"
        "n = len(open('data/clean.csv').read().split())\n"
        "os.makedirs('out', exist_ok=True)\n"
        "open('out/model.txt', 'w').write(f'{scale(a.c) * n}\\n')\n"
    ),
    "evaluate.py": "open('out/score.txt', 'w').write('score ' + open('out/model.txt').read())\n",
    "side.py": "import os\nos.makedirs('out', exist_ok=True)\n"
    "open('out/side.txt', 'w').write('s')\n",
}


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.pop("PYTHONHASHSEED", None)
    return env


def workspace(root: Path) -> Workspace:
    return Workspace.open(root, environ=environ())


def status(root: Path, *targets: str, force: bool = False) -> dict[str, StageStatus]:
    found = pipeline_status(workspace(root), targets, force=force)
    return {s.name: s for s in found.stages}


def run(root: Path, *targets: str, **options: object) -> dict[str, StageResult]:
    ws = workspace(root)
    try:
        result = repro(ws, targets, options=ReproOptions(**options))  # type: ignore[arg-type]
    finally:
        ws.close()
    return {s.name: s for s in result.stages}


def runs(root: Path) -> list[str]:
    return sorted(name for name, _ in workspace(root).objects.list_refs("runs/"))


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new))


def make_pipeline_project(root: Path, files: Mapping[str, str] = FILES) -> Path:
    """The four-stage demo pipeline (prepare → train → evaluate, and side), committed."""
    return make_git_project(root, dict(files))


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo pipeline after one full `repro` (copied by each test that needs it)."""
    root = make_pipeline_project(tmp_path_factory.mktemp("template") / "pipe")
    results = run(root)
    assert {r.outcome for r in results.values()} == {Outcome.RAN}, results
    return root


@pytest.fixture
def project(ran_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of the pipeline that ran once."""
    return Path(shutil.copytree(ran_once, tmp_path / "pipe", symlinks=True))


def test_status_of_a_new_pipeline_says_never_run_and_what_waits_upstream(tmp_path: Path) -> None:
    root = make_pipeline_project(tmp_path / "pipe")
    found = status(root)
    assert list(found) == ["prepare", "train", "evaluate", "side"]
    assert found["prepare"].reasons == ("never run",)
    assert found["train"].reasons == ("upstream prepare will run", "never run")
    assert found["evaluate"].reasons == ("upstream train will run", "never run")
    assert all(s.action is Action.RUN for s in found.values())


def test_a_second_repro_skips_every_stage_as_up_to_date(project: Path) -> None:
    before = runs(project)
    results = run(project)
    assert {r.outcome for r in results.values()} == {Outcome.UP_TO_DATE}
    assert all(r.reasons == ("up to date",) for r in results.values())
    assert runs(project) == before
    assert {s.action for s in status(project).values()} == {Action.UP_TO_DATE}


def test_a_comment_or_whitespace_edit_of_the_script_keeps_it_cached(project: Path) -> None:
    edit(project, "train.py", "import argparse, os\n", "import argparse, os  # tools\n\n\n")
    edit(project, "train.py", "a = ap.parse_args()", "a = ap.parse_args( )  # parse")
    assert {s.action for s in status(project).values()} == {Action.UP_TO_DATE}


def test_a_real_code_change_reruns_the_stage_and_names_the_file(project: Path) -> None:
    edit(project, "train.py", "scale(a.c) * n", "scale(a.c) * n + 1")
    found = status(project)
    assert found["train"].reasons == ("code train.py changed",)
    assert found["evaluate"].reasons == ("upstream train will run",)
    assert found["prepare"].action is Action.UP_TO_DATE
    results = run(project)
    assert results["train"].outcome is Outcome.RAN
    assert results["train"].reasons == ("code train.py changed",)
    assert results["evaluate"].reasons == ("input out/model.txt changed",)


def test_a_change_in_an_imported_local_module_reruns_the_importer(project: Path) -> None:
    edit(project, "helper.py", "x * 2", "x * 3")
    found = status(project)
    assert found["train"].reasons == ("code helper.py changed",)
    assert found["prepare"].action is Action.UP_TO_DATE


def test_a_catalog_param_the_stage_does_not_use_keeps_it_cached(project: Path) -> None:
    edit(project, "keel.yaml", "params:\n  c:", "params:\n  unused: {type: int, default: 3}\n  c:")
    assert {s.action for s in status(project).values()} == {Action.UP_TO_DATE}


def test_a_default_moved_without_changing_its_value_keeps_the_stage_cached(project: Path) -> None:
    edit(project, "keel.yaml", "params: [c]\n", "params: [c]\n    defaults: {c: 1.0}\n")
    edit(project, "keel.yaml", "{type: float, default: 1.0}", "{type: float, default: 7.0}")
    assert {s.action for s in status(project).values()} == {Action.UP_TO_DATE}


def test_changing_a_used_param_names_its_old_and_new_value(project: Path) -> None:
    edit(project, "keel.yaml", "default: 1.0", "default: 0.5")
    found = status(project)
    assert found["train"].reasons == ("param c: 1.0 → 0.5",)
    assert found["evaluate"].reasons == ("upstream train will run",)
    assert found["side"].action is Action.UP_TO_DATE


def test_changed_input_data_reruns_that_stage_and_what_is_downstream(project: Path) -> None:
    (project / "data" / "raw.csv").write_text("x,y\n1,2\n3,4\n5,6\n")
    found = status(project)
    assert found["prepare"].reasons == ("input data/raw.csv changed",)
    assert found["train"].reasons == ("upstream prepare will run",)
    assert found["evaluate"].reasons == ("upstream train will run",)
    assert found["side"].action is Action.UP_TO_DATE
    results = run(project)
    assert [results[n].outcome for n in ("prepare", "train", "evaluate", "side")] == [
        Outcome.RAN,
        Outcome.RAN,
        Outcome.RAN,
        Outcome.UP_TO_DATE,
    ]
    assert results["train"].reasons == ("input data/clean.csv changed",)


def test_a_deleted_output_is_restored_from_the_store_not_rerun(project: Path) -> None:
    score = project / "out" / "score.txt"
    content = score.read_bytes()
    score.unlink()
    found = status(project)
    assert found["evaluate"].action is Action.RESTORE
    assert found["evaluate"].reasons == ("output out/score.txt missing (will be restored)",)
    before = runs(project)
    results = run(project)
    assert results["evaluate"].outcome is Outcome.RESTORED
    assert results["evaluate"].restored == ("out/score.txt",)
    assert score.read_bytes() == content
    assert runs(project) == before


def test_an_output_that_differs_is_replaced_by_the_recorded_one_and_said_so(
    project: Path,
) -> None:
    model = project / "out" / "model.txt"
    content = model.read_bytes()
    model.write_text("tampered\n")
    found = status(project)
    assert found["train"].action is Action.RESTORE
    assert "differs from run" in found["train"].reasons[0]
    results = run(project)
    assert results["train"].outcome is Outcome.RESTORED
    assert "replaced by the recorded one" in results["train"].reasons[0]
    assert results["evaluate"].outcome is Outcome.UP_TO_DATE
    assert model.read_bytes() == content


def test_going_back_to_a_previous_config_is_a_cache_hit(project: Path) -> None:
    first_model = (project / "out" / "model.txt").read_bytes()
    edit(project, "keel.yaml", "default: 1.0", "default: 0.5")
    assert run(project)["train"].outcome is Outcome.RAN
    edit(project, "keel.yaml", "default: 0.5", "default: 1.0")
    found = status(project)
    assert found["train"].action is Action.RESTORE
    before = runs(project)
    results = run(project)
    assert results["train"].outcome is Outcome.RESTORED
    assert results["evaluate"].outcome is Outcome.RESTORED
    assert runs(project) == before
    assert (project / "out" / "model.txt").read_bytes() == first_model
    assert status(project)["train"].reasons == ("up to date",)


def test_a_target_runs_with_its_upstream_only_and_force_reruns_it(project: Path) -> None:
    results = run(project, "train", force=True)
    assert list(results) == ["prepare", "train"]
    assert {r.outcome for r in results.values()} == {Outcome.RAN}
    assert results["train"].reasons == ("forced (--force)",)


def test_a_failed_stage_skips_only_what_depends_on_it(tmp_path: Path) -> None:
    files = {
        **FILES,
        "train.py": "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n",
    }
    root = make_pipeline_project(tmp_path / "pipe", files)
    results = run(root)
    assert results["prepare"].outcome is Outcome.RAN
    assert results["train"].outcome is Outcome.FAILED
    assert results["train"].error is not None
    assert "exit code 3: boom" in results["train"].error
    assert results["evaluate"].outcome is Outcome.SKIPPED
    assert results["evaluate"].reasons == ("upstream train failed",)
    assert results["side"].outcome is Outcome.RAN
    found = status(root)
    assert found["prepare"].action is Action.UP_TO_DATE
    assert found["train"].action is Action.RUN
    assert any("failed" in r for r in found["train"].reasons)


def _interval(root: Path, run_id: str | None) -> tuple[datetime, datetime, Mapping[str, JsonValue]]:
    assert run_id is not None
    manifest = manifest_json(workspace(root), run_id)
    assert manifest is not None
    info = manifest["run"]
    assert isinstance(info, dict)
    start, end = info["started_at"], info["ended_at"]
    assert isinstance(start, str) and isinstance(end, str)
    return datetime.fromisoformat(start), datetime.fromisoformat(end), info


RENDEZVOUS = """\
import os, sys, time
me, other = sys.argv[1], sys.argv[2]
open(me + ".started", "w").close()
deadline = time.time() + 60
while not os.path.exists(other + ".started"):  # proof that both run at once
    if time.time() > deadline:
        sys.exit(f"{other} did not start while {me} ran")
    time.sleep(0.02)
os.makedirs("out", exist_ok=True)
open(f"out/{me}.txt", "w").write(me)
"""


def test_independent_stages_run_side_by_side_in_a_process_pool(tmp_path: Path) -> None:
    files = {
        "keel.yaml": (
            "project: par\nexperiments:\n"
            "  a:\n    command: python meet.py a b\n    outputs: [out/a.txt]\n"
            "  b:\n    command: python meet.py b a\n    outputs: [out/b.txt]\n"
            "  c:\n    command: python c.py\n    inputs: [out/a.txt, out/b.txt]\n"
            "    outputs: [out/c.txt]\n"
        ),
        ".gitignore": ".keel/\nout/\n*.started\n",
        "meet.py": RENDEZVOUS,
        "c.py": "a, b = open('out/a.txt').read(), open('out/b.txt').read()\n"
        "open('out/c.txt', 'w').write(a + b)\n",
    }
    root = make_git_project(tmp_path / "par", files)
    results = run(root, executor="pool", jobs=2)
    assert {r.outcome for r in results.values()} == {Outcome.RAN}, results
    _, a_end, a_info = _interval(root, results["a"].run)
    _, b_end, _ = _interval(root, results["b"].run)
    c_start, _, _ = _interval(root, results["c"].run)
    assert c_start >= max(a_end, b_end)  # c waited for both
    executor = a_info["executor"]
    assert isinstance(executor, dict)
    assert (executor["name"], executor["parallelism"]) == ("pool", 2)
    assert (root / "out" / "c.txt").read_text() == "ab"


def test_a_stage_run_records_its_key_and_components_in_the_manifest(project: Path) -> None:
    state = json.loads((project / ".keel" / STATE_FILE).read_text())
    entry = state["stages"]["train"]
    manifest = manifest_json(workspace(project), entry["run"])
    assert manifest is not None
    facet = manifest["stage"]
    assert isinstance(facet, dict)
    assert facet["name"] == "train"
    assert facet["key"] == entry["key"]
    components = facet["components"]
    assert isinstance(components, dict)
    assert components["params"] == {"c": 1.0}
    assert sorted(components["code"]) == ["helper.py", "train.py"]  # type: ignore[arg-type]
    assert list(components["inputs"]) == ["data/clean.csv"]  # type: ignore[call-overload]


def test_the_stage_state_is_rebuilt_from_the_manifests_when_lost(project: Path) -> None:
    (project / ".keel" / STATE_FILE).unlink()
    assert {s.action for s in status(project).values()} == {Action.UP_TO_DATE}
    assert (project / ".keel" / STATE_FILE).exists()


def test_declared_deps_are_part_of_the_key(tmp_path: Path) -> None:
    files = {
        **FILES,
        "keel.yaml": KEEL_YAML.replace(
            "    outputs: [out/side.txt]\n", "    outputs: [out/side.txt]\n    deps: [conf]\n"
        ),
        "conf/side.yaml": "size: 1\n",
    }
    root = make_pipeline_project(tmp_path / "pipe", files)
    run(root, "side")
    (root / "conf" / "side.yaml").write_text("size: 2\n")
    (root / "conf" / "more.yaml").write_text("new: 1\n")
    assert status(root, "side")["side"].reasons == (
        "code conf/more.yaml added",
        "code conf/side.yaml changed",
    )


def test_a_package_change_is_named_with_both_versions(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.ops.stagekey as stagekey

    real = stagekey.capture_environment

    def upgraded(**kwargs: object) -> dict[str, JsonValue]:
        facet = real(**kwargs)  # type: ignore[arg-type]
        packages = dict(facet["packages"])  # type: ignore[arg-type]
        packages["click"] = "999.0"
        packages["keeldemo"] = "1.0"
        return {**facet, "packages": packages}

    monkeypatch.setattr(stagekey, "environment_fingerprint", lambda *a: "another-environment")
    monkeypatch.setattr(stagekey, "capture_environment", upgraded)
    reasons = status(project)["side"].reasons
    assert len(reasons) == 2
    assert reasons[0].startswith("package click ") and reasons[0].endswith(" → 999.0")
    assert reasons[1] == "package keeldemo 1.0 added"


def test_a_dataset_input_waits_for_the_stage_that_registers_it(tmp_path: Path) -> None:
    files = {
        "keel.yaml": (
            "project: ds\nexperiments:\n"
            "  use:\n    command: python use.py\n    inputs: [{dataset: feats}]\n"
            "    outputs: [out/used.txt]\n"
            "  make:\n    command: python make.py\n"
            "    outputs: [{path: out/feats.csv, dataset: feats}]\n"
        ),
        ".gitignore": ".keel/\nout/\ndata/\n",
        "make.py": "import os\nos.makedirs('out', exist_ok=True)\n"
        "open('out/feats.csv', 'w').write('a,b\\n1,2\\n')\n",
        "use.py": "open('out/used.txt', 'w').write(open('data/feats').read())\n",
    }
    root = make_git_project(tmp_path / "ds", files)
    assert status(root)["use"].reasons == ("upstream make will run", "never run")
    results = run(root)
    assert list(results) == ["make", "use"]
    assert {r.outcome for r in results.values()} == {Outcome.RAN}
    assert (root / "out" / "used.txt").read_text() == "a,b\n1,2\n"
    assert {s.action for s in status(root).values()} == {Action.UP_TO_DATE}


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        pytest.param(
            "project: bad\nexperiments:\n"
            "  a:\n    command: python a.py\n    inputs: [y]\n    outputs: [x]\n"
            "  b:\n    command: python b.py\n    inputs: [x]\n    outputs: [y]\n",
            "pipeline cycle: a → b → a",
            id="cycle",
        ),
        pytest.param(
            "project: bad\nexperiments:\n"
            "  a:\n    command: python a.py\n    outputs: [out/x.csv]\n"
            "  b:\n    command: python b.py\n    outputs: [out/x.csv]\n",
            "stages 'a' and 'b' both write out/x.csv",
            id="same-output",
        ),
    ],
)
def test_a_bad_pipeline_is_refused_before_anything_runs(
    tmp_path: Path, yaml: str, message: str
) -> None:
    root = make_git_project(tmp_path / "bad", {"keel.yaml": yaml, ".gitignore": ".keel/\n"})
    with pytest.raises(ValidationError) as info:
        run(root)
    assert message in str(info.value)
    assert runs(root) == []


def test_a_folder_output_is_restored_exactly(tmp_path: Path) -> None:
    files = {
        "keel.yaml": "project: dirs\nexperiments:\n  plot:\n    command: python plot.py\n"
        "    outputs: [out/plots]\n",
        ".gitignore": ".keel/\nout/\n",
        "plot.py": "import os\nos.makedirs('out/plots/sub', exist_ok=True)\n"
        "open('out/plots/a.txt', 'w').write('a')\nopen('out/plots/sub/b.txt', 'w').write('b')\n",
    }
    root = make_git_project(tmp_path / "dirs", files)
    run(root)
    (root / "out" / "plots" / "a.txt").unlink()
    (root / "out" / "plots" / "stray.txt").write_text("x")
    assert status(root)["plot"].action is Action.RESTORE
    assert run(root)["plot"].outcome is Outcome.RESTORED
    found = sorted(p.relative_to(root).as_posix() for p in (root / "out").rglob("*.txt"))
    assert found == ["out/plots/a.txt", "out/plots/sub/b.txt"]
    assert status(root)["plot"].action is Action.UP_TO_DATE


@pytest.mark.parametrize(
    ("dep", "problem"),
    [("/etc/passwd", "is absolute"), ("../elsewhere", "leads outside the project")],
    ids=["absolute", "outside"],
)
def test_deps_are_checked_like_every_other_path(tmp_path: Path, dep: str, problem: str) -> None:
    from keel.spec.project import load_project

    yaml = f"project: d\nexperiments:\n  a:\n    command: python a.py\n    deps: [{dep}]\n"
    (tmp_path / "keel.yaml").write_text(yaml)
    with pytest.raises(ValidationError) as info:
        load_project(tmp_path / "keel.yaml")
    assert "experiments.a.deps[0]" in str(info.value) and problem in str(info.value)
