"""code_facts: what git says about two recorded commits, and every way it can fail to say."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.ops.gitfacts import MAX_LISTED, code_facts
from tests.projects import git


def _head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def test_commits_ahead_are_listed_newest_first_with_the_files(demo: Path) -> None:
    a = _head(demo)
    (demo / "train.py").write_text("print('v2')\n")
    git(demo, "commit", "-qam", "second")
    (demo / "notes.txt").write_text("v3\n")
    git(demo, "commit", "-qam", "third")
    facts = code_facts(a, _head(demo), roots=[str(demo)])
    assert [c.subject for c in facts.ahead] == ["third", "second"]
    assert (facts.ahead_count, facts.behind_count, facts.behind) == (2, 0, ())
    assert facts.files == ("notes.txt", "train.py")
    assert facts.reason is None and facts.missing == ()


def test_diverged_branches_have_commits_on_both_sides(demo: Path) -> None:
    git(demo, "checkout", "-qb", "side")
    git(demo, "commit", "-q", "--allow-empty", "-m", "on the side")
    a = _head(demo)
    git(demo, "checkout", "-q", "main")
    git(demo, "commit", "-q", "--allow-empty", "-m", "on main")
    facts = code_facts(a, _head(demo), roots=[str(demo)])
    assert [c.subject for c in facts.behind] == ["on the side"]
    assert [c.subject for c in facts.ahead] == ["on main"]


def test_long_histories_are_listed_in_part_and_counted_in_full(demo: Path) -> None:
    a = _head(demo)
    for i in range(MAX_LISTED + 3):
        git(demo, "commit", "-q", "--allow-empty", "-m", f"step {i}")
    facts = code_facts(a, _head(demo), roots=[str(demo)])
    assert facts.ahead_count == MAX_LISTED + 3
    assert len(facts.ahead) == MAX_LISTED and facts.ahead[0].subject == f"step {MAX_LISTED + 2}"


def test_a_commit_the_repository_no_longer_has_is_named(demo: Path) -> None:
    gone = "0123456789" * 4
    facts = code_facts(_head(demo), gone, roots=[str(demo)])
    assert facts.missing == (gone,) and facts.ahead == ()


def test_the_first_existing_root_is_used(demo: Path, tmp_path: Path) -> None:
    a = _head(demo)
    git(demo, "commit", "-q", "--allow-empty", "-m", "next")
    facts = code_facts(a, _head(demo), roots=[str(tmp_path / "moved"), str(demo)])
    assert facts.ahead_count == 1


def test_no_repository_and_no_git_are_reasons_not_errors(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = "1" * 40, "2" * 40
    facts = code_facts(a, b, roots=[str(tmp_path / "nowhere")])
    assert facts.reason == f"repository {tmp_path / 'nowhere'} not found"
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    failed = code_facts(a, b, roots=[str(outside)])
    assert failed.reason is not None and "not a git repository" in failed.reason
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert code_facts(a, b, roots=[str(demo)]).reason == "git is not installed (not found on PATH)"
