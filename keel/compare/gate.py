"""The gate: is a run's every goal metric at least as good as the baseline's, within tolerance?

Pure. A metric's goal (``max`` or ``min``) and absolute tolerance come from the baseline's metric
record — the audited reference — or, for a metric the baseline declared no goal for, from the
run's. A metric worse than the baseline by more than its tolerance is a regression; better, or
worse within tolerance, passes; a goal metric the baseline has but the run lacks fails. Metrics
without a goal are shown but never fail, and a goal metric new in the run has nothing to beat.

Always compare with the baseline, never with the previous run: a slow decay, each step within
tolerance of the last, still crosses the tolerance measured from the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from keel.base.canonical import JsonValue
from keel.model.manifest import MetricRecord

Goal = Literal["max", "min"]


class Verdict(StrEnum):
    """A metric's outcome at the gate."""

    IMPROVED = "improved"
    WITHIN = "within tolerance"
    REGRESSED = "regression"
    MISSING = "missing"
    NEW = "new"
    NO_GOAL = "no goal"

    @property
    def failed(self) -> bool:
        """True for the verdicts that fail the gate."""
        return self in (Verdict.REGRESSED, Verdict.MISSING)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRow:
    """One metric: its goal, tolerance, both values and the verdict."""

    metric: str
    goal: Goal | None
    tolerance: float
    baseline: float | None
    run: float | None
    verdict: Verdict

    @property
    def delta(self) -> float | None:
        """``run - baseline`` when both exist."""
        if self.run is None or self.baseline is None:
            return None
        return self.run - self.baseline

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "metric": self.metric,
            "goal": self.goal,
            "tolerance": self.tolerance,
            "baseline": _finite(self.baseline),
            "run": _finite(self.run),
            "delta": _finite(self.delta),
            "verdict": self.verdict.value,
            "failed": self.verdict.failed,
        }


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """Every metric's row; truthy when the gate passes."""

    rows: tuple[GateRow, ...]

    @property
    def passed(self) -> bool:
        """True when no metric regressed or went missing."""
        return not any(row.verdict.failed for row in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> tuple[GateRow, ...]:
        """The rows that fail the gate."""
        return tuple(row for row in self.rows if row.verdict.failed)

    @property
    def exit_code(self) -> int:
        """0 when the gate passes, 1 otherwise."""
        return 0 if self.passed else 1

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {"passed": self.passed, "rows": [row.to_json() for row in self.rows]}


def gate(*, run: Mapping[str, MetricRecord], baseline: Mapping[str, MetricRecord]) -> GateResult:
    """Compare a run's metrics with the baseline's, metric by metric (sorted by name)."""
    rows = [
        _row(name, run.get(name), baseline.get(name)) for name in sorted(set(run) | set(baseline))
    ]
    return GateResult(rows=tuple(rows))


def _row(name: str, run: MetricRecord | None, base: MetricRecord | None) -> GateRow:
    spec = base if base is not None and base.goal is not None else run
    goal = spec.goal if spec is not None else None
    tolerance = (spec.tolerance if spec is not None else None) or 0.0
    base_value = base.value if base is not None else None
    run_value = run.value if run is not None else None
    verdict = _verdict(goal, tolerance, base_value, run_value)
    return GateRow(
        metric=name,
        goal=goal,
        tolerance=tolerance,
        baseline=base_value,
        run=run_value,
        verdict=verdict,
    )


def _verdict(goal: Goal | None, tolerance: float, base: float | None, run: float | None) -> Verdict:
    if goal is None:
        return Verdict.NO_GOAL
    if base is None or math.isnan(base):
        return Verdict.NEW
    if run is None:
        return Verdict.MISSING
    if math.isnan(run):
        return Verdict.REGRESSED
    worse = base - run if goal == "max" else run - base
    # Within float rounding of the tolerance counts as within: 0.9 - 0.85 is 0.05000000000000004.
    slack = math.isclose(worse, tolerance, rel_tol=1e-9, abs_tol=1e-12 * max(1.0, abs(base)))
    if worse > tolerance and not slack:
        return Verdict.REGRESSED
    return Verdict.IMPROVED if worse < 0 else Verdict.WITHIN
