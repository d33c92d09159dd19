"""Noise profiles: how much an experiment's results move when nothing, or one factor, changes.

A profile is measured by `keel determinism`: groups of runs of one resolved experiment, either
same-seed replicates or runs with one factor perturbed (the seed, the BLAS/OpenMP thread count,
``PYTHONHASHSEED``). Each group records which outputs stayed bit-identical and each metric's
spread. A later difference in a metric is *within noise* when
``|delta| <= max(declared tolerance, NOISE_FACTOR * std)``, with the largest standard deviation
any group measured for that metric.

Everything here is pure: building a group from manifests, summarising, (de)serialising.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal

from keel.base.canonical import JsonValue
from keel.model.manifest import Manifest

NOISE_FACTOR = 2.0
"""A delta up to this many standard deviations of the measured spread is within noise."""

PROFILE_KIND: Literal["keel.noise"] = "keel.noise"
PROFILE_SCHEMA_VERSION = 1
_FORBID: dict[str, str] = {"extra": "forbid"}


class Perturbation(StrEnum):
    """What varies between the runs of a group (``replicate``: nothing)."""

    REPLICATE = "replicate"
    SEED = "seed"
    THREADS = "threads"
    HASHSEED = "hashseed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """Summary of a metric's values over a group of runs (``std`` is the sample deviation)."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    n: int
    mean: float
    std: float
    min: float
    max: float

    @property
    def constant(self) -> bool:
        """True when every value was the same."""
        return self.min == self.max


_ONE = Spread(n=1, mean=0.0, std=0.0, min=0.0, max=0.0)


def spread(values: Sequence[float]) -> Spread:
    """Mean, sample standard deviation (0 for one value), min and max of ``values``.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("spread of no values")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(
        n=len(values), mean=statistics.fmean(values), std=std, min=min(values), max=max(values)
    )


def within_noise(delta: float, *, tolerance: float, std: float) -> bool:
    """True when a metric moved by ``delta`` no more than its tolerance or its measured noise."""
    return abs(delta) <= max(tolerance, NOISE_FACTOR * std)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputVariation:
    """How many distinct contents one declared output had across a group's runs."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    distinct: int
    runs: int

    @property
    def identical(self) -> bool:
        """True when every run produced the same bytes."""
        return self.distinct <= 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """One set of runs with one perturbation, and what varied across them."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    perturbation: Perturbation
    settings: tuple[str, ...]
    runs: tuple[str, ...]
    failed: int = 0
    outputs: dict[str, OutputVariation] = field(default_factory=dict)
    metrics: dict[str, Spread] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """True when every output was bit-identical and every metric constant."""
        return all(o.identical for o in self.outputs.values()) and all(
            s.constant for s in self.metrics.values()
        )

    @property
    def varying_outputs(self) -> tuple[str, ...]:
        """Outputs whose bytes differed between runs."""
        return tuple(p for p, o in sorted(self.outputs.items()) if not o.identical)

    @property
    def varying_metrics(self) -> tuple[str, ...]:
        """Metrics whose value differed between runs."""
        return tuple(m for m, s in sorted(self.metrics.items()) if not s.constant)


def group_of(
    perturbation: Perturbation, manifests: Sequence[Manifest], *, settings: Sequence[str]
) -> Group:
    """Summarise the runs of one group: output variation and metric spread.

    Failed runs are counted; only succeeded runs enter the comparison.
    """
    ok = [m for m in manifests if m.run.status.value == "succeeded"]
    outputs: dict[str, set[str | None]] = {}
    values: dict[str, list[float]] = {}
    for m in ok:
        for rec in m.outputs:
            outputs.setdefault(rec.path, set()).add(rec.digest)
        for name, metric in m.metrics.items():
            values.setdefault(name, []).append(metric.value)
    return Group(
        perturbation=perturbation,
        settings=tuple(settings),
        runs=tuple(m.run.id for m in manifests),
        failed=len(manifests) - len(ok),
        outputs={
            p: OutputVariation(distinct=len(d), runs=len(ok)) for p, d in sorted(outputs.items())
        },
        metrics={name: spread(v) for name, v in sorted(values.items())},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseProfile:
    """An experiment's measured noise, stored as the object named by the ref ``noise/<name>``.

    ``previous`` is the digest of the profile it replaced, so profiles form a history.
    """

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID
    project: str
    experiment: str
    created_at: str
    seed: int
    params: dict[str, JsonValue]
    groups: tuple[Group, ...]
    previous: str | None = None
    schema_version: int = PROFILE_SCHEMA_VERSION
    kind: Literal["keel.noise"] = PROFILE_KIND

    @property
    def replicates(self) -> Group | None:
        """The same-seed group, when it was measured."""
        return next((g for g in self.groups if g.perturbation is Perturbation.REPLICATE), None)

    @property
    def deterministic(self) -> bool:
        """True when same-seed replicates were all bit-identical (and none failed)."""
        rep = self.replicates
        return rep is not None and rep.failed == 0 and rep.identical

    def metric_std(self, name: str) -> float | None:
        """The largest standard deviation any group measured for ``name`` (None: unmeasured)."""
        stds = [g.metrics[name].std for g in self.groups if g.metrics.get(name, _ONE).n > 1]
        return max(stds) if stds else None

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON form that is canonicalised and stored."""
        from keel.model.records import to_json_value

        data = to_json_value(self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> NoiseProfile:
        """Read a stored profile.

        Raises:
            keel.errors.UserError: the data is not a noise profile this keel can read.
        """
        from keel.model.records import check_header, decode_record

        remedy = "re-measure it with `keel determinism`"
        record = check_header(dict(data), tag_key="kind", tag=PROFILE_KIND,
                              current=PROFILE_SCHEMA_VERSION, what="noise profile",
                              remedy=remedy)  # fmt: skip
        return decode_record(cls, record, what="noise profile", remedy=remedy)


