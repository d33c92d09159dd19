"""The sealed record of one run.

A manifest is stored as canonical JSON (RFC 8785) in the object store; its digest is the run's
seal. It is never edited: notes and baseline marks live beside it. ``SCHEMA_VERSION`` changes
whenever a field changes meaning; readers upgrade older versions through ``upgrade``.

Facet sections (``code``, ``environment``, ``hardware``) are open JSON objects: each carries
``captured: true`` or ``captured: false`` with a ``reason``, so a missing facet is explicit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from keel.model.run import RunStatus

SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutorInfo(_Frozen):
    """Which executor ran the run, with what parallelism, on which worker."""

    name: str
    parallelism: int = 1
    worker: str | None = None


class RunInfo(_Frozen):
    """Identity, lifecycle and context of the run."""

    id: str
    project: str
    experiment: str
    status: RunStatus
    created_at: str
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    signal: str | None = None
    host: str
    user: str
    pid: int | None = None
    keel_version: str
    executor: ExecutorInfo
    profile: str
    why: str | None = None
    tags: tuple[str, ...] = ()
    reproduces: str | None = None


class ParamValue(_Frozen):
    """A resolved parameter and the layer it came from."""

    value: JsonValue
    source: str


class ConfigInfo(_Frozen):
    """The resolved configuration and how it was obtained."""

    params: dict[str, ParamValue]
    experiment: dict[str, JsonValue]
    profile: dict[str, JsonValue]
    command: tuple[str, ...] | None = None
    entrypoint: str | None = None
    cwd: str
    spec_file: str
    spec_digest: str


class SeedInfo(_Frozen):
    """The root seed, how it was derived, and what the run seeded with it."""

    root: int
    source: str
    derivation: str
    pythonhashseed: str
    pythonhashseed_source: Literal["derived", "user"]
    seeded: tuple[dict[str, JsonValue], ...] = ()


class FileRecord(_Frozen):
    """A captured file or folder: where, what digest, whether the bytes are in the store."""

    path: str
    kind: Literal["file", "dir", "missing"]
    digest: str | None = None
    size: int | None = None
    files: int | None = None
    stored: bool = False


class InputRecord(FileRecord):
    """An input, hashed before the run and again after it."""

    digest_after: str | None = None
    changed_during_run: bool = False


class LogRecord(_Frozen):
    """A captured output stream."""

    digest: str
    size: int


class MetricPoint(_Frozen):
    """One logged value of a metric series."""

    value: float
    step: int | None = None


class MetricRecord(_Frozen):
    """A metric's final value, its series and its declared goal and tolerance."""

    value: float
    series: tuple[MetricPoint, ...] = ()
    goal: Literal["max", "min"] | None = None
    tolerance: float | None = None
    source: Literal["file", "api"]


class Manifest(_Frozen):
    """Everything that produced one run, sealed by the digest of its canonical JSON."""

    schema_version: int = Field(default=SCHEMA_VERSION)
    kind: Literal["keel.run"] = "keel.run"
    run: RunInfo
    config: ConfigInfo
    seeds: SeedInfo
    code: dict[str, JsonValue]
    inputs: tuple[InputRecord, ...]
    environment: dict[str, JsonValue]
    hardware: dict[str, JsonValue]
    outputs: tuple[FileRecord, ...] = ()
    artifacts: tuple[FileRecord, ...] = ()
    metrics: dict[str, MetricRecord] = Field(default_factory=dict)
    logs: dict[str, LogRecord] = Field(default_factory=dict)
    flags: tuple[str, ...] = ()
    not_captured: dict[str, str] = Field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON form that is canonicalised and stored."""
        data: dict[str, JsonValue] = self.model_dump(mode="json")
        return data

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> Manifest:
        """Read a stored manifest, upgrading older schema versions first."""
        return cls.model_validate(upgrade(data))


def upgrade(data: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Bring a stored manifest up to ``SCHEMA_VERSION``.

    Raises:
        keel.errors.UserError: for a manifest written by a newer keel.
    """
    from keel.errors import UserError

    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise UserError(f"manifest has no valid schema_version ({version!r}); it is not a keel run")
    if version > SCHEMA_VERSION:
        raise UserError(
            f"manifest schema_version {version} is newer than this keel understands "
            f"({SCHEMA_VERSION}); upgrade keel to read it"
        )
    return data
