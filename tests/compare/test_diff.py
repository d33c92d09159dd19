"""diff_manifests: every kind of change found, named, ranked and summarised; no false alarms."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from keel.base.canonical import JsonValue, canonical_json
from keel.compare.diff import (
    Change,
    ChangeKind,
    CodeFacts,
    Commit,
    ManifestDiff,
    diff_environment,
    diff_manifests,
    same,
)
from keel.model.manifest import (
    ExecutorInfo,
    FileRecord,
    InputRecord,
    Manifest,
    MetricRecord,
    ParamValue,
)
from keel.model.run import RunStatus

FIXTURE = Path(__file__).parents[1] / "model" / "fixtures" / "manifest_v1.json"
COMMIT_B = "2" * 40


@pytest.fixture
def base() -> Manifest:
    """A real sealed manifest (the v1 fixture)."""
    return Manifest.from_json(json.loads(FIXTURE.read_text()))


def _rerun(m: Manifest) -> Manifest:
    """The same run again: new id, times, pid, logs and fingerprint, nothing else."""
    run = replace(
        m.run,
        id="06g0s999zzzz",
        created_at="2026-11-30T10:00:00.000000Z",
        started_at="2026-11-30T10:00:00.100000Z",
        ended_at="2026-11-30T10:00:01.000000Z",
        duration_s=0.9,
        pid=4242,
    )
    logs = {k: replace(v, digest="blake3:" + "f" * 64) for k, v in m.logs.items()}
    code = {**m.code, "fingerprint": "blake3:" + "e" * 64}
    return replace(m, run=run, logs=logs, code=code)


def _params(m: Manifest, **values: tuple[JsonValue, str]) -> Manifest:
    params = dict(m.config.params)
    params.update({k: ParamValue(value=v, source=s) for k, (v, s) in values.items()})
    return replace(m, config=replace(m.config, params=params))


def _keys(diff: ManifestDiff, kind: ChangeKind) -> list[str]:
    return [c.key for c in diff.of(kind)]


def _one(diff: ManifestDiff, kind: ChangeKind, key: str) -> Change:
    found = [c for c in diff.of(kind) if c.key == key]
    assert len(found) == 1, diff.changes
    return found[0]


# -- no false alarms ---------------------------------------------------------------------------


def test_runs_differing_only_in_ids_times_pid_and_logs_have_no_difference(base: Manifest) -> None:
    diff = diff_manifests(base, _rerun(base))
    assert not diff
    assert diff.changes == ()
    assert diff.summary() == "no difference"


def test_all_fields_reports_the_hidden_ones(base: Manifest) -> None:
    diff = diff_manifests(base, _rerun(base), all_fields=True)
    assert diff
    assert _keys(diff, ChangeKind.RUN) == [
        "id", "created_at", "started_at", "ended_at", "duration_s", "pid",
        "logs.stderr", "logs.stdout",
    ]  # fmt: skip
    assert _keys(diff, ChangeKind.CODE) == ["fingerprint"]


def test_a_value_stored_as_1_equals_1_point_0(base: Manifest) -> None:
    rows = base.metrics["rows"]
    assert rows.value == 2.0
    a = _params(base, lr=(1.0, "cli"))
    b = _params(_rerun(base), lr=(1, "cli"))
    b = replace(b, metrics={**base.metrics, "rows": replace(rows, value=2)})
    hardware = {**base.hardware, "memory_bytes": float(str(base.hardware["memory_bytes"]))}
    assert not diff_manifests(a, replace(b, hardware=hardware))


def test_a_manifest_read_back_from_canonical_json_equals_the_one_written(base: Manifest) -> None:
    written = _params(base, lr=(1.0, "cli"))
    read_back = Manifest.from_json(json.loads(canonical_json(written.to_json())))
    assert (
        read_back.config.params["lr"].value == 1
        and type(read_back.config.params["lr"].value) is int
    )
    assert not diff_manifests(written, read_back)


def test_json_equality_is_numeric_but_keeps_booleans_apart() -> None:
    assert same(1, 1.0) and same({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not same(True, 1) and not same(0, False) and not same(None, 0)
    assert same({"x": 1, "y": 2}, {"y": 2, "x": 1})
    assert not same([1, 2], [2, 1])


def test_the_same_package_listing_captured_twice_is_no_difference(base: Manifest) -> None:
    env = dict(base.environment)
    packages = env["packages"]
    assert isinstance(packages, dict)
    env["packages"] = dict(reversed(list(packages.items())))
    assert diff_environment(base.environment, env) == ()
    assert not diff_manifests(base, replace(_rerun(base), environment=env))


# -- config --------------------------------------------------------------------------------------


def test_edited_catalog_default_names_the_catalog_layer_on_both_sides(base: Manifest) -> None:
    b = _params(base, lr=(0.2, "catalog"))
    b = replace(b, config=replace(b.config, spec_digest="blake3:" + "1" * 64))
    diff = diff_manifests(base, b)
    change = _one(diff, ChangeKind.CONFIG, "params.lr")
    assert (change.a, change.b) == (0.1, 0.2)
    assert change.note == "default changed in keel.yaml (source catalog in both)"
    assert _keys(diff, ChangeKind.CONFIG) == ["params.lr", "keel.yaml"]
    assert diff.summary() == "config: 1 change"


def test_command_line_override_is_named(base: Manifest) -> None:
    diff = diff_manifests(base, _params(base, lr=(0.5, "cli")))
    change = _one(diff, ChangeKind.CONFIG, "params.lr")
    assert change.note == "source catalog → cli: overridden on the command line in B"
    back = _one(
        diff_manifests(_params(base, lr=(0.5, "cli")), base), ChangeKind.CONFIG, "params.lr"
    )
    assert back.note == "source cli → catalog: overridden on the command line in A"


@pytest.mark.parametrize(
    ("source", "note"),
    [
        pytest.param("experiment", "experiment default changed in keel.yaml", id="experiment"),
        pytest.param("profile", "profile value changed", id="profile"),
        pytest.param("cli", "set differently on the command line", id="cli"),
    ],
)
def test_each_layer_explains_a_change_within_it(base: Manifest, source: str, note: str) -> None:
    a, b = _params(base, lr=(0.3, source)), _params(base, lr=(0.4, source))
    assert _one(diff_manifests(a, b), ChangeKind.CONFIG, "params.lr").note == (
        f"{note} (source {source} in both)"
    )


def test_same_value_from_another_layer_is_hidden_unless_all(base: Manifest) -> None:
    b = _params(base, lr=(0.1, "cli"))
    assert not diff_manifests(base, b)
    change = _one(diff_manifests(base, b, all_fields=True), ChangeKind.CONFIG, "params.lr")
    assert change.note == "same value; source catalog → cli"


def test_param_only_in_one_run_says_where(base: Manifest) -> None:
    b = _params(base, extra=("x", "cli"))
    change = _one(diff_manifests(base, b), ChangeKind.CONFIG, "params.extra")
    assert (change.a, change.b, change.note) == (None, "x", "only in B (source cli)")


def test_experiment_definition_and_profile_changes_rank_after_params(base: Manifest) -> None:
    experiment = {**base.config.experiment, "inputs": [], "command": "python other.py"}
    config = replace(base.config, experiment=experiment, profile={"strict": True})
    b = _params(replace(base, config=config), epochs=(9, "profile"))
    b = replace(b, run=replace(b.run, profile="prod"))
    keys = _keys(diff_manifests(base, b), ChangeKind.CONFIG)
    assert keys[0] == "params.epochs"
    assert keys[1:3] == ["experiment.command", "experiment.inputs"]
    assert keys.index("profile") < keys.index("profile.strict")


def test_argv_is_shown_only_when_nothing_else_explains_it(base: Manifest) -> None:
    assert base.config.command is not None
    argv = (*base.config.command, "--extra")
    b = replace(base, config=replace(base.config, command=argv))
    assert _keys(diff_manifests(base, b), ChangeKind.CONFIG) == ["command"]
    explained = _params(b, lr=(0.2, "cli"))
    assert _keys(diff_manifests(base, explained), ChangeKind.CONFIG) == ["params.lr"]
    assert "command" in _keys(diff_manifests(base, explained, all_fields=True), ChangeKind.CONFIG)


# -- code ----------------------------------------------------------------------------------------


def test_commits_between_and_files_changed_come_from_the_code_facts(base: Manifest) -> None:
    b = replace(base, code={**base.code, "commit": COMMIT_B})
    facts = CodeFacts(
        ahead=(Commit(id=COMMIT_B, subject="tune"), Commit(id="3" * 40, subject="fix")),
        ahead_count=2,
        files=("train.py", "keel.yaml"),
    )
    diff = diff_manifests(base, b, code_facts=facts)
    assert _keys(diff, ChangeKind.CODE) == ["commit", "commits", "files changed"]
    assert _one(diff, ChangeKind.CODE, "commit").note == "B is 2 commits ahead of A"
    commits = _one(diff, ChangeKind.CODE, "commits")
    assert commits.a == [] and commits.b == ["2222222222 tune", "3333333333 fix"]
    assert _one(diff, ChangeKind.CODE, "files changed").b == ["train.py", "keel.yaml"]
    assert diff.summary() == "code: 2 commits"


def test_diverged_history_and_missing_commit_are_said(base: Manifest) -> None:
    b = replace(base, code={**base.code, "commit": COMMIT_B})
    diverged = CodeFacts(ahead_count=1, behind_count=2)
    note = _one(diff_manifests(base, b, code_facts=diverged), ChangeKind.CODE, "commit").note
    assert note is not None and "diverged" in note
    gone = CodeFacts(missing=(COMMIT_B,))
    diff = diff_manifests(base, b, code_facts=gone)
    assert _one(diff, ChangeKind.CODE, "commit").note == (
        "2222222222 is not in the repository any more"
    )
    assert _keys(diff, ChangeKind.CODE) == ["commit"]


def test_dirty_tree_and_differing_patch_are_reported(base: Manifest) -> None:
    dirty = {**base.code, "dirty": True, "diff": "blake3:" + "a" * 64, "diff_files": ["train.py"]}
    diff = diff_manifests(base, replace(base, code=dirty))
    assert _keys(diff, ChangeKind.CODE) == ["dirty", "patch"]
    assert _one(diff, ChangeKind.CODE, "patch").note == (
        "uncommitted changes differ (A: none; B: train.py)"
    )
    other = {**dirty, "diff": "blake3:" + "b" * 64}
    both = diff_manifests(replace(base, code=dirty), replace(base, code=other))
    assert _keys(both, ChangeKind.CODE) == ["patch"]
    assert both.summary() == "code: uncommitted changes"


def test_untracked_files_are_compared_by_digest(base: Manifest) -> None:
    a = {**base.code, "untracked": [{"path": "x.py", "digest": "blake3:" + "1" * 64}]}
    b = {**base.code, "untracked": [{"path": "x.py", "digest": "blake3:" + "2" * 64},
                                    {"path": "y.py", "digest": "blake3:" + "3" * 64}]}  # fmt: skip
    diff = diff_manifests(replace(base, code=a), replace(base, code=b))
    assert [(c.key, c.note) for c in diff.of(ChangeKind.CODE)] == [
        ("untracked x.py", "untracked file changed"),
        ("untracked y.py", "untracked file only in B"),
    ]


def test_code_not_captured_on_one_side_is_one_change(base: Manifest) -> None:
    b = replace(base, code={"captured": False, "reason": "not a git repository"})
    diff = diff_manifests(base, b)
    assert [(c.key, c.a, c.b) for c in diff.of(ChangeKind.CODE)] == [
        ("captured", "captured", "not captured: not a git repository")
    ]


# -- seeds, data, environment, hardware, executor -------------------------------------------------


def test_seed_changes_are_their_own_group(base: Manifest) -> None:
    seeds = replace(base.seeds, root=7, source="cli", pythonhashseed="7")
    diff = diff_manifests(base, replace(base, seeds=seeds))
    assert _keys(diff, ChangeKind.SEED) == ["root", "PYTHONHASHSEED"]
    assert _one(diff, ChangeKind.SEED, "root").note == "root seed (source experiment → cli)"


def test_changed_added_and_removed_inputs_with_content_summary(base: Manifest) -> None:
    changed = replace(base.inputs[0], digest="blake3:" + "9" * 64, size=20)
    added = InputRecord(path="data/new.csv", kind="file", digest="blake3:" + "8" * 64)
    b = replace(base, inputs=(changed, added))
    diff = diff_manifests(base, b, input_facts={"data/points.csv": "+1 row (2 → 3 rows)"})
    assert [(c.key, c.note) for c in diff.of(ChangeKind.DATA)] == [
        ("data/new.csv", "only in B"),
        ("data/points.csv", "content changed: +1 row (2 → 3 rows)"),
    ]
    assert diff.summary() == "data: 2 inputs"
    plain = diff_manifests(base, replace(base, inputs=(changed,)))
    assert _one(plain, ChangeKind.DATA, "data/points.csv").note == (
        "content changed (12 → 20 bytes)"
    )


def test_input_changed_during_one_run_is_noted(base: Manifest) -> None:
    during = replace(base.inputs[0], changed_during_run=True, digest_after="blake3:" + "7" * 64)
    diff = diff_manifests(base, replace(base, inputs=(during,)))
    assert _one(diff, ChangeKind.DATA, "data/points.csv").note == "changed during run in B"


def test_packages_upgraded_downgraded_added_and_removed() -> None:
    a: dict[str, JsonValue] = {"captured": True, "packages": {"numpy": "2.3.1", "rich": "13.9",
                               "six": "1.16", "torch": "2.1.0+cu121"}}  # fmt: skip
    b: dict[str, JsonValue] = {"captured": True, "packages": {"numpy": "2.4.0", "rich": "13.7",
                               "torch": "2.1.0+cpu", "attrs": "23.1"}}  # fmt: skip
    assert [(c.key, c.a, c.b, c.note) for c in diff_environment(a, b)] == [
        ("attrs", None, "23.1", "package added"),
        ("numpy", "2.3.1", "2.4.0", "package upgraded"),
        ("rich", "13.9", "13.7", "package downgraded"),
        ("six", "1.16", None, "package removed"),
        ("torch", "2.1.0+cu121", "2.1.0+cpu", "package changed"),
    ]
    assert all(c.kind is ChangeKind.ENVIRONMENT for c in diff_environment(a, b))


def test_python_platform_variables_locks_and_blas_are_compared(base: Manifest) -> None:
    env = json.loads(json.dumps(base.environment))
    env["python"]["version"] = "3.12.1"
    env["python"]["os_release"]["PRETTY_NAME"] = "Debian GNU/Linux 13 (trixie)"
    env["env_vars"]["OMP_NUM_THREADS"] = "4"
    env["lock_files"]["requirements.txt"] = "blake3:" + "5" * 64
    env["blas"]["threadpools"][0]["version"] = "0.3.27"
    env["packages"]["numpy"] = "2.5.0"
    changes = diff_environment(base.environment, env)
    assert [c.key for c in changes] == [
        "python.version", "numpy", "lock.requirements.txt", "env.OMP_NUM_THREADS",
        "blas.threadpools", "os",
    ]  # fmt: skip
    notes = {c.key: c.note for c in changes}
    assert notes["env.OMP_NUM_THREADS"] == "thread setting set only in B"
    summary = diff_manifests(base, replace(base, environment=env)).summary()
    assert summary == "environment: 1 package, 5 other changes"


def test_environment_not_captured_is_one_change(base: Manifest) -> None:
    lost: dict[str, JsonValue] = {"captured": False, "reason": "probe timed out"}
    assert [(c.key, c.b) for c in diff_environment(base.environment, lost)] == [
        ("captured", "not captured: probe timed out")
    ]


def test_hardware_and_executor_changes(base: Manifest) -> None:
    hardware = {**base.hardware, "cpu_logical": 8, "gpus": [{"name": "A100"}]}
    run = replace(base.run, executor=ExecutorInfo(name="pool", parallelism=4))
    diff = diff_manifests(base, replace(base, hardware=hardware, run=run))
    assert _keys(diff, ChangeKind.HARDWARE) == ["cpu_logical", "gpus"]
    assert _keys(diff, ChangeKind.EXECUTOR) == ["name", "parallelism"]


# -- outputs, metrics, run -------------------------------------------------------------------------


def test_outputs_and_artifacts_that_differ(base: Manifest) -> None:
    model = replace(base.outputs[0], digest="blake3:" + "6" * 64)
    plot = FileRecord(path="out/extra/plot.txt", kind="missing")
    diff = diff_manifests(base, replace(base, outputs=(model, base.outputs[1]), artifacts=(plot,)))
    assert [(c.key, c.note) for c in diff.of(ChangeKind.OUTPUTS)] == [
        ("out/model.txt", "content changed"),
        ("artifact out/extra/plot.txt", "file → missing"),
    ]
    assert diff.summary() == "outputs: 2 outputs"


def test_metric_delta_is_judged_against_its_tolerance(base: Manifest) -> None:
    metrics = dict(base.metrics)
    metrics["score"] = replace(base.metrics["score"], value=0.75)
    metrics["rows"] = replace(base.metrics["rows"], value=3.0)
    metrics["auc"] = MetricRecord(value=0.9, source="file", goal="max", tolerance=0.01)
    a_metrics = {**base.metrics, "auc": replace(metrics["auc"], value=0.895)}
    diff = diff_manifests(replace(base, metrics=a_metrics), replace(base, metrics=metrics))
    notes = {c.key: (c.a, c.b, c.note) for c in diff.of(ChangeKind.METRICS)}
    assert list(notes) == ["auc", "score", "rows"]  # declared (with a goal) first
    assert notes["score"] == (0.5, 0.75, "+50.00%, better, beyond tolerance 0")
    assert notes["auc"][2] == "+0.56%, better, within tolerance 0.01"
    assert notes["rows"][2] == "+50.00%, no tolerance declared"
    assert diff.summary() == "metrics: 3 metrics (1 beyond tolerance)"


def test_same_final_metric_with_a_different_series(base: Manifest) -> None:
    loss = base.metrics["loss"]
    metrics = {**base.metrics, "loss": replace(loss, series=loss.series[1:])}
    change = _one(diff_manifests(base, replace(base, metrics=metrics)), ChangeKind.METRICS,
                  "loss series")  # fmt: skip
    assert (change.a, change.b) == (5, 4)


def test_status_is_shown_and_identity_is_hidden(base: Manifest) -> None:
    run = replace(_rerun(base).run, status=RunStatus.FAILED, exit_code=3)
    diff = diff_manifests(base, replace(base, run=run))
    assert _keys(diff, ChangeKind.RUN) == ["status", "exit_code"]
    status = _one(diff, ChangeKind.RUN, "status")
    assert (status.a, status.b) == ("succeeded", "failed") and type(status.b) is str
    assert diff.summary() == "run: 2 changes"


# -- ranking and the summary line ---------------------------------------------------------------


def test_groups_come_in_rank_order_with_one_summary_line(base: Manifest) -> None:
    env = json.loads(json.dumps(base.environment))
    env["packages"].update({"numpy": "2.5.0", "pytest": "9.1.0", "rich": "14.0.0"})
    b = _params(base, lr=(0.3, "cli"))
    b = replace(
        b,
        environment=env,
        code={**base.code, "commit": COMMIT_B},
        inputs=(replace(base.inputs[0], digest="blake3:" + "9" * 64),),
        run=replace(b.run, status=RunStatus.FAILED),
    )
    facts = CodeFacts(ahead=(Commit(id=COMMIT_B, subject="x"),), ahead_count=1)
    diff = diff_manifests(base, b, code_facts=facts)
    kinds = [c.kind for c in diff.changes]
    assert kinds == sorted(kinds, key=list(ChangeKind).index)
    assert diff.summary() == (
        "code: 1 commit · config: 1 change · data: 1 input · environment: 3 packages"
        " · run: 1 change"
    )
    assert diff.of(ChangeKind.HARDWARE) == ()


def test_change_serialises_to_the_documented_shape() -> None:
    change = Change(kind=ChangeKind.ENVIRONMENT, key="numpy", a="2.3.1", b="2.4.0",
                    note="package upgraded")  # fmt: skip
    assert change.to_json() == {"kind": "environment", "key": "numpy", "a": "2.3.1",
                                "b": "2.4.0", "note": "package upgraded"}  # fmt: skip
