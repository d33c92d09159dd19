"""The verdict rules and the noise arithmetic, on hand-built manifests (no runs)."""

from __future__ import annotations

import math

import pytest

from keel.base.canonical import canonical_json, loads
from keel.compare.noise import (
    NoiseProfile,
    OutputVariation,
    Perturbation,
    Spread,
    group_of,
    spread,
    within_noise,
)
from keel.compare.verdict import DifferenceKind, Verdict, judge, not_reproducible
from keel.errors import UserError
from keel.model.manifest import (
    ConfigInfo,
    ExecutorInfo,
    FileRecord,
    Manifest,
    MetricRecord,
    RunInfo,
    SeedInfo,
)
from keel.model.run import RunStatus

A, B = "blake3:" + "a" * 64, "blake3:" + "b" * 64


def manifest(
    *,
    outputs: dict[str, str | None] | None = None,
    metrics: dict[str, tuple[float, float | None]] | None = None,
    status: RunStatus = RunStatus.SUCCEEDED,
    run_id: str = "r1",
) -> Manifest:
    """A minimal sealed manifest: outputs by digest, metrics as (value, declared tolerance)."""
    return Manifest(
        run=RunInfo(id=run_id, project="p", experiment="e", status=status, created_at="t",
                    host="h", user="u", keel_version="0", executor=ExecutorInfo(name="local"),
                    profile="dev", exit_code=0 if status is RunStatus.SUCCEEDED else 1),
        config=ConfigInfo(params={}, experiment={}, profile={}, cwd=".", spec_file="keel.yaml",
                          spec_digest=A),
        seeds=SeedInfo(root=1, source="experiment", derivation="d", pythonhashseed="1",
                       pythonhashseed_source="derived"),
        code={"captured": False, "reason": "test"},
        inputs=(),
        environment={"captured": False, "reason": "test"},
        hardware={"captured": False, "reason": "test"},
        outputs=tuple(
            FileRecord(path=p, kind="file" if d else "missing", digest=d, size=1 if d else None)
            for p, d in (outputs or {}).items()
        ),
        metrics={n: MetricRecord(value=v, source="file", goal="max", tolerance=t)
                 for n, (v, t) in (metrics or {}).items()},
    )  # fmt: skip


def test_identical_outputs_and_equal_metrics_are_reproduced() -> None:
    m = manifest(outputs={"out/a": A}, metrics={"acc": (0.9, 0.0)})
    result = judge(m, manifest(outputs={"out/a": A}, metrics={"acc": (0.9, 0.0)}, run_id="r2"))
    assert result.verdict is Verdict.REPRODUCED and result and not result.differences
    assert (result.outputs_compared, result.metrics_compared) == (1, 1)
    assert result.verdict.exit_code == 0


def test_differing_output_with_metrics_within_tolerance_is_reproduced_within_tolerance() -> None:
    original = manifest(outputs={"out/a": A, "out/b": A}, metrics={"acc": (0.9, 0.01)})
    again = manifest(outputs={"out/a": B, "out/b": A}, metrics={"acc": (0.905, 0.01)})
    result = judge(original, again)
    assert result.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE and result
    by_name = {d.name: d for d in result.differences}
    assert set(by_name) == {"out/a", "acc"}
    assert by_name["out/a"].kind is DifferenceKind.OUTPUT and by_name["out/a"].tolerated
    assert by_name["acc"].delta == pytest.approx(0.005) and by_name["acc"].tolerance == 0.01
    assert "+0.005" in by_name["acc"].note


def test_differing_output_without_any_metric_diverges() -> None:
    result = judge(manifest(outputs={"out/a": A}), manifest(outputs={"out/a": B}))
    assert result.verdict is Verdict.DIVERGED and not result
    assert [d.name for d in result.differences] == ["out/a"]
    assert not result.differences[0].tolerated and result.verdict.exit_code == 1


def test_metric_beyond_its_declared_tolerance_diverges_and_says_by_how_much() -> None:
    original = manifest(outputs={"out/a": A}, metrics={"acc": (0.9, 0.01)})
    result = judge(original, manifest(outputs={"out/a": B}, metrics={"acc": (0.8, 0.01)}))
    assert result.verdict is Verdict.DIVERGED
    acc = next(d for d in result.differences if d.name == "acc")
    assert acc.delta == pytest.approx(-0.1) and not acc.tolerated
    assert "-0.1" in acc.note and "-11.111%" in acc.note
    # the differing output is not tolerated either: no metric vouches for the run
    assert not next(d for d in result.differences if d.name == "out/a").tolerated


def test_given_tolerance_overrides_the_declared_one() -> None:
    original = manifest(metrics={"acc": (0.9, 0.0)})
    again = manifest(metrics={"acc": (0.91, 0.0)})
    assert judge(original, again).verdict is Verdict.DIVERGED
    widened = judge(original, again, {"acc": 0.05})
    assert widened.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE
    assert widened.differences[0].tolerance == 0.05


def test_undeclared_metric_must_be_equal() -> None:
    original = manifest(metrics={"rows": (10.0, None)})
    assert judge(original, manifest(metrics={"rows": (11.0, None)})).verdict is Verdict.DIVERGED


@pytest.mark.parametrize(
    ("theirs", "note"),
    [
        pytest.param({}, "missing in the reproduction", id="missing-in-reproduction"),
        pytest.param({"acc": (0.9, 0.0), "new": (1.0, None)}, "missing in the original run",
                     id="only-in-reproduction"),
    ],
)  # fmt: skip
def test_a_metric_on_one_side_only_diverges(
    theirs: dict[str, tuple[float, float | None]], note: str
) -> None:
    result = judge(manifest(metrics={"acc": (0.9, 0.0)}), manifest(metrics=theirs))
    assert result.verdict is Verdict.DIVERGED
    assert any(d.note == note for d in result.differences)


