"""Sweeps: many runs of one experiment over parameter axes, seeds and cross-validation folds.

A sweep is resolved and validated completely before its first trial starts and frozen into a
:class:`SweepRecord` (canonical JSON in the object store, ref ``sweeps/<id>``). Each trial is a
sealed run whose manifest carries a :class:`TrialInfo` (as the open JSON object ``sweep``).
A trial's identity is ``key``: the digest of its resolved configuration (every resolved param,
its seed, its fold and the partition, the digests of its inputs), so resuming matches trials by
content, not by position. Ref ``sweep-trials/<id>/<key>`` names the newest run of that trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from keel.base.canonical import JsonValue

SCHEMA_VERSION = 1
KIND_TAG = "keel.sweep"
REF_PREFIX = "sweeps/"

Strategy = Literal["grid", "random", "optuna"]
AxisKind = Literal["values", "uniform", "loguniform", "randint"]
FoldStrategy = Literal["kfold", "stratified", "group"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Axis:
    """One swept parameter.

    ``values``: the explicit, ordered values (from ``a,b,c`` or ``range(start,stop[,step])``),
    already typed and checked against the catalog. ``uniform``/``loguniform``/``randint``:
    a continuous or integer interval ``[low, high]`` (random and optuna strategies only).
    ``text`` is the axis as the user wrote it (for messages and the record).
    """

    name: str
    kind: AxisKind
    text: str
    values: tuple[JsonValue, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FoldSpec:
    """Cross-validation: ``k`` folds over the rows of ``data`` (a tabular file in the project)."""

    k: int
    strategy: FoldStrategy = "kfold"
    data: str | None = None
    label: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """The folds actually used: ``digest`` is the digest of the canonical JSON of the per-fold
    test-index lists (``folds``, stored as an object, digest ``indices``)."""

    k: int
    strategy: FoldStrategy
    rows: int
    digest: str
    indices: str
    data: str | None = None
    data_digest: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSpec:
    """What the user asked for, after parsing (nothing resolved against inputs yet)."""

    experiment: str
    axes: tuple[Axis, ...]
    strategy: Strategy = "grid"
    trials: int | None = None
    seeds: int = 1
    folds: FoldSpec | None = None
    fixed: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    metric: str | None = None
    timeout_s: float | None = None
    why: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialSpec:
    """One planned trial: its swept values, seed replicate, fold, and identity ``key``."""

    index: int
    config: int
    params: dict[str, JsonValue]
    replicate: int
    seed: int
    fold: int | None
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialInfo:
    """What a trial's manifest records about its place in the sweep (manifest field ``sweep``)."""

    id: str
    trial: int
    key: str
    config: int
    replicate: int
    seed_derivation: str
    fold: int | None = None
    folds: int | None = None
    partition: str | None = None
