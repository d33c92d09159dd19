from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.ops.workspace import Workspace
from tests.projects import make_demo_project


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A committed demo project."""
    return make_demo_project(tmp_path / "demo")


@pytest.fixture
def make_workspace() -> Callable[..., Workspace]:
    """Open a Workspace on a project with a clean, explicit environment."""

    def make(root: Path, *, profile: str = "dev", **env: str) -> Workspace:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        environ.pop("PYTHONHASHSEED", None)
        environ.update(env)
        return Workspace.open(root, profile=profile, environ=environ)

    return make
