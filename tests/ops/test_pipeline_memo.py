"""The status memo: an unchanged pipeline is answered without computing keys, and anything a
status looked at, when it changes, makes it compute again."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keel.ops import pipeline as pipeline_module
from keel.ops.pipeline import status_document
from keel.ops.workspace import Workspace
from tests.ops.test_pipeline import FILES, edit, environ, make_pipeline_project, run
from tests.projects import make_git_project


class _Later:
    """A clock 10 s ahead: every file is past the racy window."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=10)


def _ws(root: Path, *, later: bool = True) -> Workspace:
    return Workspace.open(root, environ=environ(), clock=_Later() if later else None)


def _memos(root: Path) -> list[Path]:
    return sorted((root / ".keel" / "cache" / "pipeline").glob("status-*.json"))


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {
        **FILES,
        "train.py": "try:\n    import extra\nexcept ImportError:\n    pass\n" + FILES["train.py"],
    }
    root = make_pipeline_project(tmp_path_factory.mktemp("memo") / "pipe", files)
    run(root)
    return root


@pytest.fixture
def project(ran_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ran_once, tmp_path / "pipe", symlinks=True))


def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key was computed")

    monkeypatch.setattr(pipeline_module.Judge, "verdict", refuse)


def test_an_unchanged_pipeline_is_answered_from_the_memo(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = status_document(_ws(project))
    assert first["up_to_date"] is True
    assert len(_memos(project)) == 1
    _no_keys(monkeypatch)
    assert status_document(_ws(project)) == first


@pytest.mark.parametrize(
    ("change", "stage", "reason"),
    [
        pytest.param(
            lambda root: edit(root, "helper.py", "x * 2", "x * 5"),
            "train",
            "code helper.py changed",
            id="code",
        ),
        pytest.param(
            lambda root: (root / "extra.py").write_text("E = 1\n"),
            "train",
            "code extra.py added",
            id="an-import-now-found",
        ),
        pytest.param(
            lambda root: (root / "out" / "score.txt").unlink(),
            "evaluate",
            "output out/score.txt missing (will be restored)",
            id="output",
        ),
        pytest.param(
            lambda root: edit(root, "keel.yaml", "default: 1.0", "default: 2.0"),
            "train",
            "param c: 1.0 → 2.0",
            id="keel-yaml",
        ),
    ],
)
def test_a_change_to_anything_looked_at_makes_status_compute_again(
    project: Path, change: object, stage: str, reason: str
) -> None:
    status_document(_ws(project))
    assert callable(change)
    change(project)
    doc = status_document(_ws(project))
    stages = {s["name"]: s for s in doc["stages"]}  # type: ignore[index, union-attr]
    assert stages[stage]["reasons"] == [reason]


def test_a_new_stage_state_makes_status_compute_again(project: Path) -> None:
    edit(project, "helper.py", "x * 2", "x * 5")
    assert status_document(_ws(project))["up_to_date"] is False
    run(project)
    assert status_document(_ws(project))["up_to_date"] is True


def test_nothing_is_memorised_while_files_are_fresh(project: Path) -> None:
    edit(project, "helper.py", "x * 2", "x * 5")
    status_document(_ws(project, later=False))
    assert _memos(project) == []


def test_a_folder_input_is_never_memorised(tmp_path: Path) -> None:
    files = {
        "keel.yaml": "project: f\nexperiments:\n  a:\n    command: python a.py\n"
        "    inputs: [data]\n    outputs: [out.txt]\n",
        "data/x.csv": "1\n",
        "a.py": "open('out.txt', 'w').write('a')\n",
    }
    root = make_git_project(tmp_path / "f", files)
    assert status_document(_ws(root))["up_to_date"] is False
    assert _memos(root) == []
