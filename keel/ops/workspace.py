"""Workspace: one project, one profile, and the stores they use — built once, passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.clock import Clock, SystemClock
from keel.errors import UserError
from keel.spec.project import ProjectSpec, find_spec_file, load_project
from keel.store.objects.local import LocalObjectStore

if TYPE_CHECKING:
    from keel.store.meta.base import RunIndex

DEFAULT_STORE = ".keel"
INDEX_URL_ENV = "KEEL_INDEX_URL"
STORE_ENV = "KEEL_STORE"


class Workspace:
    """The project, its active profile, the object store and (opened on first use) the index."""

    def __init__(
        self,
        *,
        project: ProjectSpec,
        profile: str,
        environ: Mapping[str, str],
        clock: Clock | None = None,
    ) -> None:
        if profile not in project.profiles:
            from keel.base.suggest import did_you_mean

            raise UserError(
                f"{project.file.name}: unknown profile '{profile}'; "
                + did_you_mean(profile, project.profiles)
            )
        self.project = project
        self.profile = profile
        self.environ = dict(environ)
        self.clock: Clock = clock or SystemClock()
        self.store_root = _store_root(project, profile, self.environ)
        self.objects = LocalObjectStore(self.store_root)
        self.index_url = _index_url(project, profile, self.environ, self.store_root)
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
        """Find ``keel.yaml`` at or above ``start`` (default: the current folder) and load it."""
        env = dict(os.environ if environ is None else environ)
        spec_file = find_spec_file((start or Path.cwd()).resolve())
        project = load_project(spec_file)
        return cls(
            project=project,
            profile=profile or env.get("KEEL_PROFILE") or "dev",
            environ=env,
            clock=clock,
        )

    @property
    def root(self) -> Path:
        """The project folder (where keel.yaml is)."""
        return self.project.root

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


def _store_setting(project: ProjectSpec, profile: str, key: str) -> str | None:
    prof = project.profiles[profile].store
    value = getattr(prof, key, None) if prof is not None else None
    if value is None and project.store is not None:
        value = getattr(project.store, key, None)
    return value


def _store_root(project: ProjectSpec, profile: str, environ: Mapping[str, str]) -> Path:
    value = environ.get(STORE_ENV) or _store_setting(project, profile, "objects") or DEFAULT_STORE
    if "://" in value and not value.startswith("file://"):
        raise UserError(
            f"store.objects = {value!r}: the run store must be a local folder; "
            "share runs with remotes (`keel push`) instead"
        )
    path = Path(value.removeprefix("file://")).expanduser()
    return path if path.is_absolute() else (project.root / path).resolve()


def _index_url(
    project: ProjectSpec, profile: str, environ: Mapping[str, str], store_root: Path
) -> str:
    url = environ.get(INDEX_URL_ENV) or _store_setting(project, profile, "index")
    return url or f"sqlite:///{store_root / 'index.db'}"
