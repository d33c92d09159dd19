"""Plan a sweep: read what the user asked for, check all of it, expand it into trials.

Nothing here runs anything. :func:`parse_sweep` (in :mod:`keel.resolve.sweepspec`) turns a
declared sweep (keel.yaml ``sweeps:``) or an experiment name plus command-line options into a
:class:`~keel.model.sweep.SweepSpec`. :func:`plan_trials` expands it into trials, each with the
:class:`~keel.model.plan.RunPlan` it runs, in a fixed order:

    for config c (grid order, or the random proposals in order):
        for replicate r in 0 .. seeds-1:
            for fold f in 0 .. k-1 (or once, without folds):
                trial index i (0, 1, 2, ...)

Seeds: every trial of replicate ``r`` gets ``child_seed(root, r)`` (see :data:`SEED_DERIVATION`),
whatever its configuration and fold, so configurations are compared on equal seeds. The root is
``--seed``, else the declared sweep's ``seed``, else the experiment's, else 0. Two more child
streams of the root, which no replicate uses, drive the random proposals
(:data:`PROPOSAL_STREAM`) and the fold shuffle (``keel.resolve.partition.PARTITION_STREAM``).
Folds are computed by :func:`compute_partition` (in :mod:`keel.resolve.partition`).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

from keel.base.canonical import JsonValue, canonical_json
from keel.base.digest import hash_bytes
from keel.base.seedseq import child_seed
from keel.errors import KeelError
from keel.model.plan import RunPlan
from keel.model.sweep import Axis, Partition, SweepSpec, TrialSpec
from keel.resolve.partition import PARTITION_STREAM, compute_partition, fold_indices
from keel.resolve.resolve import resolve_run
from keel.resolve.sweepspec import MAX_TRIALS, parse_sweep
from keel.spec.project import ProjectSpec
from keel.spec.sweep import tidy_float

__all__ = [
    "MAX_TRIALS",
    "PARTITION_STREAM",
    "PROPOSAL_STREAM",
    "SEED_DERIVATION",
    "child_seed",
    "compute_partition",
    "fold_indices",
    "parse_sweep",
    "plan_trial",
    "plan_trials",
    "random_proposals",
    "trial_key",
]

SEED_DERIVATION = (
    "SeedSequence(entropy=root, spawn_key=(replicate,)).generate_state(1)[0] & 0x7fffffff"
)
"""How a trial's seed derives from the sweep's root seed (recorded in ``TrialInfo``)."""

PROPOSAL_STREAM = 2**20 + 1
"""Spawn key of the seed behind random proposals; no replicate uses it (seeds <= MAX_TRIALS)."""


def plan_trial(
    project: ProjectSpec,
    spec: SweepSpec,
    *,
    profile: str,
    params: Mapping[str, JsonValue],
    index: int,
    config: int,
    replicate: int,
    fold: int | None,
    partition: Partition | None,
    input_digests: Mapping[str, str],
) -> tuple[TrialSpec, RunPlan]:
    """Resolve one trial: its run plan and its identity.

    The plan is ``resolve_run`` with ``params`` as sweep-layer values, the fixed ``-p`` values
    as command-line values, seed ``child_seed(root, replicate)`` and the sweep's ``why``; then
    the sweep's ``timeout_s`` (when given) and the environment variables ``KEEL_TRIAL``,
    ``KEEL_REPLICATE`` and, with folds, ``KEEL_FOLD`` and ``KEEL_FOLDS``.

    Args:
        project: the loaded keel.yaml.
        spec: the sweep, from :func:`parse_sweep`.
        profile: the profile every trial runs under.
        params: this trial's swept values, typed (one entry per axis).
        index: the trial's position in the sweep (see the module docstring).
        config: the configuration's position.
        replicate: the seed replicate, from 0.
        fold: the fold, from 0; None exactly when the sweep has no folds.
        partition: the folds in use (from :func:`compute_partition`); needed with folds.
        input_digests: ``{path: digest}`` of the experiment's inputs, hashed once per sweep.

    Raises:
        keel.errors.InvalidParameter: a value does not resolve.
        keel.errors.ValidationError: an input is missing.
        keel.errors.KeelError: ``fold`` or ``partition`` do not match the sweep's folds.
    """
    _check_fold(spec, fold, partition)
    seed = child_seed(_root(spec), replicate)
    plan = resolve_run(
        project,
        experiment=spec.experiment,
        profile=profile,
        overrides=spec.fixed,
        seed=seed,
        why=spec.why,
        sweep_values=params,
    )
    env = {**plan.extra_env, "KEEL_TRIAL": str(index), "KEEL_REPLICATE": str(replicate)}
    if fold is not None and partition is not None:
        env.update(KEEL_FOLD=str(fold), KEEL_FOLDS=str(partition.k))
    timeout = spec.timeout_s if spec.timeout_s is not None else plan.timeout_s
    plan = replace(plan, extra_env=env, timeout_s=timeout)
    digest = partition.digest if partition is not None else None
    trial = TrialSpec(
        index=index,
        config=config,
        params=dict(params),
        replicate=replicate,
        seed=seed,
        fold=fold,
        key=trial_key(plan, fold=fold, partition_digest=digest, input_digests=input_digests),
    )
    return trial, plan


def _check_fold(spec: SweepSpec, fold: int | None, partition: Partition | None) -> None:
    if spec.folds is None and fold is not None:
        raise KeelError(f"fold {fold} given for a sweep without folds")
    if spec.folds is not None:
        if fold is None or not 0 <= fold < spec.folds.k:
            raise KeelError(f"a sweep with {spec.folds.k} folds needs a fold 0..k-1, got {fold}")
        if partition is None:
            raise KeelError("a sweep with folds needs its partition: call compute_partition")


def plan_trials(
    project: ProjectSpec,
    spec: SweepSpec,
    *,
    profile: str,
    partition: Partition | None,
    input_digests: Mapping[str, str],
) -> list[tuple[TrialSpec, RunPlan]]:
    """Every trial of a grid or random sweep, in trial order (see the module docstring).

    Raises:
        keel.errors.KeelError: for an optuna sweep (its trials are proposed one at a time:
            use :func:`plan_trial`), or a sweep with folds and no ``partition``.
    """
    if spec.strategy == "optuna":
        raise KeelError("optuna trials are planned one at a time with plan_trial")
    configs = _grid(spec) if spec.strategy == "grid" else random_proposals(spec, spec.trials or 0)
    folds: list[int | None] = list(range(spec.folds.k)) if spec.folds else [None]
    planned: list[tuple[TrialSpec, RunPlan]] = []
    cells = itertools.product(enumerate(configs), range(spec.seeds), folds)
    for index, ((config, params), replicate, fold) in enumerate(cells):
        planned.append(
            plan_trial(
                project,
                spec,
                profile=profile,
                params=params,
                index=index,
                config=config,
                replicate=replicate,
                fold=fold,
                partition=partition,
                input_digests=input_digests,
            )
        )
    return planned


def _grid(spec: SweepSpec) -> list[dict[str, JsonValue]]:
    names = [axis.name for axis in spec.axes]
    product = itertools.product(*(axis.values for axis in spec.axes))
    chosen = itertools.islice(product, spec.trials) if spec.trials is not None else product
    return [dict(zip(names, values, strict=True)) for values in chosen]


def random_proposals(spec: SweepSpec, n: int) -> list[dict[str, JsonValue]]:
    """``n`` configurations drawn at random from the axes, the same ones on every machine.

    The generator is ``random.Random(child_seed(root, PROPOSAL_STREAM))``; each proposal draws
    its axes in order: values with ``choice``, ``uniform`` with ``uniform``, ``loguniform`` as
    ``exp(uniform(log a, log b))``, ``randint`` with ``randint`` (inclusive). Sampled floats are
    rounded to 12 significant digits. A proposal equal to an earlier one is drawn again, unless
    every point of a finite space was already proposed (then repeats are kept, so ``n`` may
    exceed the space's size; repeated configurations have equal trial keys).
    """
    rng = random.Random(child_seed(_root(spec), PROPOSAL_STREAM))
    space = _space(spec.axes)
    seen: set[str] = set()
    proposals: list[dict[str, JsonValue]] = []
    redraws = 0
    while len(proposals) < n:
        proposal = {axis.name: _draw(rng, axis) for axis in spec.axes}
        token = json.dumps(proposal, sort_keys=True)
        exhausted = space is not None and len(seen) >= space
        # NOTE: the redraw cap keeps a tiny continuous interval (all values round alike) finite.
        if token in seen and not exhausted and redraws < 1000 * (n + 1):
            redraws += 1
            continue
        seen.add(token)
        proposals.append(proposal)
    return proposals


def _space(axes: Sequence[Axis]) -> int | None:
    """How many distinct configurations the axes hold; None when continuous."""
    size = 1
    for axis in axes:
        if axis.kind == "values":
            size *= len(axis.values)
        elif axis.kind == "randint" and axis.low is not None and axis.high is not None:
            size *= int(axis.high) - int(axis.low) + 1
        else:
            return None
    return size


def _draw(rng: random.Random, axis: Axis) -> JsonValue:
    if axis.kind == "values":
        return rng.choice(axis.values)
    low, high = axis.low, axis.high
    assert low is not None and high is not None  # an interval axis always has both
    if axis.kind == "randint":
        return rng.randint(int(low), int(high))
    if axis.kind == "loguniform":
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return min(max(tidy_float(value), float(low)), float(high))


def _root(spec: SweepSpec) -> int:
    """The sweep's root seed (``parse_sweep`` always sets it; 0 when a spec has none)."""
    return spec.seed if spec.seed is not None else 0


def trial_key(
    plan: RunPlan,
    *,
    fold: int | None,
    partition_digest: str | None,
    input_digests: Mapping[str, str],
) -> str:
    """A trial's identity: the hex blake3 digest of the canonical JSON of what it computes.

    That is the experiment, every resolved param value, the seed, the fold and partition, and
    the digest of each declared input (``None`` for a path missing from ``input_digests``).
    The trial's position in the sweep is not part of it, so a resumed or reordered sweep finds
    the same trials. The bare hex form is usable in ref names (``sweep-trials/<id>/<key>``).
    """
    identity: dict[str, JsonValue] = {
        "experiment": plan.experiment,
        "params": plan.param_values,
        "seed": plan.seed,
        "fold": fold,
        "partition": partition_digest,
        "inputs": {item.path: input_digests.get(item.path) for item in plan.inputs},
    }
    return hash_bytes(canonical_json(identity)).hexdigest
