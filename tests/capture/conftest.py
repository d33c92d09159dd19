"""Fixtures for the capture facets: an in-memory BlobSink and throwaway git repositories."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from memory_sink import MemoryBlobSink


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No KEEL_* or proxy variables, and git ignores the developer's own configuration."""
    for name in list(os.environ):
        if name.startswith(("KEEL_", "GIT_")) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield


@pytest.fixture
def sink() -> MemoryBlobSink:
    return MemoryBlobSink()


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"git {args}: {result.stderr}"
    return result.stdout


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(cwd, *args)``: run git and return its stdout; fail the test on a non-zero exit."""
    return _git


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a fresh repository with a local identity, optionally with one commit."""
    counter = iter(range(1000))

    def make(*, files: dict[str, bytes] | None = None, commit: bool = True) -> Path:
        root = tmp_path / f"repo{next(counter)}"
        root.mkdir()
        _git(root, "init", "-q", "-b", "main")
        _git(root, "config", "user.name", "Test User")
        _git(root, "config", "user.email", "test@example.com")
        for rel, data in (files or {"README.md": b"hello\n"}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        if commit:
            _git(root, "add", "-A")
            _git(root, "commit", "-q", "-m", "initial")
        return root

    return make
