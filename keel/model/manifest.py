"""The sealed record of one run.

A manifest is stored as canonical JSON (RFC 8785) in the object store; its digest is the run's
seal. It is never edited: notes and baseline marks live beside it. ``SCHEMA_VERSION`` changes
whenever a field changes meaning; readers upgrade older versions through ``upgrade``.

Facet sections (``code``, ``environment``, ``hardware``) are open JSON objects: each carries
``captured: true`` or ``captured: false`` with a ``reason``, so a missing facet is explicit.

The types are frozen dataclasses so that writing a manifest (on every `keel run`) costs no
schema building; reading one back (``Manifest.from_json``) checks it strictly against the type
hints (``keel.model.decode``) and, for a record that fails, lets pydantic say exactly why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from keel.base.canonical import JsonValue
from keel.model.records import OMIT_NONE
from keel.model.run import RunStatus

if TYPE_CHECKING:
    pass

SCHEMA_VERSION = 1
_FORBID: dict[str, str] = {"extra": "forbid"}  # pydantic config: unknown fields are errors
# Fields added after schema version 1 are written only when set, so a manifest that does not use
# them keeps the exact bytes (and seal) it had before they existed.
_OMIT_NONE = OMIT_NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorInfo:
    """Which executor ran the run, with what parallelism, on which worker."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    name: str
    parallelism: int = 1
    worker: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """Identity, lifecycle and context of the run."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    id: str
    project: str
    experiment: str
    status: RunStatus
    created_at: str
    host: str
    user: str
    keel_version: str
    executor: ExecutorInfo
    profile: str
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    signal: str | None = None
    pid: int | None = None
    why: str | None = None
    tags: tuple[str, ...] = ()
    reproduces: str | None = None
    allow_drift: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamValue:
    """A resolved parameter and the layer it came from."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    value: JsonValue
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigInfo:
    """The resolved configuration and how it was obtained."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    params: dict[str, ParamValue]
    experiment: dict[str, JsonValue]
    profile: dict[str, JsonValue]
    cwd: str
    spec_file: str
    spec_digest: str
    command: tuple[str, ...] | None = None
    entrypoint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedInfo:
    """The root seed, how it was derived, and what the run seeded with it."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    root: int
    source: str
    derivation: str
    pythonhashseed: str
    pythonhashseed_source: Literal["derived", "user"]
    seeded: tuple[dict[str, JsonValue], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """A captured file or folder: where, what digest, whether the bytes are in the store."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    path: str
    kind: Literal["file", "dir", "missing"]
    digest: str | None = None
    size: int | None = None
    files: int | None = None
    stored: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRecord(FileRecord):
    """An input, hashed before the run and again after it; a dataset input names its version."""

    digest_after: str | None = None
    changed_during_run: bool = False
    dataset: str | None = field(default=None, metadata=_OMIT_NONE)
    version: str | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """A captured output stream."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    digest: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricPoint:
    """One logged value of a metric series."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    value: float
    step: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricRecord:
    """A metric's final value, its series and its declared goal and tolerance."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    value: float
    source: Literal["file", "api"]
    series: tuple[MetricPoint, ...] = ()
    goal: Literal["max", "min"] | None = None
    tolerance: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Everything that produced one run, sealed by the digest of its canonical JSON."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    run: RunInfo
    config: ConfigInfo
    seeds: SeedInfo
    code: dict[str, JsonValue]
    inputs: tuple[InputRecord, ...]
    environment: dict[str, JsonValue]
    hardware: dict[str, JsonValue]
    outputs: tuple[FileRecord, ...] = ()
    artifacts: tuple[FileRecord, ...] = ()
    metrics: dict[str, MetricRecord] = field(default_factory=dict)
    logs: dict[str, LogRecord] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    not_captured: dict[str, str] = field(default_factory=dict)
    reproduction: dict[str, JsonValue] | None = None
    sweep: dict[str, JsonValue] | None = field(default=None, metadata=_OMIT_NONE)
    stage: dict[str, JsonValue] | None = field(default=None, metadata=_OMIT_NONE)
    schema_version: int = SCHEMA_VERSION
    kind: Literal["keel.run"] = "keel.run"

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON form that is canonicalised and stored."""
        from keel.model.records import to_json_value

        data = to_json_value(self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> Manifest:
        """Read a stored manifest, upgrading older schema versions first.

        Raises:
            keel.errors.UserError: the data is not a manifest this keel can read.
        """
        from keel.model.records import decode_record

        return decode_record(
            cls,
            upgrade(data),
            what="manifest",
            remedy="it was not written by this keel version or was edited",
        )


def upgrade(data: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Bring a stored manifest up to ``SCHEMA_VERSION``.

    Raises:
        keel.errors.UserError: for a manifest written by a newer keel, or not a manifest.
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
