"""Fixtures for the resolve tests: the guide's iris project, with its input file present."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keel.spec import ProjectSpec, load_project
from tests.spec.samples import IRIS_YAML, write_spec


@pytest.fixture
def iris(tmp_path: Path) -> ProjectSpec:
    """The user guide's keel.yaml, exactly as written, with data/iris.csv in place."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "iris.csv").write_text("sepal_length\n5.1\n", encoding="utf-8")
    return load_project(write_spec(tmp_path, IRIS_YAML, dedent=False))


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], ProjectSpec]:
    """Load a keel.yaml text (dedented) written to tmp_path."""

    def make(text: str) -> ProjectSpec:
        return load_project(write_spec(tmp_path, text))

    return make
