"""Which switched factor carries a metric from run A's value to run B's (pure arithmetic)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

EXPLAINS = 0.5
"""A switch that covers at least this fraction of the A→B gap is named as a cause."""


class Factor(StrEnum):
    """A group of differences that `keel why` can switch from A's value to B's."""

    PARAMS = "params"
    SEED = "seed"
    INPUTS = "inputs"
    CODE = "code"
    ENV_VARS = "env vars"
    PACKAGES = "packages"


@dataclass(frozen=True, slots=True, kw_only=True)
class Trial:
    """One re-run: A's configuration with ``factor`` switched to B's (None: A as recorded)."""

    factor: Factor | None
    run_id: str | None
    value: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """What one switch did to the metric, relative to A's re-run and to the A→B gap."""

    factor: Factor
    run_id: str | None
    value: float | None
    delta: float | None
    share: float | None
    error: str | None = None

    @property
    def explains(self) -> bool:
        """True when this switch alone covers at least half of the A→B gap."""
        return self.share is not None and self.share >= EXPLAINS


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    """The measured effects, best explanation first, and the verdict in words."""

    metric: str
    a: float
    b: float
    base: float | None
    effects: tuple[Effect, ...]
    within_noise: bool | None
    untried: tuple[Factor, ...]

    @property
    def causes(self) -> tuple[Factor, ...]:
        """The factors that each explain most of the difference."""
        return tuple(e.factor for e in self.effects if e.explains)

    def verdict(self) -> str:
        """One sentence: what moved the metric, or why nothing could be named."""
        gap = self.b - self.a
        if gap == 0:
            return f"{self.metric} is the same in both runs ({self.a:g}): nothing to explain"
        if self.within_noise:
            return f"{self.metric} moved by {gap:+g}, which is within the measured noise"
        if self.base is None:
            return "run A could not be re-run, so no switch could be measured"
        if self.causes:
            named = " and ".join(str(c) for c in self.causes)
            return f"{named} moved {self.metric} from {self.a:g} towards {self.b:g}"
        if self.untried:
            left = ", ".join(map(str, self.untried))
            return f"no tried switch explains the move; not tried: {left}"
        return "no single switch explains the move: the factors interact"


def attribute(
    *,
    metric: str,
    a: float,
    b: float,
    trials: Sequence[Trial],
    within_noise: bool | None,
    untried: Sequence[Factor] = (),
) -> Attribution:
    """Measure each switch against the re-run of A; rank by the share of the gap it covers."""
    base = next((t.value for t in trials if t.factor is None), None)
    gap = b - (base if base is not None else a)
    effects = []
    for t in trials:
        if t.factor is None:
            continue
        delta = None if t.value is None or base is None else t.value - base
        share = None if delta is None or gap == 0 or not math.isfinite(delta) else delta / gap
        effects.append(
            Effect(
                factor=t.factor,
                run_id=t.run_id,
                value=t.value,
                delta=delta,
                share=share,
                error=t.error,
            )
        )
    effects.sort(key=lambda e: (e.share is None, abs(1.0 - e.share) if e.share is not None else 0))
    return Attribution(
        metric=metric,
        a=a,
        b=b,
        base=base,
        effects=tuple(effects),
        within_noise=within_noise,
        untried=tuple(untried),
    )
