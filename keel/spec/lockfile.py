"""keel.lock: what each experiment resolves to, the environment it runs in and the data it reads.

The file is TOML with sorted keys, written whole and atomically by `keel lock`, and meant to be
committed. ``LOCK_FORMAT`` changes whenever a field changes meaning::

    [keel]                         lock_format, version (of the keel that wrote it)
    [environments.<id>]            python_implementation, python_version, platform,
      .packages .lock_files        name = version; lock file = digest
      .threads                     thread-count variables that were set (OMP_NUM_THREADS, ...)
    [experiments.<name>]           profile, seed, command or entrypoint, environment = <id>
      .params.<param>              value (or ``json``, for a value TOML cannot hold), source
      .inputs."<path>"             kind, digest, size, files
      .code                        commit, dirty: information, never a pin

``<id>`` is the environment's fingerprint, so experiments sharing one environment share a table.
The value types here are also what `keel check` builds from the current state and from a run's
manifest, so every comparison is between two values of one shape. Reading the file back, with
errors that name the line at fault, is :mod:`keel.spec.lockread`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from keel.base.atomic import atomic_write_text
from keel.base.canonical import JsonValue, canonical_json
from keel.base.digest import hash_bytes
from keel.model.manifest import ParamValue

LOCK_FILE = "keel.lock"
LOCK_FORMAT = 1
HEADER = (
    "# keel.lock: what each experiment resolves to, its environment and its input data.\n"
    "# Written by `keel lock`; commit it. `keel check` reports drift from it.\n\n"
)


def thread_vars(env_vars: Mapping[str, JsonValue]) -> dict[str, str]:
    """The thread-count variables (``*THREADS*``: OMP_NUM_THREADS, MKL_NUM_THREADS, ...)."""
    return {k: str(v) for k, v in sorted(env_vars.items()) if "THREADS" in k.upper()}


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentState:
    """The software environment an experiment runs in, as far as drift is concerned."""

    python_implementation: str
    python_version: str
    platform: str
    packages: dict[str, str]
    lock_files: dict[str, str] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """16 hex digits that change whenever any field changes (the table id in keel.lock)."""
        return hash_bytes(canonical_json(self.to_json())).hexdigest[:16]

    def to_json(self) -> dict[str, JsonValue]:
        """The keel.lock table (also the JSON form)."""
        return {
            "python_implementation": self.python_implementation,
            "python_version": self.python_version,
            "platform": self.platform,
            "packages": dict(sorted(self.packages.items())),
            "lock_files": dict(sorted(self.lock_files.items())),
            "threads": dict(sorted(self.threads.items())),
        }

    @classmethod
    def from_facet(cls, facet: Mapping[str, JsonValue]) -> EnvironmentState | None:
        """From an environment facet (a manifest's, or a fresh capture); None if not captured."""
        python, packages = facet.get("python"), facet.get("packages")
        if not facet.get("captured") or not isinstance(python, dict):
            return None
        if not isinstance(packages, dict) or packages.get("captured") is False:
            return None
        lock_files, env_vars = facet.get("lock_files"), facet.get("env_vars")
        return cls(
            python_implementation=str(python.get("implementation")),
            python_version=str(python.get("version")),
            platform=str(python.get("platform")),
            packages={str(k): str(v) for k, v in packages.items()},
            lock_files=_strings(lock_files),
            threads=thread_vars(env_vars) if isinstance(env_vars, dict) else {},
        )


def _strings(section: JsonValue) -> dict[str, str]:
    """A facet section of name → text, or {} when it was not captured."""
    if not isinstance(section, dict) or section.get("captured") is False:
        return {}
    return {str(k): str(v) for k, v in section.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputState:
    """A declared input's content: ``kind`` is file, dir or missing."""

    path: str
    kind: str
    digest: str | None = None
    size: int | None = None
    files: int | None = None
    dataset: str | None = None
    version: str | None = None

    @property
    def version_ref(self) -> str | None:
        """``NAME@VERSION`` for a dataset input, else None."""
        return f"{self.dataset}@{self.version}" if self.dataset and self.version else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeState:
    """The git state: information only (a lock never pins code).

    ``changed`` lists files with uncommitted changes when known (it is not written to keel.lock);
    ``reason`` says why the state is unknown, and is None when it was read.
    """

    commit: str | None
    dirty: bool
    changed: tuple[str, ...] = ()
    reason: str | None = None

    @classmethod
    def from_facet(
        cls, facet: Mapping[str, JsonValue], *, ignore: Collection[str] = ()
    ) -> CodeState:
        """From a code facet; files in ``ignore`` (repository paths) do not make the tree dirty."""
        if not facet.get("captured"):
            return cls(commit=None, dirty=False, reason=str(facet.get("reason")))
        diff_files, untracked = facet.get("diff_files"), facet.get("untracked")
        changed = [str(f) for f in diff_files] if isinstance(diff_files, list) else []
        if isinstance(untracked, list):
            changed += [str(u.get("path")) for u in untracked if isinstance(u, dict)]
        kept = tuple(sorted(f for f in set(changed) if f not in ignore))
        commit = facet.get("commit")
        dirty = bool(kept) if changed else bool(facet.get("dirty"))
        return cls(commit=commit if isinstance(commit, str) else None, dirty=dirty, changed=kept)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentState:
    """One experiment as locked, as it resolves now, or as a run recorded it.

    ``environment`` or ``code`` is None where that side was not captured (it is then not
    compared).
    """

    name: str
    profile: str
    params: dict[str, ParamValue]
    seed: int
    command: str | None = None
    entrypoint: str | None = None
    inputs: tuple[InputState, ...] = ()
    environment: EnvironmentState | None = None
    code: CodeState | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """The content of a keel.lock."""

    experiments: dict[str, ExperimentState]
    keel_version: str
    lock_format: int = LOCK_FORMAT


def dump_lock(lock: Lock) -> str:
    """The keel.lock text: a comment header, then TOML with every key sorted (deterministic)."""
    import tomli_w  # only `keel lock` writes TOML; reading needs just tomllib

    environments: dict[str, JsonValue] = {}
    experiments: dict[str, JsonValue] = {}
    for name, exp in lock.experiments.items():
        table = _experiment_table(exp)
        if exp.environment is not None:
            environments[exp.environment.fingerprint] = exp.environment.to_json()
        experiments[name] = table
    data: dict[str, JsonValue] = {
        "keel": {"lock_format": lock.lock_format, "version": lock.keel_version},
        "environments": environments,
        "experiments": experiments,
    }
    # The header table first, then environments and experiments; every key below is sorted.
    return HEADER + tomli_w.dumps({k: _sorted(v) for k, v in data.items()})


def _experiment_table(exp: ExperimentState) -> dict[str, JsonValue]:
    table: dict[str, JsonValue] = {"profile": exp.profile, "seed": exp.seed}
    if exp.command is not None:
        table["command"] = exp.command
    if exp.entrypoint is not None:
        table["entrypoint"] = exp.entrypoint
    if exp.environment is not None:
        table["environment"] = exp.environment.fingerprint
    table["params"] = {n: _param_table(p) for n, p in exp.params.items()}
    table["inputs"] = {i.path: _input_table(i) for i in exp.inputs}
    if exp.code is not None:
        code: dict[str, JsonValue] = {"dirty": exp.code.dirty}
        if exp.code.commit is not None:
            code["commit"] = exp.code.commit
        if exp.code.reason is not None:
            code["not_captured"] = exp.code.reason
        table["code"] = code
    return table


def _param_table(param: ParamValue) -> dict[str, JsonValue]:
    if _has_null(param.value):  # TOML has no null: keep such a value as JSON text
        return {"json": json.dumps(param.value, sort_keys=True), "source": param.source}
    return {"value": param.value, "source": param.source}


def _input_table(item: InputState) -> dict[str, JsonValue]:
    table: dict[str, JsonValue] = {"kind": item.kind}
    for key in ("digest", "size", "files", "dataset", "version"):
        value = getattr(item, key)
        if value is not None:
            table[key] = value
    return table


def _has_null(value: JsonValue) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    return False


def _sorted(value: JsonValue) -> JsonValue:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def write_lock(path: Path, lock: Lock) -> None:
    """Replace ``path`` with ``lock`` atomically (temp file, fsync, rename)."""
    atomic_write_text(path, dump_lock(lock))
