"""The code facet against real git repositories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from memory_sink import MemoryBlobSink

from keel.base.canonical import JsonValue, canonical_json
from keel.capture.git import (
    capture_code,
    code_fingerprint,
    discard_restored_code,
    restore_code,
    strip_url_credentials,
)
from keel.errors import UserError

MakeRepo = Callable[..., Path]
Git = Callable[..., str]


def _untracked(record: Mapping[str, JsonValue]) -> dict[str, Any]:
    """The untracked entries of a code record, by path."""
    entries = record["untracked"]
    assert isinstance(entries, list)
    return {str(e["path"]): e for e in entries if isinstance(e, dict)}


def _strings(value: JsonValue) -> list[str]:
    assert isinstance(value, list)
    return [str(v) for v in value]


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every file below ``root`` except git's own metadata: content, or link target."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel == ".git":
                continue
            found[rel] = os.readlink(path) if path.is_symlink() else path.read_bytes()
    return found


def test_clean_repo_records_commit_branch_and_no_diff(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink
) -> None:
    root = make_repo()
    record = capture_code(root, sink)
    assert record["captured"] is True
    assert record["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert record["branch"] == "main"
    assert record["dirty"] is False
    assert record["diff"] is None
    assert record["diff_files"] == []
    assert record["untracked"] == []
    assert record["remote"] is None
    assert record["repo_root"] == str(root.resolve())
    assert record["project_subdir"] == "."
    assert sink.objects == {}
    canonical_json(record)  # JSON-serialisable


def test_dirty_tree_is_restored_byte_for_byte(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink, tmp_path: Path
) -> None:
    binary = bytes(range(256)) * 40
    root = make_repo(
        files={
            "src/train.py": b"print('v1')\n",
            "data/blob.bin": binary,
            "gone.txt": b"delete me\n",
            "staged.txt": b"old\n",
            "run.sh": b"#!/bin/sh\necho hi\n",
            "has space/ü.txt": b"unicode\n",
        }
    )
    (root / "src/train.py").write_text("print('v2')\n")
    (root / "data/blob.bin").write_bytes(binary[::-1] + b"\x00\xff")
    (root / "gone.txt").unlink()
    (root / "staged.txt").write_text("new staged\n")
    git(root, "add", "staged.txt")
    (root / "new_staged.bin").write_bytes(b"\x00\x01\x02" * 100)
    git(root, "add", "new_staged.bin")
    (root / "has space/ü.txt").write_text("changed unicode\n")
    (root / "notes").mkdir()
    (root / "notes/idea.md").write_text("untracked\n")
    (root / "tool.sh").write_bytes(b"#!/bin/sh\nexit 0\n")
    (root / "tool.sh").chmod(0o755)
    os.symlink("notes/idea.md", root / "link.md")

    record = capture_code(root, sink)
    assert record["dirty"] is True
    assert sorted(_strings(record["diff_files"])) == sorted(
        [
            "src/train.py",
            "data/blob.bin",
            "gone.txt",
            "staged.txt",
            "new_staged.bin",
            "has space/ü.txt",
        ]
    )
    untracked = _untracked(record)
    assert set(untracked) == {"notes/idea.md", "tool.sh", "link.md"}
    assert untracked["link.md"] == {"path": "link.md", "link": "notes/idea.md"}
    assert untracked["tool.sh"]["executable"] is True

    dest = tmp_path / "restored"
    restore_code(record, dest, sink.fetch)
    assert _tree(dest) == _tree(root)
    assert os.access(dest / "tool.sh", os.X_OK)
    discard_restored_code(record, dest)
    assert not dest.exists()


def test_restore_into_a_non_empty_folder_is_refused(
    make_repo: MakeRepo, sink: MemoryBlobSink, tmp_path: Path
) -> None:
    record = capture_code(make_repo(), sink)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "x").write_text("x")
    with pytest.raises(UserError, match="not an empty folder"):
        restore_code(record, dest, sink.fetch)


def test_restore_of_an_uncaptured_record_says_why(tmp_path: Path, sink: MemoryBlobSink) -> None:
    record = capture_code(tmp_path, sink)
    with pytest.raises(UserError, match="not captured"):
        restore_code(record, tmp_path / "out", sink.fetch)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://user:s3cret@github.com/o/r.git", "https://github.com/o/r.git",
                     id="https-user-password"),
        pytest.param("https://ghp_TOKEN@github.com/o/r.git", "https://github.com/o/r.git",
                     id="https-token"),
        pytest.param("ssh://git:pw@host:2222/r.git", "ssh://git@host:2222/r.git", id="ssh-pw"),
        pytest.param("git@github.com:o/r.git", "git@github.com:o/r.git", id="scp-like"),
        pytest.param("me:pw@host:o/r.git", "me@host:o/r.git", id="scp-like-password"),
        pytest.param("/srv/git/r.git", "/srv/git/r.git", id="local-path"),
    ],
)  # fmt: skip
def test_remote_credentials_are_stripped(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


def test_captured_remote_has_no_credentials(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink
) -> None:
    root = make_repo()
    git(root, "remote", "add", "upstream", "https://other.example/x.git")
    git(root, "remote", "add", "origin", "https://alice:ghp_secret@example.com/team/proj.git")
    record = capture_code(root, sink)
    assert record["remote"] == "https://example.com/team/proj.git"
    assert "ghp_secret" not in canonical_json(record).decode()


def test_first_remote_is_used_without_origin(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink
) -> None:
    root = make_repo()
    git(root, "remote", "add", "upstream", "https://tok@other.example/x.git")
    assert capture_code(root, sink)["remote"] == "https://other.example/x.git"


def test_repo_without_commits_is_captured_and_restored(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink, tmp_path: Path
) -> None:
    root = make_repo(files={"a.txt": b"a\n", "b/c.bin": b"\x00\x01"}, commit=False)
    git(root, "add", "a.txt")
    record = capture_code(root, sink)
    assert record["captured"] is True
    assert record["commit"] is None
    assert record["branch"] == "main"
    assert record["diff_files"] == ["a.txt"]
    assert list(_untracked(record)) == ["b/c.bin"]
    dest = tmp_path / "restored"
    restore_code(record, dest, sink.fetch)
    assert _tree(dest) == _tree(root)
    assert not (dest / ".git").exists()
    discard_restored_code(record, dest)
    assert not dest.exists()


def test_folder_outside_any_repository_is_not_captured(
    tmp_path: Path, sink: MemoryBlobSink
) -> None:
    record = capture_code(tmp_path, sink)
    assert record == {"captured": False, "reason": f"{tmp_path} is not inside a git repository"}
    assert code_fingerprint(tmp_path) is None


def test_missing_git_is_not_captured(
    make_repo: MakeRepo, sink: MemoryBlobSink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_repo()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    record = capture_code(root, sink)
    assert record["captured"] is False
    assert "git is not installed" in str(record["reason"])


def test_detached_head_has_no_branch(make_repo: MakeRepo, git: Git, sink: MemoryBlobSink) -> None:
    root = make_repo()
    git(root, "checkout", "-q", "--detach")
    record = capture_code(root, sink)
    assert record["branch"] is None
    assert record["commit"] == git(root, "rev-parse", "HEAD").strip()


def test_ignored_files_and_the_keel_store_are_not_captured(
    make_repo: MakeRepo, sink: MemoryBlobSink
) -> None:
    root = make_repo(files={".gitignore": b"*.log\nbuild/\n", "sub/keep.txt": b"k\n"})
    (root / "out.log").write_text("noise")
    (root / "build").mkdir()
    (root / "build/x.o").write_bytes(b"obj")
    for store in (root / ".keel", root / "sub/.keel"):
        (store / "objects").mkdir(parents=True)
        (store / "objects/ab").write_bytes(b"object")
    (root / "sub/new.txt").write_text("new")
    record = capture_code(root / "sub", sink)
    assert record["project_subdir"] == "sub"
    assert list(_untracked(record)) == ["sub/new.txt"]


def test_untracked_file_over_the_cap_is_listed_not_stored(
    make_repo: MakeRepo, sink: MemoryBlobSink
) -> None:
    root = make_repo()
    (root / "big.bin").write_bytes(b"x" * 2048)
    (root / "small.txt").write_text("s")
    record = capture_code(root, sink, max_untracked_bytes=1024)
    entries = _untracked(record)
    assert entries["big.bin"]["stored"] is False
    assert entries["big.bin"]["size"] == 2048
    assert "1024-byte limit" in entries["big.bin"]["reason"]
    assert "digest" in entries["small.txt"]
    assert b"x" * 2048 not in sink.objects.values()


def test_fingerprint_tracks_the_code_state(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink
) -> None:
    root = make_repo(files={"a.py": b"x = 1\n"})
    first = capture_code(root, sink)["fingerprint"]
    assert code_fingerprint(root) == first
    assert code_fingerprint(root) == first

    (root / "a.py").write_text("x = 2\n")
    edited = code_fingerprint(root)
    assert edited not in (None, first)
    assert capture_code(root, sink)["fingerprint"] == edited

    (root / "new.py").write_text("y = 1\n")
    with_untracked = code_fingerprint(root)
    assert with_untracked not in (first, edited)

    (root / "new.py").unlink()
    (root / "a.py").write_text("x = 1\n")
    assert code_fingerprint(root) == first

    git(root, "commit", "-q", "--allow-empty", "-m", "another")
    assert code_fingerprint(root) != first


def test_user_configuration_does_not_change_the_diff(
    make_repo: MakeRepo, git: Git, sink: MemoryBlobSink, tmp_path: Path
) -> None:
    root = make_repo(files={"a.txt": b"one\n"})
    for key, value in [("diff.noprefix", "true"), ("diff.external", "false"),
                       ("color.ui", "always"), ("diff.relative", "true"),
                       ("apply.whitespace", "error")]:  # fmt: skip
        git(root, "config", key, value)
    (root / "a.txt").write_text("two   \n")
    record = capture_code(root, sink)
    dest = tmp_path / "restored"
    restore_code(record, dest, sink.fetch)
    assert (dest / "a.txt").read_text() == "two   \n"


def test_restore_fails_clearly_when_the_repository_is_gone(
    make_repo: MakeRepo, sink: MemoryBlobSink, tmp_path: Path
) -> None:
    root = make_repo()
    record = capture_code(root, sink)
    shutil.rmtree(root)
    with pytest.raises(UserError, match="not found"):
        restore_code(record, tmp_path / "out", sink.fetch)


def test_capture_leaves_the_index_alone_while_another_git_holds_it(
    make_repo: MakeRepo, sink: MemoryBlobSink
) -> None:
    root = make_repo(files={"a.txt": b"a\n", "b.txt": b"b\n"})
    index = root / ".git" / "index"
    before = index.read_bytes(), index.stat().st_mtime_ns
    (root / "a.txt").write_text("changed\n")
    os.utime(root / "b.txt", ns=(1, 1))  # stale stat data: a refreshing git would rewrite the index
    (root / ".git" / "index.lock").write_text("")  # the user's own git is running
    record = capture_code(root, sink)
    assert record["captured"] is True
    assert record["diff_files"] == ["a.txt"]
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert code_fingerprint(root) == record["fingerprint"]
