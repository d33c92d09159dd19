"""Find and load a project's keel.yaml into a validated, immutable ProjectSpec."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from keel.base.digest import hash_bytes
from keel.errors import Problem, ProjectNotFound, UserError, ValidationError
from keel.spec.catalog import ParamSpec, check_catalog
from keel.spec.experiment import ExperimentSpec, check_experiments
from keel.spec.locate import SPEC_FILE
from keel.spec.problems import KeyPath, LineMap, Problems, format_key
from keel.spec.profile import ProfileSpec, StoreSpec, check_profiles, check_remotes, check_store
from keel.spec.schema import Section, SpecModel
from keel.spec.sweep import SweepDecl, check_sweeps
from keel.spec.yamlload import read_yaml

"""The name of a project's spec file."""


class ProjectSpec(BaseModel):
    """A loaded, fully validated keel.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    root: Path
    file: Path
    digest: str
    params: dict[str, ParamSpec]
    experiments: dict[str, ExperimentSpec]
    profiles: dict[str, ProfileSpec]
    sweeps: dict[str, SweepDecl] = Field(default_factory=dict)
    store: StoreSpec = Field(default_factory=StoreSpec)
    remotes: dict[str, str] = Field(default_factory=dict)
    lines: LineMap = Field(default_factory=LineMap)

    def store_for(self, profile: str) -> StoreSpec:
        """The effective store settings under ``profile``: its store over the top-level one."""
        chosen = self.profiles[profile].store
        return self.store if chosen is None else chosen.over(self.store)

    def remotes_for(self, profile: str) -> dict[str, str]:
        """The remotes under ``profile``: its own first, then top-level ones it does not redefine.

        The default remote is the one named ``origin``, else the first of this mapping.
        """
        own = self.profiles[profile].remotes
        return {**own, **{k: v for k, v in self.remotes.items() if k not in own}}

    def line_of(self, path: KeyPath) -> int | None:
        """The line in keel.yaml of a key path (or of its nearest ancestor)."""
        return self.lines.line_of(path)

    def problem(self, path: KeyPath, message: str, *, hint: str | None = None) -> Problem:
        """A problem located at ``path`` in this project's keel.yaml."""
        return Problem(
            file=self.file.name,
            line=self.line_of(path),
            key=format_key(path) or None,
            message=message,
            hint=hint,
        )


class _FileShape(SpecModel):
    """The top level of keel.yaml; sections are checked one entry at a time afterwards."""

    project: str
    params: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    experiments: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    profiles: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    sweeps: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    store: StoreSpec | None = None
    remotes: Section[dict[str, str]] = Field(default_factory=dict)


def load_project(spec_file: Path) -> ProjectSpec:
    """Read, parse and validate ``spec_file``.

    Raises:
        keel.errors.ProjectNotFound: when the file does not exist.
        keel.errors.ValidationError: listing every problem in the file, each with its line.
    """
    raw = _read(spec_file)
    problems = Problems(spec_file.name)
    doc = read_yaml(_decode(raw, spec_file.name), problems)
    problems.lines = doc.lines
    shape = _check_shape(doc.data, problems)
    data = doc.data if isinstance(doc.data, dict) else {}
    sections = {k: v if isinstance(v, dict) else {} for k, v in data.items()}
    declared = list(sections.get("params", {}))
    catalog = check_catalog(sections.get("params", {}), problems)
    experiments = check_experiments(
        sections.get("experiments", {}), catalog=catalog, declared=declared, problems=problems
    )
    profiles = check_profiles(
        sections.get("profiles", {}), catalog=catalog, declared=declared, problems=problems
    )
    sweeps = check_sweeps(
        sections.get("sweeps", {}),
        experiments=experiments,
        declared_experiments=list(sections.get("experiments", {})),
        catalog=catalog,
        problems=problems,
    )
    problems.raise_if_any()
    assert shape is not None
    return ProjectSpec(
        name=shape.project,
        root=spec_file.resolve().parent,
        file=spec_file.resolve(),
        digest=str(hash_bytes(raw)),
        params=catalog,
        experiments=experiments,
        profiles=profiles,
        sweeps=sweeps,
        store=shape.store or StoreSpec(),
        remotes=shape.remotes,
        lines=doc.lines,
    )


def _read(spec_file: Path) -> bytes:
    try:
        return spec_file.read_bytes()
    except FileNotFoundError as exc:
        raise ProjectNotFound(
            f"{spec_file} does not exist; run `keel init` to create a project"
        ) from exc
    except OSError as exc:
        raise UserError(f"cannot read {spec_file}: {exc.strerror or exc}") from exc


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = Problem(file=name, line=line, message="the file is not valid UTF-8 text")
        raise ValidationError([problem]) from exc


def _check_shape(data: JsonValue, problems: Problems) -> _FileShape | None:
    """Check the top level: a mapping with a project name and known sections."""
    if not isinstance(data, dict):
        what = "empty" if data is None else "not a mapping of sections"
        problems.add((), f"{SPEC_FILE} is {what}", hint="start it with `project: NAME`", line=1)
        return None
    shape = problems.validate(_FileShape, data, path=())
    if shape is not None and not shape.project.strip():
        problems.add(("project",), "the project name is empty")
    if shape is not None and shape.store is not None:
        check_store(shape.store, ("store",), problems)
    if shape is not None:
        check_remotes(shape.remotes, ("remotes",), problems)
    return shape
