"""Workspace: one project, one profile, and the stores they use — built once, passed down.

Opening a workspace reads only the project's cached *facts* (name, profiles, store settings);
the full keel.yaml (pydantic models) is loaded on first use of ``project``, so commands that
do not need it — and `keel run` of an unchanged request — never pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from keel import __version__
from keel.base.clock import Clock, SystemClock
from keel.base.suggest import did_you_mean
from keel.errors import UserError
from keel.spec.facts import ProjectFacts, read_facts
from keel.spec.locate import find_spec_file
from keel.store.objects.local import LocalObjectStore

if TYPE_CHECKING:
    from keel.spec.project import ProjectSpec
    from keel.store.meta.base import RunIndex

DEFAULT_STORE = ".keel"
INDEX_URL_ENV = "KEEL_INDEX_URL"
STORE_ENV = "KEEL_STORE"


class Workspace:
    """The project, its active profile, the object store and (opened on first use) the index."""

    def __init__(
        self,
        *,
        facts: ProjectFacts,
        profile: str,
        environ: Mapping[str, str],
        clock: Clock | None = None,
        project: ProjectSpec | None = None,
    ) -> None:
        if profile not in facts.profiles:
            raise UserError(
                f"{facts.spec_file.name}: unknown profile '{profile}'; "
                + did_you_mean(profile, facts.profiles)
            )
        self.facts = facts
        self.profile = profile
        self.environ = dict(environ)
        self.clock: Clock = clock or SystemClock()
        objects, index = facts.store(profile)
        self.store_root = _store_root(facts.root, objects, self.environ)
        self.objects = LocalObjectStore(self.store_root)
        self.index_url = self.environ.get(INDEX_URL_ENV) or index or _default_index(self.store_root)
        self._project = project
        self._index: RunIndex | None = None

    @classmethod
    def open(
        cls,
        start: Path | None = None,
        *,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> Workspace:
        """Find ``keel.yaml`` at or above ``start`` (default: the current folder) and open it."""
        env = dict(os.environ if environ is None else environ)
        spec_file = find_spec_file((start or Path.cwd()).resolve())
        facts, project = read_facts(
            spec_file, cache_dir=cache_dir(spec_file.parent), keel_version=__version__
        )
        return cls(
            facts=facts,
            profile=profile or env.get("KEEL_PROFILE") or "dev",
            environ=env,
            clock=clock,
            project=project,
        )

    @property
    def root(self) -> Path:
        """The project folder (where keel.yaml is)."""
        return self.facts.root

    @property
    def cache_dir(self) -> Path:
        """Where keel keeps derived, disposable data for this project."""
        return cache_dir(self.root)

    @property
    def project(self) -> ProjectSpec:
        """The fully loaded and validated keel.yaml (loaded on first use)."""
        if self._project is None:
            from keel.spec.project import load_project

            self._project = load_project(self.facts.spec_file)
        return self._project

    def index(self) -> RunIndex:
        """The metadata index, opened (and created or checked) on first use."""
        if self._index is None:
            from keel.store.meta import open_index

            self._index = open_index(self.index_url)
        return self._index

    def close(self) -> None:
        """Release the index connection, if one was opened."""
        if self._index is not None:
            self._index.close()
            self._index = None


def cache_dir(root: Path) -> Path:
    """The project's cache folder (always inside the project, whatever the store location)."""
    return root / DEFAULT_STORE / "cache"


def _store_root(root: Path, objects: str | None, environ: Mapping[str, str]) -> Path:
    value = environ.get(STORE_ENV) or objects or DEFAULT_STORE
    if "://" in value and not value.startswith("file://"):
        raise UserError(
            f"store.objects = {value!r}: the run store must be a local folder; "
            "share runs with remotes (`keel push`) instead"
        )
    path = Path(value.removeprefix("file://")).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def _default_index(store_root: Path) -> str:
    return f"sqlite:///{store_root / 'index.db'}"
