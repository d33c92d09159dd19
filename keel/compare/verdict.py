"""Judge a reproduction against the run it reproduces: a verdict, and every difference measured.

The rules, in order:

- a run that could not be re-executed is ``NOT_REPRODUCIBLE`` (the caller gives the reason);
- a different final status, a metric missing on one side, or a metric that moved by more than
  its tolerance makes it ``DIVERGED``;
- otherwise, every declared output bit-identical and every metric exactly equal is
  ``REPRODUCED``;
- otherwise — metrics within tolerance, some outputs differ — it is
  ``REPRODUCED_WITHIN_TOLERANCE``. Differing outputs are only tolerated when there is at least
  one metric to vouch for the result: a run without metrics whose outputs differ ``DIVERGED``.

A metric's tolerance is the one given by the caller, else the one declared for it in the
original run (``metrics: {name: {tolerance: ...}}``), else 0. When a noise profile is given,
each metric difference also says whether it is within the measured noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from keel.base.canonical import JsonValue
from keel.compare.noise import NoiseProfile, within_noise
from keel.model.manifest import FileRecord, Manifest, MetricRecord

_NONE: Mapping[str, float] = MappingProxyType({})


class Verdict(StrEnum):
    """The answer to "did it reproduce?"."""

    REPRODUCED = "REPRODUCED"
    REPRODUCED_WITHIN_TOLERANCE = "REPRODUCED_WITHIN_TOLERANCE"
    DIVERGED = "DIVERGED"
    NOT_REPRODUCIBLE = "NOT_REPRODUCIBLE"

    @property
    def reproduced(self) -> bool:
        """True for both kinds of success."""
        return self in (Verdict.REPRODUCED, Verdict.REPRODUCED_WITHIN_TOLERANCE)

    @property
    def exit_code(self) -> int:
        """0 when reproduced, 1 when diverged, 2 when it could not be re-executed."""
        if self.reproduced:
            return 0
        return 1 if self is Verdict.DIVERGED else 2


class DifferenceKind(StrEnum):
    """What a difference is about."""

    STATUS = "status"
    OUTPUT = "output"
    METRIC = "metric"


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One thing that differs between the original run and its reproduction.

    ``delta`` is ``reproduction - original`` for a metric; ``tolerated`` says whether the
    verdict accepts it; ``within_noise`` is None when no noise was measured for it.
    """

    kind: DifferenceKind
    name: str
    original: JsonValue
    reproduction: JsonValue
    note: str
    tolerated: bool = False
    delta: float | None = None
    tolerance: float | None = None
    within_noise: bool | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON form recorded in the reproduction's manifest."""
        return {
            "kind": self.kind.value,
            "name": self.name,
            "original": self.original,
            "reproduction": self.reproduction,
            "note": self.note,
            "tolerated": self.tolerated,
            "delta": self.delta,
            "tolerance": self.tolerance,
            "within_noise": self.within_noise,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """A verdict with its evidence; truthy when the run reproduced."""

    verdict: Verdict
    differences: tuple[Difference, ...] = ()
    reason: str | None = None
    outputs_compared: int = 0
    metrics_compared: int = 0

    def __bool__(self) -> bool:
        return self.verdict.reproduced

    def to_json(self) -> dict[str, JsonValue]:
        """``{"verdict", "reason", "differences", "outputs_compared", "metrics_compared"}``."""
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "differences": [d.to_json() for d in self.differences],
            "outputs_compared": self.outputs_compared,
            "metrics_compared": self.metrics_compared,
        }


def not_reproducible(reason: str) -> Judgement:
    """The judgement for a run that could not be re-executed, with the reason why."""
    return Judgement(verdict=Verdict.NOT_REPRODUCIBLE, reason=reason)


def judge(
    original: Manifest,
    reproduction: Manifest,
    tolerances: Mapping[str, float] = _NONE,
    *,
    noise: NoiseProfile | None = None,
) -> Judgement:
    """Compare a reproduction's status, outputs (by digest) and metrics with the original's."""
    status = _status(original, reproduction)
    metrics = _metrics(original, reproduction, tolerances, noise)
    vouched = bool(metrics[1]) and not status and all(d.tolerated for d in metrics[0])
    outputs = _outputs(original.outputs, reproduction.outputs, tolerated=vouched)
    differences = (*status, *outputs[0], *metrics[0])
    if not differences:
        verdict = Verdict.REPRODUCED
    elif all(d.tolerated for d in differences):
        verdict = Verdict.REPRODUCED_WITHIN_TOLERANCE
    else:
        verdict = Verdict.DIVERGED
    return Judgement(
        verdict=verdict,
        differences=differences,
        outputs_compared=outputs[1],
        metrics_compared=len(metrics[1]),
    )


