"""gate: goals and tolerances decide; missing metrics fail; a slow decay is caught."""

from __future__ import annotations

import math

import pytest

from keel.compare.gate import GateResult, Verdict, gate
from keel.model.manifest import MetricRecord


def _m(value: float, goal: str | None = "max", tolerance: float | None = 0.05) -> MetricRecord:
    return MetricRecord(value=value, source="file", goal=goal, tolerance=tolerance)  # type: ignore[arg-type]


def _verdict(run: float, base: float, goal: str = "max", tolerance: float = 0.05) -> Verdict:
    result = gate(run={"m": _m(run, goal, tolerance)}, baseline={"m": _m(base, goal, tolerance)})
    return result.rows[0].verdict


@pytest.mark.parametrize(
    ("run", "base", "goal", "verdict"),
    [
        (0.95, 0.90, "max", Verdict.IMPROVED),
        (0.90, 0.90, "max", Verdict.WITHIN),
        (0.86, 0.90, "max", Verdict.WITHIN),
        (0.85, 0.90, "max", Verdict.WITHIN),  # exactly the tolerance, despite float rounding
        (0.84, 0.90, "max", Verdict.REGRESSED),
        (0.10, 0.20, "min", Verdict.IMPROVED),
        (0.25, 0.20, "min", Verdict.WITHIN),
        (0.26, 0.20, "min", Verdict.REGRESSED),
        (math.nan, 0.20, "min", Verdict.REGRESSED),
    ],
    ids=[
        "better",
        "equal",
        "within",
        "at-tolerance",
        "worse",
        "min-better",
        "min-within",
        "min-worse",
        "nan",
    ],
)
def test_verdict_follows_goal_and_tolerance(
    run: float, base: float, goal: str, verdict: Verdict
) -> None:
    assert _verdict(run, base, goal) is verdict


def test_zero_tolerance_fails_any_worsening() -> None:
    assert _verdict(0.8999999, 0.9, tolerance=0.0) is Verdict.REGRESSED
    assert _verdict(0.9, 0.9, tolerance=0.0) is Verdict.WITHIN


def test_a_metric_missing_from_the_run_fails() -> None:
    result = gate(run={}, baseline={"acc": _m(0.9)})
    assert result.rows[0].verdict is Verdict.MISSING
    assert not result and result.exit_code == 1 and result.failures == result.rows


def test_metrics_without_goal_or_baseline_never_fail() -> None:
    result = gate(
        run={"loss": _m(9.0, goal=None, tolerance=None), "new": _m(0.1)},
        baseline={"loss": _m(0.1, goal=None, tolerance=None), "gone": _m(1.0, goal=None)},
    )
    verdicts = {r.metric: r.verdict for r in result.rows}
    assert verdicts == {"gone": Verdict.NO_GOAL, "loss": Verdict.NO_GOAL, "new": Verdict.NEW}
    assert result.passed and result.exit_code == 0


def test_goal_and_tolerance_come_from_the_baseline() -> None:
    loosened = {"acc": _m(0.80, tolerance=0.5)}
    assert not gate(run=loosened, baseline={"acc": _m(0.90, tolerance=0.05)})
    assert gate(run={"acc": _m(0.80)}, baseline={"acc": _m(0.90, goal=None)}).rows[0].verdict is (
        Verdict.REGRESSED
    )


def test_a_slow_decay_passes_step_by_step_but_fails_against_the_baseline() -> None:
    baseline = {"acc": _m(1.00)}
    values = [0.97, 0.94, 0.91, 0.88]
    previous = baseline
    against_previous: list[bool] = []
    against_baseline: list[bool] = []
    for value in values:
        run = {"acc": _m(value)}
        against_previous.append(gate(run=run, baseline=previous).passed)
        against_baseline.append(gate(run=run, baseline=baseline).passed)
        previous = run
    assert all(against_previous)
    assert against_baseline == [True, False, False, False]


def test_rows_and_json_shape() -> None:
    result = gate(run={"acc": _m(0.8)}, baseline={"acc": _m(0.9)})
    row = result.rows[0]
    assert row.delta == pytest.approx(-0.1)
    assert result.to_json() == {
        "passed": False,
        "rows": [
            {
                "metric": "acc",
                "goal": "max",
                "tolerance": 0.05,
                "baseline": 0.9,
                "run": 0.8,
                "delta": row.delta,
                "verdict": "regression",
                "failed": True,
            }
        ],
    }
    assert GateResult(rows=()).passed
