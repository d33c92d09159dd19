"""`diff_runs` on real runs in a real git repository: each kind of change found and explained."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.compare.diff import Change, ChangeKind
from keel.errors import RunRefError, UserError
from keel.model.manifest import Manifest
from keel.ops.diff import RunDiff, diff_runs, text_summary
from keel.ops.run import RunRequest, run_experiment
from keel.ops.workspace import Workspace
from tests.projects import git

MakeWs = Callable[..., Workspace]


def _run(ws: Workspace, experiment: str = "train", **request: object) -> str:
    outcome = run_experiment(ws, RunRequest(experiment=experiment, **request))  # type: ignore[arg-type]
    return outcome.run_id


def _change(result: RunDiff, kind: ChangeKind, key: str) -> Change:
    found = [c for c in result.diff.of(kind) if c.key == key]
    assert len(found) == 1, result.diff.changes
    return found[0]


def _commit_edit(root: Path, rel: str, old: str, new: str, message: str) -> None:
    path = root / rel
    path.write_text(path.read_text().replace(old, new))
    git(root, "commit", "-qam", message)


def test_two_identical_reruns_show_no_difference(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws)
    result = diff_runs(ws, a, b)
    assert not result.diff, result.diff.changes
    assert result.diff.summary() == "no difference"
    assert result.warnings == ()
    assert (result.a.id, result.b.id) == (a, b)


def test_all_fields_shows_what_always_differs(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws)
    keys = [c.key for c in diff_runs(ws, a, b, all_fields=True).diff.of(ChangeKind.RUN)]
    assert {"id", "created_at", "ended_at", "duration_s"} <= set(keys)


def test_edited_catalog_default_is_a_config_change_from_the_catalog(
    demo: Path, make_workspace: MakeWs
) -> None:
    a = _run(make_workspace(demo))
    _commit_edit(demo, "keel.yaml", "default: fast", "default: slow", "slow mode by default")
    ws = make_workspace(demo)
    result = diff_runs(ws, a, _run(ws))
    mode = _change(result, ChangeKind.CONFIG, "params.mode")
    assert (mode.a, mode.b) == ("fast", "slow")
    assert mode.note == "default changed in keel.yaml (source catalog in both)"
    assert [c.key for c in result.diff.of(ChangeKind.CONFIG)] == ["params.mode", "keel.yaml"]
    commits = _change(result, ChangeKind.CODE, "commits")
    assert commits.a == [] and len(commits.b) == 1  # type: ignore[arg-type]
    assert "slow mode by default" in commits.b[0]  # type: ignore[index]
    assert _change(result, ChangeKind.CODE, "files changed").b == ["keel.yaml"]
    assert result.diff.summary().startswith("code: 1 commit · config: 1 change")


def test_command_line_override_is_reported_with_its_layer(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws, overrides={"lr": "0.5"})
    lr = _change(diff_runs(ws, a, b), ChangeKind.CONFIG, "params.lr")
    assert (lr.a, lr.b) == (0.1, 0.5)
    assert lr.note == "source catalog → cli: overridden on the command line in B"


def test_a_code_commit_between_runs_lists_the_commit_and_file(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    a = _run(ws)
    _commit_edit(demo, "train.py", "import keel\n", "import keel  # tuned\n", "tune training")
    result = diff_runs(ws, a, _run(ws))
    commit = _change(result, ChangeKind.CODE, "commit")
    assert commit.note == "B is 1 commit ahead of A"
    head = git(demo, "rev-parse", "HEAD").strip()
    assert commit.b == head
    assert _change(result, ChangeKind.CODE, "commits").b == [f"{head[:10]} tune training"]
    assert _change(result, ChangeKind.CODE, "files changed").b == ["train.py"]
    assert result.diff.summary() == "code: 1 commit"
    backwards = diff_runs(ws, result.b.id, a)
    assert _change(backwards, ChangeKind.CODE, "commit").note == "B is 1 commit behind A"


def test_a_commit_gone_from_the_repository_is_said(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    a = _run(ws)
    _commit_edit(demo, "notes.txt", "notes", "more notes", "to be dropped")
    b = _run(ws)
    git(demo, "reset", "-q", "--hard", "HEAD~1")
    git(demo, "reflog", "expire", "--expire=now", "--all")
    git(demo, "gc", "-q", "--prune=now")
    note = _change(diff_runs(ws, a, b), ChangeKind.CODE, "commit").note
    assert note is not None and "is not in the repository any more" in note


def test_uncommitted_edit_makes_b_dirty_with_a_different_patch(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    a = _run(ws)
    (demo / "train.py").write_text((demo / "train.py").read_text() + "\n# experiment\n")
    result = diff_runs(ws, a, _run(ws))
    assert [c.key for c in result.diff.of(ChangeKind.CODE)] == ["dirty", "patch"]
    dirty = _change(result, ChangeKind.CODE, "dirty")
    assert (dirty.a, dirty.b) == (False, True)
    patch = _change(result, ChangeKind.CODE, "patch")
    assert patch.a is None and isinstance(patch.b, str) and patch.b.startswith("blake3:")
    assert patch.note == "uncommitted changes differ (A: none; B: train.py)"
    assert result.diff.summary() == "code: uncommitted changes"


def test_a_changed_csv_row_is_summarised_in_the_data_group(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    a = _run(ws)
    _commit_edit(demo, "data/points.csv", "3,4\n", "3,5\n7,8\n9,10\n", "more points")
    result = diff_runs(ws, a, _run(ws))
    points = _change(result, ChangeKind.DATA, "data/points.csv")
    assert points.note == "content changed: +2 rows, 1 row changed (2 → 4 rows)"
    assert "data: 1 input" in result.diff.summary()
    rows = _change(result, ChangeKind.METRICS, "rows")
    assert (rows.a, rows.b) == (2.0, 4.0)


def test_a_stored_folder_input_lists_the_files_that_changed(
    demo: Path, make_workspace: MakeWs
) -> None:
    spec = demo / "keel.yaml"
    folder = '  folder:\n    command: python -c "print(1)"\n    params: []\n    inputs: [data]\n'
    spec.write_text(spec.read_text().replace("experiments:\n", "experiments:\n" + folder))
    git(demo, "commit", "-qam", "folder experiment")
    ws = make_workspace(demo)
    a = _run(ws, "folder")
    (demo / "data" / "points.csv").write_text("x,y\n1,2\n")
    (demo / "data" / "more.csv").write_text("x,y\n")
    result = diff_runs(ws, a, _run(ws, "folder"))
    assert _change(result, ChangeKind.DATA, "data").note == (
        "content changed: 1 file changed (points.csv); 1 file added (more.csv)"
    )


def test_a_different_seed_is_its_own_group(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    result = diff_runs(ws, _run(ws), _run(ws, seed=7))
    assert [c.key for c in result.diff.of(ChangeKind.SEED)] == ["root", "PYTHONHASHSEED", "seeded"]
    root = _change(result, ChangeKind.SEED, "root")
    assert (root.a, root.b, root.note) == (42, 7, "root seed (source experiment → cli)")
    assert _change(result, ChangeKind.OUTPUTS, "out/model.txt").note is not None


def test_a_thread_count_variable_is_an_environment_change(
    demo: Path, make_workspace: MakeWs
) -> None:
    one = make_workspace(demo, OMP_NUM_THREADS="1")
    a = _run(one)
    b = _run(make_workspace(demo, OMP_NUM_THREADS="4"))
    result = diff_runs(one, a, b)
    change = _change(result, ChangeKind.ENVIRONMENT, "env.OMP_NUM_THREADS")
    assert (change.a, change.b, change.note) == ("1", "4", "thread setting changed")
    assert result.diff.summary() == "environment: 1 change"


def test_runs_of_different_experiments_are_compared_with_a_warning(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    result = diff_runs(ws, _run(ws), _run(ws, "fn"))
    assert len(result.warnings) == 1 and "different experiments" in result.warnings[0]
    assert "train" in result.warnings[0] and "fn" in result.warnings[0]
    assert _change(result, ChangeKind.RUN, "experiment").b == "fn"


def test_references_resolve_by_prefix_and_latest(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws, overrides={"lr": "0.5"})
    result = diff_runs(ws, a[:-2], "train@latest")
    assert (result.a.id, result.b.id) == (a, b)
    assert diff_runs(ws, "@latest", b).warnings == (f"A and B are the same run ({b})",)


def test_unknown_and_ambiguous_references_give_the_usual_errors(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws)
    with pytest.raises(RunRefError, match="no run matches 'zzzz'; list runs with `keel ls`"):
        diff_runs(ws, a, "zzzz")
    common = next(a[:n] for n in range(len(a), 0, -1) if b.startswith(a[:n]))
    assert len(common) >= 2
    with pytest.raises(RunRefError, match="is ambiguous; it matches: ") as err:
        diff_runs(ws, common, b)
    assert a in str(err.value) and b in str(err.value)


def test_to_json_has_the_documented_shape(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws, overrides={"epochs": "6"})
    data = diff_runs(ws, a, b).to_json()
    assert sorted(data) == ["a", "b", "changes", "summary", "warnings"]
    assert data["a"] == a and data["b"] == b and data["warnings"] == []
    first = data["changes"][0]  # type: ignore[index]
    assert first == {
        "kind": "config",
        "key": "params.epochs",
        "a": 5,
        "b": 6,
        "note": "source experiment → cli: overridden on the command line in B",
    }
    json.dumps(data)


# -- reading manifests: the type-hint decoder agrees with pydantic ---------------------------


def test_decoded_manifest_equals_the_validated_one(demo: Path, make_workspace: MakeWs) -> None:
    _dirty_run = make_workspace(demo, OMP_NUM_THREADS="2")
    (demo / "scratch.py").write_text("print(1)\n")
    outcome = run_experiment(_dirty_run, RunRequest(experiment="train"))
    data = _dirty_run.objects.get_bytes(outcome.digest)
    decoded = Manifest.from_json(json.loads(data))
    from pydantic import TypeAdapter

    validated = TypeAdapter(Manifest).validate_python(json.loads(data))
    assert decoded == validated == outcome.manifest
    assert type(decoded.metrics["rows"].value) is float


def test_decoding_an_invalid_manifest_reports_it_like_the_validating_reader(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    outcome = run_experiment(ws, RunRequest(experiment="train"))
    data = outcome.manifest.to_json()
    data["run"]["status"] = "great"  # type: ignore[index,call-overload]
    with pytest.raises(UserError, match=r"run\.status"):
        Manifest.from_json(json.loads(canonical_json(data)))
    data = outcome.manifest.to_json()
    data["surprise"] = 1
    with pytest.raises(UserError, match="surprise"):
        Manifest.from_json(json.loads(canonical_json(data)))


# -- text summaries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "a", "b", "summary"),
    [
        pytest.param("d.csv", "h\n1\n2\n", "h\n1\n2\n3\n4\n5\n", "+3 rows (2 → 5 rows)", id="rows"),
        pytest.param("d.csv", "h\n1\n2\n", "h\n2\n", "−1 row (2 → 1 row)", id="removed"),
        pytest.param("d.csv", "a,b\n1\n", "a,c\n1\n", "header changed (1 → 1 row)", id="header"),
        pytest.param(
            "n.txt", "a\nb\n", "a\nc\nd\n", "+1 line, 1 line changed (2 → 3 lines)", id="text"
        ),
        pytest.param(
            "n.txt",
            "a\nb\n",
            "a\r\nb\r\n",
            "same lines; whitespace or line endings differ",
            id="endings",
        ),
    ],
)
def test_text_summary_counts_rows_and_lines(path: str, a: str, b: str, summary: str) -> None:
    assert text_summary(path, a.encode(), b.encode()) == summary


def test_binary_content_has_no_text_summary() -> None:
    assert text_summary("x.bin", b"\xff\xfe\x00", b"\x00\x01") is None


def test_diff_by_id_loads_neither_the_index_nor_pydantic_nor_rich(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    a, b = _run(ws), _run(ws, overrides={"lr": "0.5"})
    code = (
        "import sys\n"
        "from keel.cli.main import main\n"
        "try:\n"
        f"    main(['-C', {str(demo)!r}, 'diff', {a!r}, {b!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = ('sqlalchemy', 'pydantic', 'rich', 'alembic')\n"
        "print(','.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    env = {k: v for k, v in ws.environ.items() if not k.startswith("KEEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stdout)["b"] == b
    assert done.stderr.strip() == ""
