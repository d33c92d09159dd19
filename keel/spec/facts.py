"""The few facts about a project that every command needs, cached by the bytes of keel.yaml.

Loading keel.yaml in full means importing ruamel.yaml and pydantic and validating every
section: about 150 ms on a 2-core machine, paid by every `keel run`. A project's name,
profiles and store settings are all most commands need before they know whether the rest is
required, so they are cached in ``.keel/cache/spec/`` under the digest of keel version + file
bytes, written only after the file validated. Any edit to keel.yaml changes the key.
This module imports only the standard library and keel's base layer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.atomic import atomic_write_bytes
from keel.base.digest import hash_bytes

if TYPE_CHECKING:
    from keel.spec.project import ProjectSpec

log = logging.getLogger(__name__)
_FACTS_VERSION = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectFacts:
    """Name, profiles and per-profile store and remote settings of a validated keel.yaml."""

    name: str
    spec_file: Path
    digest: str
    profiles: tuple[str, ...]
    stores: dict[str, tuple[str | None, str | None]]  # profile -> (objects, index)
    remotes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The project folder."""
        return self.spec_file.parent

    def store(self, profile: str) -> tuple[str | None, str | None]:
        """``(objects, index)`` settings under ``profile`` (None where keel's default applies)."""
        return self.stores.get(profile, (None, None))

    def remotes_for(self, profile: str) -> dict[str, str]:
        """Remote name -> URL under ``profile``, in order (see ProjectSpec.remotes_for)."""
        return dict(self.remotes.get(profile, ()))


def facts_of(project: ProjectSpec) -> ProjectFacts:
    """The facts of a fully loaded project."""
    stores = {}
    for name in project.profiles:
        spec = project.store_for(name)
        stores[name] = (spec.objects, spec.index)
    return ProjectFacts(
        name=project.name,
        spec_file=project.file,
        digest=project.digest,
        profiles=tuple(project.profiles),
        stores=stores,
        remotes={p: tuple(project.remotes_for(p).items()) for p in project.profiles},
    )


def read_facts(
    spec_file: Path, *, cache_dir: Path, keel_version: str
) -> tuple[ProjectFacts, ProjectSpec | None]:
    """The project's facts, from the cache when keel.yaml is unchanged.

    Returns:
        The facts, and the fully loaded project when it had to be loaded (a cache miss).

    Raises:
        keel.errors.ValidationError: on a miss, every problem in keel.yaml.
    """
    raw = spec_file.read_bytes()
    digest = str(hash_bytes(raw))
    key = hash_bytes(f"{_FACTS_VERSION}\0{keel_version}\0{spec_file}\0".encode() + raw).hexdigest
    cached = _read(cache_dir / "spec" / f"{key}.json", spec_file, digest)
    if cached is not None:
        return cached, None
    from keel.spec.project import load_project

    project = load_project(spec_file)
    facts = facts_of(project)
    _write(cache_dir / "spec" / f"{key}.json", facts)
    return facts, project


def _read(path: Path, spec_file: Path, digest: str) -> ProjectFacts | None:
    try:
        data = json.loads(path.read_bytes())
        return ProjectFacts(
            name=data["name"],
            spec_file=spec_file,
            digest=digest,
            profiles=tuple(data["profiles"]),
            stores={k: (v[0], v[1]) for k, v in data["stores"].items()},
            remotes={k: tuple((str(n), str(u)) for n, u in v) for k, v in data["remotes"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _write(path: Path, facts: ProjectFacts) -> None:
    data = {
        "name": facts.name,
        "profiles": list(facts.profiles),
        "stores": {k: list(v) for k, v in facts.stores.items()},
        "remotes": {k: [list(pair) for pair in v] for k, v in facts.remotes.items()},
    }
    try:
        atomic_write_bytes(path, json.dumps(data).encode(), durable=False)
    except OSError as exc:  # a read-only project still runs, just without the cache
        log.debug("spec cache not written to %s: %s", path, exc)
