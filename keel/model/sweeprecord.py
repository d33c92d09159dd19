"""The frozen record of one sweep, the refs that tie its trials to runs, and its result table.

A :class:`SweepRecord` is written once, as canonical JSON, before the first trial starts; its
ref is ``sweeps/<id>``. It holds everything a trial needs — the code facet captured once, the
digests of the inputs, the fold partition and every trial's frozen plan — so that no trial
ever reads keel.yaml or the working tree again.

Trial refs live under their own prefix, ``sweep-trials/<id>/<key>`` (``key`` without its
``blake3:`` prefix), and name the newest run of each trial (its start record while running,
its seal after). They cannot live under ``sweeps/<id>/``: a ref name cannot be both a ref and
a folder of refs. Configurations an adaptive strategy (optuna) asks for while running are
recorded the same way, as objects under ``sweep-configs/<id>/<config>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

from keel.base.canonical import JsonValue
from keel.model.decode import Decoder, Refused
from keel.model.manifest import InputRecord
from keel.model.sweep import KIND_TAG, REF_PREFIX, Partition, SweepSpec, TrialSpec

_T = TypeVar("_T")
SCHEMA_VERSION = 1
TRIAL_REF_PREFIX = "sweep-trials/"
CONFIG_REF_PREFIX = "sweep-configs/"
COPIED_FLAG = "code not frozen by git: copied"


def record_ref(sweep_id: str) -> str:
    """The ref of a sweep's record."""
    return f"{REF_PREFIX}{sweep_id}"


def trial_ref(sweep_id: str, key: str) -> str:
    """The ref naming the newest run of the trial whose identity is ``key``."""
    return f"{TRIAL_REF_PREFIX}{sweep_id}/{key.rpartition(':')[2]}"


def config_ref(sweep_id: str, config: int) -> str:
    """The ref of a configuration an adaptive strategy asked for while the sweep ran."""
    return f"{CONFIG_REF_PREFIX}{sweep_id}/{config:06d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedTrial:
    """One trial and the frozen plan it runs (``RunPlan.to_json()``)."""

    trial: TrialSpec
    plan: dict[str, JsonValue]


@dataclass(frozen=True, slots=True, kw_only=True)
class AskedConfig:
    """A configuration an adaptive strategy proposed, with its trials (object ``config_ref``).

    ``number`` is the strategy's own trial number (optuna's ``trial.number``).
    """

    config: int
    number: int
    params: dict[str, JsonValue]
    trials: tuple[PlannedTrial, ...]
    kind: Literal["keel.sweep.config"] = "keel.sweep.config"


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepRecord:
    """Everything a sweep's trials run from, frozen before the first one starts.

    ``spec`` is the parsed :class:`~keel.model.sweep.SweepSpec` as JSON; ``spec_digest`` the
    digest of the keel.yaml it was resolved against; ``code`` the code facet every trial
    records; ``inputs`` each declared input as hashed (and stored) once; ``trials`` the
    planned trials in order (empty for optuna, whose configurations are asked as it goes);
    ``strategy``
    what the strategy needs to continue (optuna: study name, sampler seed, batch size).
    """

    id: str
    created_at: str
    project: str
    experiment: str
    profile: str
    keel_version: str
    spec: dict[str, JsonValue]
    spec_digest: str
    root_seed: int
    seed_derivation: str
    code: dict[str, JsonValue]
    inputs: tuple[InputRecord, ...]
    partition: Partition | None
    trials: tuple[PlannedTrial, ...]
    strategy: dict[str, JsonValue] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    why: str | None = None
    schema_version: int = SCHEMA_VERSION
    kind: Literal["keel.sweep"] = "keel.sweep"

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON form that is canonicalised and stored."""
        return _jsonable_record(self)

    @classmethod
    def from_json(cls, data: JsonValue) -> SweepRecord:
        """Read a stored record.

        Raises:
            keel.errors.UserError: not a sweep record this keel can read.
        """
        from keel.model.records import check_header, decode_record

        remedy = "it was edited or damaged, or written by a newer keel"
        record = check_header(data, tag_key="kind", tag=KIND_TAG, current=SCHEMA_VERSION,
                              what="sweep record", remedy=remedy)  # fmt: skip
        return decode_record(cls, record, what="sweep record", remedy=remedy)

    @property
    def input_digests(self) -> dict[str, str]:
        """``{path: digest}`` of the declared inputs, as frozen."""
        return {r.path: r.digest or "" for r in self.inputs}

    def sweep_spec(self) -> SweepSpec:
        """The parsed spec the sweep was frozen from."""
        return decode_spec(self.spec)


def encode(value: object) -> JsonValue:
    """Any of this module's (or ``keel.model.sweep``'s) values as JSON."""
    from keel.model.records import to_json_value

    return to_json_value(value)


def _jsonable_record(value: object) -> dict[str, JsonValue]:
    data = encode(value)
    assert isinstance(data, dict)
    return data


def decode_spec(data: JsonValue) -> SweepSpec:
    """A :class:`SweepSpec` from its JSON form.

    Raises:
        keel.errors.UserError: the data is not a sweep spec.
    """
    return _decode(SweepSpec, data, "sweep spec")


def decode_config(data: JsonValue) -> AskedConfig:
    """An :class:`AskedConfig` from its JSON form.

    Raises:
        keel.errors.UserError: the data is not an asked configuration.
    """
    return _decode(AskedConfig, data, "sweep configuration")


def _decode(cls: type[_T], data: JsonValue, what: str) -> _T:
    from keel.errors import UserError

    try:
        return Decoder().record(cls, data)
    except (Refused, TypeError) as exc:
        raise UserError(f"{what} is not valid ({exc}); it was edited or damaged") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricStats:
    """One metric over a configuration's finished trials: mean, sample std (None for n < 2)."""

    mean: float | None
    std: float | None
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepRow:
    """One configuration of a sweep, aggregated over its seeds and folds."""

    config: int
    params: dict[str, JsonValue]
    trials: int
    statuses: dict[str, int]
    metrics: dict[str, MetricStats]
    runs: tuple[str, ...] = ()
    best: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepTable:
    """`keel sweep show`: rows in configuration order, whatever order trials finished in.

    ``metric`` and ``goal`` say which row is ``best``; ``metrics`` orders the columns.
    """

    id: str
    experiment: str
    strategy: str
    created_at: str
    trials: int
    statuses: dict[str, int]
    metrics: tuple[str, ...]
    rows: tuple[SweepRow, ...]
    metric: str | None = None
    goal: Literal["max", "min"] | None = None
    seeds: int = 1
    folds: int | None = None
    partition: str | None = None
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        """The table as JSON (`keel sweep show --json`)."""
        return _jsonable_record(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepListing:
    """One line of `keel sweep ls`."""

    id: str
    experiment: str
    strategy: str
    created_at: str
    trials: int
    statuses: dict[str, int]
    why: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The line as JSON."""
        return _jsonable_record(self)
