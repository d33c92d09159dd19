"""Fixtures for the keel.yaml tests: write a spec into tmp_path, load it or collect its problems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keel.errors import ValidationError
from keel.spec import ProjectSpec, load_project
from tests.spec.samples import write_spec


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], ProjectSpec]:
    """Load a keel.yaml text (dedented) written to tmp_path."""

    def make(text: str) -> ProjectSpec:
        return load_project(write_spec(tmp_path, text))

    return make


@pytest.fixture
def make_problems(tmp_path: Path) -> Callable[[str], list[str]]:
    """The problem lines a keel.yaml text (dedented) is refused with; fails if it loads."""

    def make(text: str) -> list[str]:
        with pytest.raises(ValidationError) as caught:
            load_project(write_spec(tmp_path, text))
        return [str(p) for p in caught.value.problems]

    return make
