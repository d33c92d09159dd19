"""The RunIndex port, its query value, and the matching rules every implementation shares."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keel.base.canonical import JsonValue
from keel.model.run import RunStatus, RunSummary


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQuery:
    """Which runs to list, and in what order.

    Attributes:
        experiment: only runs of this experiment.
        status: only runs in this status.
        params: resolved parameter values that must all match. Numbers match numerically
            (``1`` matches ``1.0``); a string that spells a JSON number, ``true``, ``false`` or
            ``null`` (as ``-p lr=0.1`` arrives) also matches that value; other strings match
            exactly; lists and objects match by their JSON text.
        tags: tags that must all be present.
        sort_metric: order by this metric; runs without it (or with NaN) come last.
        descending: largest metric first; without ``sort_metric``, newest run first.
        limit: at most this many runs.
    """

    experiment: str | None = None
    status: RunStatus | None = None
    params: Mapping[str, JsonValue] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    sort_metric: str | None = None
    descending: bool = True
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"RunQuery.limit must be >= 0, got {self.limit}")


class RunIndex(Protocol):
    """A queryable index of run summaries; rebuildable from the object store at any time.

    Every implementation keeps this contract (``tests/contracts/run_index.py`` checks it):

    - ``upsert`` writes all its summaries in one transaction. A summary replaces every row of
      the same run id, params, metrics and tags included; of duplicate ids the last one wins.
    - Summaries come back equal to what was stored, except that tags are de-duplicated and
      sorted, and metric values are floats.
    - Orders are total: ties on ``created_at`` are broken by run id, and ties on a sort metric
      by newest run first.
    - ``find_prefix`` matches run ids case-sensitively, in id order.
    """

    def upsert(self, summaries: Sequence[RunSummary]) -> None:
        """Insert or replace the given runs, in one transaction."""
        ...

    def get(self, run_id: str) -> RunSummary | None:
        """The run with exactly this id, or None."""
        ...

    def find_prefix(self, prefix: str, limit: int = 20) -> list[RunSummary]:
        """Runs whose id starts with ``prefix``, in id order, at most ``limit``."""
        ...

    def latest(self, experiment: str | None = None) -> RunSummary | None:
        """The most recently created run (of ``experiment``, when given), or None."""
        ...

    def query(self, q: RunQuery) -> list[RunSummary]:
        """Runs matching ``q``; newest first unless ``q`` orders them otherwise."""
        ...

    def ids_with_manifest(self, ids: Collection[str] | None = None) -> dict[str, str | None]:
        """Every run id (or those of ``ids`` that are indexed) with its manifest digest (None
        while running), for incremental sync."""
        ...

    def clear(self) -> None:
        """Remove every run."""
        ...

    def close(self) -> None:
        """Release connections; the index must not be used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class ParamMatch:
    """What a wanted parameter value matches: any of these JSON texts, or this number."""

    texts: tuple[str, ...]
    number: float | None


def encode_json(value: JsonValue) -> str:
    """Compact JSON with sorted keys: how parameter values are stored and compared."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_param(value: JsonValue) -> tuple[str, float | None]:
    """The stored form of a parameter value: its JSON text and, for numbers, its float value."""
    return encode_json(value), _number(value)


def param_match(wanted: JsonValue) -> ParamMatch:
    """How a wanted value is matched (see :class:`RunQuery`)."""
    texts = [encode_json(wanted)]
    number = _number(wanted)
    if isinstance(wanted, str):
        is_scalar, spelled = _spelled_scalar(wanted)
        if isinstance(spelled, int | float) and not isinstance(spelled, bool):
            number = _number(spelled)
        elif is_scalar:
            texts.append(encode_json(spelled))
    return ParamMatch(tuple(texts), number)


def matches(summary: RunSummary, q: RunQuery) -> bool:
    """True when ``summary`` passes every filter of ``q`` (used by in-memory implementations)."""
    if q.experiment is not None and summary.experiment != q.experiment:
        return False
    if q.status is not None and summary.status != q.status:
        return False
    if not all(tag in summary.tags for tag in q.tags):
        return False
    for name, wanted in q.params.items():
        if name not in summary.params:
            return False
        text, number = encode_param(summary.params[name])
        match = param_match(wanted)
        if text not in match.texts and (number is None or number != match.number):
            return False
    return True


def metric_sort_value(summary: RunSummary, metric: str) -> float | None:
    """The value a run is sorted by: None when the metric is missing or NaN."""
    value = summary.metrics.get(metric)
    if value is None or math.isnan(value):
        return None
    return float(value)


def normalized(summary: RunSummary) -> RunSummary:
    """``summary`` as an index returns it: tags de-duplicated and sorted, metrics as floats."""
    return dataclasses.replace(
        summary,
        tags=tuple(sorted(set(summary.tags))),
        metrics={k: float(v) for k, v in summary.metrics.items()},
        params=dict(summary.params),
    )


def _spelled_scalar(text: str) -> tuple[bool, JsonValue]:
    """``(True, value)`` when ``text`` spells a JSON number, boolean or null."""
    try:
        value: JsonValue = json.loads(text)
    except ValueError:
        return False, None
    return value is None or isinstance(value, bool | int | float), value


def _number(value: object) -> float | None:
    """The float value of a JSON number (not a boolean); None for NaN or out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return None if math.isnan(number) else number
