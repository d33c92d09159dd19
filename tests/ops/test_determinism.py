"""`keel determinism`: replicates, perturbations and the stored noise profile, with real runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.compare.noise import Perturbation
from keel.errors import UserError
from keel.ops.determinism import (
    THREAD_VARS,
    DeterminismRequest,
    derived_values,
    determinism,
    load_noise_profile,
    noise_ref,
    parse_perturbations,
)
from keel.ops.listing import list_runs, show_run
from keel.ops.workspace import Workspace
from tests.ops.test_reproduce import _keel, add_experiments, snapshot, worktrees

MakeWs = Callable[..., Workspace]


def test_deterministic_experiment_has_identical_replicates_and_a_stored_profile(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    before = snapshot(demo)
    result = determinism(ws, DeterminismRequest(experiment="train", replicates=3))
    assert result and result.profile.deterministic
    (group,) = result.profile.groups
    assert group.perturbation is Perturbation.REPLICATE and len(group.runs) == 3
    assert group.identical and group.failed == 0
    assert set(group.outputs) == {"out/model.txt", "out/metrics.json"}
    assert group.metrics["score"].std == 0.0 and group.metrics["score"].n == 3
    assert ws.objects.get_ref(noise_ref("train")) == result.digest
    loaded = load_noise_profile(ws, "train")
    assert loaded == (result.profile, result.digest)
    # each run is a sealed run tagged determinism, executed away from the user's tree
    tagged = list_runs(ws, tags=["determinism"])
    assert sorted(r.id for r in tagged) == sorted(group.runs)
    assert snapshot(demo) == before and not (demo / "out").exists()
    assert len(worktrees(demo)) == 1


def test_show_displays_the_experiment_noise_profile(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    result = determinism(ws, DeterminismRequest(experiment="train", replicates=2))
    view = show_run(ws, result.profile.groups[0].runs[0])
    assert view.noise == (result.profile, str(result.digest))
    shown = _keel("-C", str(demo), "show", "train@latest")
    assert shown.returncode == 0, shown.stderr
    assert "Noise profile of train" in shown.stdout
    assert "replicate ×2: bit-identical" in shown.stdout
    shown = _keel("-C", str(demo), "show", "train@latest", "--json")
    assert shown.returncode == 0, shown.stderr
    as_json = json.loads(shown.stdout)
    assert as_json["noise"] == {"digest": str(result.digest), "profile": result.profile.to_json()}


def test_random_output_makes_replicates_differ(demo: Path, make_workspace: MakeWs) -> None:
    add_experiments(demo)
    result = determinism(make_workspace(demo), DeterminismRequest(experiment="urandom"))
    assert not result
    replicates = result.profile.replicates
    assert replicates is not None and replicates.varying_outputs == ("out/random.txt",)
    assert replicates.outputs["out/random.txt"].distinct == 3


def test_hashseed_perturbation_shows_a_hash_dependent_output(
    demo: Path, make_workspace: MakeWs
) -> None:
    add_experiments(demo)
    request = DeterminismRequest(experiment="hashfile", perturb=(Perturbation.HASHSEED,))
    profile = determinism(make_workspace(demo), request).profile
    replicates, hashseed = profile.groups
    assert replicates.identical  # the derived PYTHONHASHSEED is the same for every replicate
    assert hashseed.perturbation is Perturbation.HASHSEED
    assert hashseed.varying_outputs == ("out/hash.txt",)
    assert all(s.startswith("PYTHONHASHSEED=") for s in hashseed.settings)


def test_seed_and_thread_perturbations_with_parallel_jobs(
    demo: Path, make_workspace: MakeWs
) -> None:
    ws = make_workspace(demo)
    request = DeterminismRequest(
        experiment="train",
        overrides={"lr": "0.2"},
        replicates=2,
        perturb=(Perturbation.SEED, Perturbation.THREADS),
        jobs=2,
    )
    profile = determinism(ws, request).profile
    replicates, seed, threads = profile.groups
    assert profile.params["lr"] == 0.2 and replicates.identical
    # model.txt names the seed: it varies with it; the score does not
    assert seed.varying_outputs == ("out/model.txt",) and seed.metrics["score"].constant
    seeds = [int(s.removeprefix("seed=")) for s in seed.settings]
    assert seeds == list(derived_values(42, 2, label="seed"))
    assert threads.settings[0] == "threads=1" and threads.identical
    runs = {r.id: r for r in list_runs(ws, tags=["determinism"])}
    assert set(runs) == {*replicates.runs, *seed.runs, *threads.runs}
    manifest = show_run(ws, threads.runs[0]).manifest
    env_vars = manifest.environment["env_vars"]
    assert isinstance(env_vars, dict) and all(env_vars[v] == "1" for v in THREAD_VARS)
    assert show_run(ws, seed.runs[0]).manifest.seeds.root == seeds[0]


def test_profiles_form_a_history(demo: Path, make_workspace: MakeWs) -> None:
    ws = make_workspace(demo)
    first = determinism(ws, DeterminismRequest(experiment="train", replicates=2))
    second = determinism(ws, DeterminismRequest(experiment="train", replicates=2))
    assert second.profile.previous == str(first.digest) and first.profile.previous is None


def test_derived_values_are_stable_and_distinct() -> None:
    values = derived_values(42, 5, label="seed")
    assert values == derived_values(42, 5, label="seed") and len(set(values)) == 5
    assert 42 not in values and values != derived_values(42, 5, label="hashseed")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        pytest.param(DeterminismRequest(experiment="train", replicates=1), "at least 2", id="n"),
        pytest.param(DeterminismRequest(experiment="train", jobs=0), "--jobs 0", id="jobs"),
        pytest.param(DeterminismRequest(experiment="train", replicates=60,
                                        perturb=(Perturbation.SEED,)), "more than", id="total"),
    ],
)  # fmt: skip
def test_bad_requests_are_user_errors(
    demo: Path, make_workspace: MakeWs, request_: DeterminismRequest, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        determinism(make_workspace(demo), request_)


def test_perturbations_parse_with_a_helpful_error() -> None:
    assert parse_perturbations("seed, threads,seed") == (Perturbation.SEED, Perturbation.THREADS)
    assert parse_perturbations("") == ()
    with pytest.raises(UserError, match="use any of seed, threads, hashseed"):
        parse_perturbations("seeds")


def test_determinism_command_help_table_and_json(demo: Path) -> None:
    help_text = _keel("determinism", "--help").stdout
    assert "Usage: keel determinism" in help_text and "Examples:" in help_text
    assert "--perturb seed,threads,hashseed" in help_text
    table = _keel("-C", str(demo), "determinism", "train", "-n", "2")
    assert table.returncode == 0, table.stderr
    assert "Metric spread" in table.stdout and "identical" in table.stdout
    assert "same-seed replicates: bit-identical" in table.stdout
    out = _keel("-C", str(demo), "determinism", "train", "-n", "2", "--perturb", "hashseed",
                "--jobs", "2", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["deterministic"] is True and data["digest"].startswith("blake3:")
    groups = data["profile"]["groups"]
    assert [g["perturbation"] for g in groups] == ["replicate", "hashseed"]
    assert set(groups[0]["metrics"]["score"]) == {"n", "mean", "std", "min", "max"}
    bad = _keel("-C", str(demo), "determinism", "train", "--perturb", "nope")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