def test_a_different_final_status_diverges() -> None:
    original = manifest(outputs={"out/a": A}, metrics={"acc": (0.9, 0.0)})
    failed = manifest(outputs={"out/a": None}, status=RunStatus.FAILED)
    result = judge(original, failed)
    assert result.verdict is Verdict.DIVERGED
    kinds = [d.kind for d in result.differences]
    assert kinds[0] is DifferenceKind.STATUS and DifferenceKind.OUTPUT in kinds
    assert next(d for d in result.differences if d.name == "out/a").note == (
        "not produced by the reproduction"
    )


def test_not_reproducible_carries_its_reason_and_exit_code_2() -> None:
    result = not_reproducible("commit abc is gone")
    assert result.verdict is Verdict.NOT_REPRODUCIBLE and not result
    assert result.to_json()["reason"] == "commit abc is gone" and result.verdict.exit_code == 2


@pytest.mark.parametrize(
    ("verdict", "code"),
    [(Verdict.REPRODUCED, 0), (Verdict.REPRODUCED_WITHIN_TOLERANCE, 0), (Verdict.DIVERGED, 1),
     (Verdict.NOT_REPRODUCIBLE, 2)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_exit_codes(verdict: Verdict, code: int) -> None:
    assert verdict.exit_code == code


def test_judgement_json_is_canonical_json() -> None:
    result = judge(manifest(metrics={"acc": (0.9, 0.0)}), manifest(metrics={"acc": (0.8, 0.0)}))
    data = loads(canonical_json(result.to_json()))
    assert isinstance(data, dict) and data["verdict"] == "DIVERGED"
    assert data["differences"][0]["kind"] == "metric"  # type: ignore[index,call-overload]


# -- noise ------------------------------------------------------------------------------------


def test_spread_uses_the_sample_standard_deviation() -> None:
    s = spread([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std, s.min, s.max) == (3, 2.0, 1.0, 1.0, 3.0) and not s.constant
    assert spread([4.0]) == Spread(n=1, mean=4.0, std=0.0, min=4.0, max=4.0)
    with pytest.raises(ValueError):
        spread([])


@pytest.mark.parametrize(
    ("delta", "tolerance", "std", "inside"),
    [(0.02, 0.0, 0.01, True), (0.03, 0.0, 0.01, False), (0.03, 0.05, 0.01, True),
     (-0.02, 0.0, 0.01, True), (0.0, 0.0, 0.0, True)],
)  # fmt: skip
def test_within_noise_is_tolerance_or_two_standard_deviations(
    delta: float, tolerance: float, std: float, inside: bool
) -> None:
    assert within_noise(delta, tolerance=tolerance, std=std) is inside


def _noise_profile() -> NoiseProfile:
    runs = [
        manifest(outputs={"out/a": A, "out/b": A}, metrics={"acc": (0.9, 0.0)}, run_id="x1"),
        manifest(outputs={"out/a": B, "out/b": A}, metrics={"acc": (0.92, 0.0)}, run_id="x2"),
        manifest(outputs={"out/a": None}, status=RunStatus.FAILED, run_id="x3"),
    ]
    group = group_of(Perturbation.SEED, runs, settings=["seed=1", "seed=2", "seed=3"])
    same = group_of(Perturbation.REPLICATE, runs[:1] * 2, settings=["seed=0"] * 2)
    return NoiseProfile(project="p", experiment="e", created_at="2026-01-01T00:00:00Z", seed=0,
                        params={"lr": 0.1}, groups=(same, group))  # fmt: skip


def test_group_counts_distinct_outputs_and_failures() -> None:
    profile = _noise_profile()
    seed = profile.groups[1]
    assert seed.runs == ("x1", "x2", "x3") and seed.failed == 1
    assert seed.outputs["out/a"] == OutputVariation(distinct=2, runs=2)
    assert seed.varying_outputs == ("out/a",) and seed.varying_metrics == ("acc",)
    assert math.isclose(seed.metrics["acc"].std, math.sqrt(2) * 0.01)
    assert profile.deterministic and profile.replicates is profile.groups[0]
    assert profile.metric_std("acc") == seed.metrics["acc"].std
    assert profile.metric_std("unknown") is None


def test_judge_says_whether_a_metric_difference_is_within_noise() -> None:
    profile = _noise_profile()  # acc std ≈ 0.0141
    original = manifest(metrics={"acc": (0.9, 0.0)})
    near = judge(original, manifest(metrics={"acc": (0.92, 0.0)}), noise=profile)
    far = judge(original, manifest(metrics={"acc": (0.99, 0.0)}), noise=profile)
    assert near.differences[0].within_noise is True and far.differences[0].within_noise is False
    assert near.verdict is Verdict.DIVERGED  # noise informs; only tolerance decides


def test_noise_profile_round_trips_through_canonical_json() -> None:
    profile = _noise_profile()
    data = loads(canonical_json(profile.to_json()))
    assert isinstance(data, dict)
    assert NoiseProfile.from_json(data) == profile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"kind": "keel.run"}, "not a keel noise profile", id="wrong-kind"),
        pytest.param({"schema_version": 99}, "newer than this keel", id="newer"),
        pytest.param({"groups": "x"}, "not valid", id="malformed"),
    ],
)
def test_unreadable_noise_profiles_are_user_errors(change: dict[str, object], message: str) -> None:
    data = {**_noise_profile().to_json(), **change}
    with pytest.raises(UserError, match=message):
        NoiseProfile.from_json(data)  # type: ignore[arg-type]
