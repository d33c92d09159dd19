"""Pure attribution arithmetic."""

from __future__ import annotations

from keel.compare.attribution import Factor, Trial, attribute


def _trials(*pairs: tuple[Factor | None, float | None]) -> list[Trial]:
    return [Trial(factor=f, run_id=None, value=v) for f, v in pairs]


def test_the_switch_covering_the_gap_is_the_cause_and_ranks_first() -> None:
    at = attribute(
        metric="m",
        a=1.0,
        b=3.0,
        within_noise=None,
        trials=_trials((None, 1.0), (Factor.SEED, 1.1), (Factor.PARAMS, 3.0)),
    )
    assert at.causes == (Factor.PARAMS,)
    assert [e.factor for e in at.effects] == [Factor.PARAMS, Factor.SEED]
    assert at.effects[0].share == 1.0


def test_shares_are_measured_from_the_rerun_of_a_not_the_recorded_value() -> None:
    at = attribute(
        metric="m", a=1.0, b=3.0, within_noise=None, trials=_trials((None, 2.0), (Factor.CODE, 3.0))
    )
    assert at.effects[0].delta == 1.0 and at.effects[0].share == 1.0


def test_interacting_factors_are_reported_as_such() -> None:
    at = attribute(
        metric="m",
        a=0.0,
        b=4.0,
        within_noise=None,
        trials=_trials((None, 0.0), (Factor.PARAMS, 1.0), (Factor.SEED, 1.0)),
    )
    assert at.causes == ()
    assert "interact" in at.verdict()


def test_difference_within_noise_is_said() -> None:
    at = attribute(metric="m", a=1.0, b=1.01, within_noise=True, trials=_trials((None, 1.0)))
    assert "within the measured noise" in at.verdict()


def test_failed_rerun_of_a_measures_nothing() -> None:
    at = attribute(metric="m", a=1.0, b=2.0, within_noise=None, trials=_trials((None, None)))
    assert at.base is None and "could not be re-run" in at.verdict()
