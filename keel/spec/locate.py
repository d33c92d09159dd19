"""Find a project's keel.yaml (standard library only: on the start-up path of every command)."""

from __future__ import annotations

from pathlib import Path

from keel.errors import ProjectNotFound

SPEC_FILE = "keel.yaml"


def find_spec_file(start: Path) -> Path:
    """The keel.yaml in ``start`` or the nearest parent folder that has one.

    Raises:
        keel.errors.ProjectNotFound: when no folder from ``start`` up to the root has one.
    """
    here = start.resolve()
    if here.is_file() and here.name == SPEC_FILE:
        return here
    for folder in (here, *here.parents):
        candidate = folder / SPEC_FILE
        if candidate.is_file():
            return candidate
    raise ProjectNotFound(
        f"no {SPEC_FILE} in {here} or any folder above it; run `keel init` to create a project here"
    )