def _status(original: Manifest, reproduction: Manifest) -> tuple[Difference, ...]:
    a, b = original.run, reproduction.run
    if a.status == b.status:
        return ()
    return (
        Difference(
            kind=DifferenceKind.STATUS,
            name="status",
            original=a.status.value,
            reproduction=b.status.value,
            note=f"exit code {a.exit_code} → {b.exit_code}",
        ),
    )


def _outputs(
    original: tuple[FileRecord, ...], reproduction: tuple[FileRecord, ...], *, tolerated: bool
) -> tuple[tuple[Difference, ...], int]:
    theirs = {r.path: r for r in reproduction}
    found: list[Difference] = []
    for rec in original:
        other = theirs.get(rec.path)
        if other is not None and other.kind == rec.kind and other.digest == rec.digest:
            continue
        found.append(
            Difference(
                kind=DifferenceKind.OUTPUT,
                name=rec.path,
                original=rec.digest,
                reproduction=other.digest if other else None,
                note=_output_note(rec, other),
                tolerated=tolerated,
            )
        )
    return tuple(found), len(original)


def _output_note(a: FileRecord, b: FileRecord | None) -> str:
    if b is None or b.kind == "missing":
        return "not produced by the reproduction"
    if a.kind == "missing":
        return "produced by the reproduction only"
    if a.kind == "dir" and b.kind == "dir":
        return f"content differs ({a.files} → {b.files} files, {a.size} → {b.size} bytes)"
    if a.kind != b.kind:
        return f"a {a.kind} became a {b.kind}"
    return f"content differs ({a.size} → {b.size} bytes)"


def _metrics(
    original: Manifest,
    reproduction: Manifest,
    tolerances: Mapping[str, float],
    noise: NoiseProfile | None,
) -> tuple[tuple[Difference, ...], tuple[str, ...]]:
    names = tuple(sorted(set(original.metrics) | set(reproduction.metrics)))
    found: list[Difference] = []
    for name in names:
        a, b = original.metrics.get(name), reproduction.metrics.get(name)
        if a is not None and b is not None and a.value == b.value:
            continue
        tolerance = tolerances.get(name, (a.tolerance if a else None) or 0.0)
        found.append(_metric_difference(name, a, b, tolerance, noise))
    return tuple(found), names


def _metric_difference(
    name: str,
    a: MetricRecord | None,
    b: MetricRecord | None,
    tolerance: float,
    noise: NoiseProfile | None,
) -> Difference:
    if a is None or b is None:
        side = "reproduction" if a is not None else "original run"
        return Difference(
            kind=DifferenceKind.METRIC,
            name=name,
            original=a.value if a else None,
            reproduction=b.value if b else None,
            note=f"missing in the {side}",
            tolerance=tolerance,
        )
    delta = b.value - a.value
    std = noise.metric_std(name) if noise is not None else None
    relative = f", {delta / a.value:+.3%}" if a.value else ""
    return Difference(
        kind=DifferenceKind.METRIC,
        name=name,
        original=a.value,
        reproduction=b.value,
        note=f"{delta:+.6g}{relative} (tolerance {tolerance:g})",
        tolerated=abs(delta) <= tolerance,
        delta=delta,
        tolerance=tolerance,
        within_noise=None if std is None else within_noise(delta, tolerance=tolerance, std=std),
    )


def environment_changes(a: Manifest, b: Manifest) -> list[JsonValue]:
    """What differs between two runs' environment and hardware facets (Python, packages,
    variables such as thread counts, BLAS, platform, CPU), as ``keel diff`` reports it:
    ``{"kind", "key", "a", "b", "note"}`` objects, ``a`` being the original's value."""
    # Imported on use: the diff machinery is needed only once a reproduction has run.
    from keel.compare.change import ChangeKind, Collector
    from keel.compare.diff import diff_environment
    from keel.compare.environment import compare_hardware

    hardware = Collector(ChangeKind.HARDWARE)
    compare_hardware(hardware, a.hardware, b.hardware)
    changes = (*diff_environment(a.environment, b.environment), *hardware.shown)
    return [c.to_json() for c in changes]
