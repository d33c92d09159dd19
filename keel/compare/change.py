"""Change values of a run diff: kinds, one change, the ranked diff and its one-line summary.

Also the JSON equality every comparison uses (:func:`same`) and the collector the comparisons
fill in rank order, keeping the always-different ("hidden") fields apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from keel.base.canonical import JsonValue


class ChangeKind(StrEnum):
    """The group a change belongs to; the declaration order is the report's order."""

    CODE = "code"
    CONFIG = "config"
    SEED = "seed"
    DATA = "data"
    ENVIRONMENT = "environment"
    HARDWARE = "hardware"
    EXECUTOR = "executor"
    OUTPUTS = "outputs"
    METRICS = "metrics"
    RUN = "run"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One difference: run A's value, run B's value (None when absent) and what it means."""

    kind: ChangeKind
    key: str
    a: JsonValue
    b: JsonValue
    note: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """``{"kind", "key", "a", "b", "note"}``."""
        return {"kind": self.kind.value, "key": self.key, "a": self.a, "b": self.b,
                "note": self.note}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestDiff:
    """Every change between two runs, grouped by kind (in ChangeKind order), most important first.

    Falsy when nothing differs.
    """

    changes: tuple[Change, ...]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def of(self, kind: ChangeKind) -> tuple[Change, ...]:
        """The changes of one kind, in rank order."""
        return tuple(c for c in self.changes if c.kind is kind)

    def summary(self) -> str:
        """One line such as ``config: 1 change · environment: 3 packages``, or ``no difference``."""
        parts = []
        for kind in ChangeKind:
            found = self.of(kind)
            if found:
                parts.append(f"{kind.value}: {_SUMMARIES.get(kind, _count_changes)(found)}")
        return " · ".join(parts) if parts else "no difference"


# Notes and keys the summary line counts by.
PACKAGE_NOTES = ("package upgraded", "package downgraded", "package changed",
                 "package added", "package removed")  # fmt: skip
BEYOND_TOLERANCE = "beyond tolerance"
SPEC_KEY = "keel.yaml"
COMMITS_KEY = "commits"
_UNCOMMITTED_KEYS = ("dirty", "patch")
UNTRACKED_PREFIX = "untracked "


def same(a: object, b: object) -> bool:
    """JSON equality: ``1 == 1.0``, but booleans equal only booleans; dicts ignore key order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def ordered_keys(
    a: Mapping[str, object], b: Mapping[str, object],
    *, first: Sequence[str] = (), skip: Iterable[str] = (),
) -> list[str]:  # fmt: skip
    """Keys of either mapping but ``skip``: ``first`` in that order, then the rest sorted."""
    present = (a.keys() | b.keys()) - set(skip)
    return [k for k in first if k in present] + sorted(present - set(first))


class Collector:
    """The changes of one kind in the order they are found (their rank); hidden ones kept apart."""

    def __init__(self, kind: ChangeKind) -> None:
        self.kind = kind
        self.shown: list[Change] = []
        self.hidden: list[Change] = []

    def add(
        self, key: str, a: JsonValue, b: JsonValue, *, note: str | None = None, hidden: bool = False
    ) -> None:
        """Record a change (``hidden``: reported only when every field is asked for)."""
        (self.hidden if hidden else self.shown).append(
            Change(kind=self.kind, key=key, a=a, b=b, note=note)
        )

    def compare(
        self, key: str, a: JsonValue, b: JsonValue, *, note: str | None = None, hidden: bool = False
    ) -> None:
        """Record a change when ``a`` and ``b`` differ."""
        if not same(a, b):
            self.add(key, a, b, note=note, hidden=hidden)

    def mapping(
        self, prefix: str, a: Mapping[str, JsonValue], b: Mapping[str, JsonValue],
        *, first: Sequence[str] = (), skip: Iterable[str] = (),
    ) -> None:  # fmt: skip
        """Compare two JSON objects key by key (see :func:`ordered_keys` for the order)."""
        for key in ordered_keys(a, b, first=first, skip=skip):
            self.compare(prefix + key, a.get(key), b.get(key))

    def named(
        self, prefix: str, a: Mapping[str, JsonValue], b: Mapping[str, JsonValue], what: str
    ) -> None:
        """Compare named entries: ``<what> only in A``, ``only in B`` or ``changed``."""
        for name in ordered_keys(a, b):
            if name not in b:
                self.add(prefix + name, a[name], None, note=f"{what} only in A")
            elif name not in a:
                self.add(prefix + name, None, b[name], note=f"{what} only in B")
            else:
                self.compare(prefix + name, a[name], b[name], note=f"{what} changed")

    def result(self, all_fields: bool) -> list[Change]:
        """The shown changes, followed by the hidden ones when ``all_fields``."""
        return self.shown + self.hidden if all_fields else self.shown


def captured_text(facet: Mapping[str, JsonValue]) -> str:
    """``captured``, or ``not captured: <reason>`` for a facet that could not be recorded."""
    return "captured" if facet.get("captured") else f"not captured: {facet.get('reason')}"


def obj(value: JsonValue) -> dict[str, JsonValue]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def plural(n: int, word: str) -> str:
    """``1 change``, ``2 changes``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _count_changes(changes: Sequence[Change]) -> str:
    return plural(len(changes), "change")


def _summary_code(changes: Sequence[Change]) -> str:
    by_key = {c.key: c for c in changes}
    parts = []
    commits = by_key.get(COMMITS_KEY)
    if commits is not None:
        listed = [v for v in (commits.a, commits.b) if isinstance(v, list)]
        parts.append(plural(sum(len(v) for v in listed), "commit"))
    elif "commit" in by_key:
        parts.append("commit changed")
    if any(k in _UNCOMMITTED_KEYS or k.startswith(UNTRACKED_PREFIX) for k in by_key):
        parts.append("uncommitted changes")
    return ", ".join(parts) or _count_changes(changes)


def _summary_config(changes: Sequence[Change]) -> str:
    # The keel.yaml digest changes with any edit; counted only when nothing else explains it.
    rest = [c for c in changes if c.key != SPEC_KEY]
    return _count_changes(rest) if rest else "keel.yaml edited"


def _summary_environment(changes: Sequence[Change]) -> str:
    packages = sum(1 for c in changes if c.note in PACKAGE_NOTES)
    others = len(changes) - packages
    parts = [plural(packages, "package")] if packages else []
    if others:
        parts.append(plural(others, "other change" if packages else "change"))
    return ", ".join(parts)


def _summary_metrics(changes: Sequence[Change]) -> str:
    beyond = sum(1 for c in changes if c.note and BEYOND_TOLERANCE in c.note)
    text = plural(len(changes), "metric")
    return f"{text} ({beyond} {BEYOND_TOLERANCE})" if beyond else text


_SUMMARIES: dict[ChangeKind, Callable[[Sequence[Change]], str]] = {
    ChangeKind.CODE: _summary_code,
    ChangeKind.CONFIG: _summary_config,
    ChangeKind.DATA: lambda cs: plural(len(cs), "input"),
    ChangeKind.ENVIRONMENT: _summary_environment,
    ChangeKind.OUTPUTS: lambda cs: plural(len(cs), "output"),
    ChangeKind.METRICS: _summary_metrics,
}
