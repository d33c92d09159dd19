"""Drift facet by facet: each change between two experiment states, named in one sentence.

Pure functions over :class:`~keel.spec.lockfile.ExperimentState` parts; :mod:`keel.compare.drift`
assembles them into a report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue
from keel.model.manifest import ParamValue
from keel.spec.lockfile import CodeState, EnvironmentState, ExperimentState, InputState

if TYPE_CHECKING:
    from keel.compare.datadrift import DataDiff


class DriftKind(StrEnum):
    """What kind of thing drifted."""

    CONFIG = "config"
    ENVIRONMENT = "environment"
    DATA = "data"
    CODE = "code"


class Change(StrEnum):
    """How it changed."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """One difference: its kind, what changed (``subject``), how, and a sentence saying it.

    ``data`` holds the drift statistics of a changed input when both contents could be profiled.
    """

    experiment: str
    kind: DriftKind
    subject: str
    change: Change
    message: str
    old: JsonValue = None
    new: JsonValue = None
    data: DataDiff | None = None

    @property
    def blocking(self) -> bool:
        """True for drift that fails a check: everything but code, which is information."""
        return self.kind is not DriftKind.CODE

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form (with ``data`` only when statistics were computed)."""
        out: dict[str, JsonValue] = {
            "experiment": self.experiment,
            "kind": self.kind.value,
            "subject": self.subject,
            "change": self.change.value,
            "message": self.message,
            "old": self.old,
            "new": self.new,
            "blocking": self.blocking,
        }
        if self.data is not None:
            out["data"] = self.data.to_json()
        return out


class _Builder:
    """Collects the drift of one experiment."""

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment
        self.items: list[Drift] = []

    def add(
        self, kind: DriftKind, subject: str, change: Change, message: str,
        old: JsonValue = None, new: JsonValue = None,
    ) -> None:  # fmt: skip
        """Record one change."""
        self.items.append(
            Drift(
                experiment=self.experiment,
                kind=kind,
                subject=subject,
                change=change,
                message=message,
                old=old,
                new=new,
            )
        )


def show(value: JsonValue) -> str:
    """A value as a person reads it: text quoted, everything else as JSON, long values cut."""
    text = f"'{value}'" if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def same_value(a: JsonValue, b: JsonValue) -> bool:
    """JSON equality where 5 equals 5.0 but ``true`` never equals 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def config_drift(ref: ExperimentState, cur: ExperimentState) -> list[Drift]:
    """Profile, every param (value and layer), seed, command and entrypoint."""
    out = _Builder(cur.name)
    if ref.profile != cur.profile:
        msg = f"profile: {ref.profile} → {cur.profile}"
        out.add(DriftKind.CONFIG, "profile", Change.CHANGED, msg, ref.profile, cur.profile)
    for name in sorted(set(ref.params) | set(cur.params)):
        _param(out, name, ref.params.get(name), cur.params.get(name), (ref.profile, cur.profile))
    for key in ("seed", "command", "entrypoint"):
        old, new = getattr(ref, key), getattr(cur, key)
        if not same_value(old, new):
            msg = f"{key}: {show(old)} → {show(new)}"
            out.add(DriftKind.CONFIG, key, Change.CHANGED, msg, old, new)
    return out.items


def _layer(source: str, profile: str) -> str:
    names = {"catalog": "catalog default", "experiment": "experiment default",
             "profile": f"profile '{profile}'", "cli": "command line"}  # fmt: skip
    return names.get(source, source)


def _param_json(p: ParamValue) -> JsonValue:
    return {"value": p.value, "source": p.source}


def _param(
    out: _Builder,
    name: str,
    old: ParamValue | None,
    new: ParamValue | None,
    profiles: tuple[str, str],
) -> None:
    subject = f"param {name}"
    if old is None or new is None:
        if new is not None:
            msg = f"{subject} added: {show(new.value)} ({_layer(new.source, profiles[1])})"
            out.add(DriftKind.CONFIG, subject, Change.ADDED, msg, None, _param_json(new))
        elif old is not None:
            msg = f"{subject} removed (was {show(old.value)}, {_layer(old.source, profiles[0])})"
            out.add(DriftKind.CONFIG, subject, Change.REMOVED, msg, _param_json(old), None)
        return
    if same_value(old.value, new.value) and old.source == new.source:
        return
    before = show(old.value)
    if old.source != new.source:
        before += f" ({_layer(old.source, profiles[0])})"
    after = f"{show(new.value)} ({_layer(new.source, profiles[1])})"
    msg = f"{subject}: {before} → {after}"
    out.add(DriftKind.CONFIG, subject, Change.CHANGED, msg, _param_json(old), _param_json(new))


def environment_drift(
    experiment: str, ref: EnvironmentState | None, cur: EnvironmentState | None
) -> list[Drift]:
    """Python, platform, packages, lock files and thread-count variables."""
    out = _Builder(experiment)
    if ref is None or cur is None:
        return out.items
    old_py = f"{ref.python_implementation} {ref.python_version}"
    new_py = f"{cur.python_implementation} {cur.python_version}"
    if old_py != new_py:
        out.add(DriftKind.ENVIRONMENT, "python", Change.CHANGED, f"python: {old_py} → {new_py}",
                old_py, new_py)  # fmt: skip
    if ref.platform != cur.platform:
        msg = f"platform: {ref.platform} → {cur.platform}"
        out.add(DriftKind.ENVIRONMENT, "platform", Change.CHANGED, msg, ref.platform, cur.platform)
    _packages(out, ref.packages, cur.packages)
    _named(out, "lock file", ref.lock_files, cur.lock_files, values=False)
    _named(out, "", ref.threads, cur.threads, values=True)
    return out.items


def _packages(out: _Builder, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        subject = f"package {name}"
        if a is None:
            out.add(DriftKind.ENVIRONMENT, subject, Change.ADDED, f"{subject} added ({b})", None, b)
        elif b is None:
            msg = f"{subject} removed (was {a})"
            out.add(DriftKind.ENVIRONMENT, subject, Change.REMOVED, msg, a, None)
        elif a != b:
            change = version_change(a, b)
            label = f" ({change.value})" if change is not Change.CHANGED else ""
            out.add(DriftKind.ENVIRONMENT, subject, change, f"{subject}: {a} → {b}{label}", a, b)


def _named(
    out: _Builder, what: str, old: Mapping[str, str], new: Mapping[str, str], *, values: bool
) -> None:
    """Added, removed and changed entries of a name → value table (lock files, variables)."""
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        subject = f"{what} {name}".strip()
        if a == b:
            continue
        if a is None:
            msg = f"{subject} set to {b} (was unset)" if values else f"{subject} added"
            change = Change.ADDED
        elif b is None:
            msg = f"{subject} unset (was {a})" if values else f"{subject} removed"
            change = Change.REMOVED
        else:
            msg = f"{subject}: {a} → {b}" if values else f"{subject} changed"
            change = Change.CHANGED
        out.add(DriftKind.ENVIRONMENT, subject, change, msg, a, b)


_RELEASE = re.compile(r"^v?(\d+(?:\.\d+)*)")


def version_change(old: str, new: str) -> Change:
    """UPGRADED or DOWNGRADED when both versions start with a numeric release, else CHANGED."""
    a, b = _RELEASE.match(old), _RELEASE.match(new)
    if a is None or b is None:
        return Change.CHANGED
    x = [int(p) for p in a.group(1).split(".")]
    y = [int(p) for p in b.group(1).split(".")]
    width = max(len(x), len(y))
    x, y = x + [0] * (width - len(x)), y + [0] * (width - len(y))
    if x == y:
        return Change.CHANGED
    return Change.UPGRADED if y > x else Change.DOWNGRADED


def data_drift(
    experiment: str, ref: tuple[InputState, ...], cur: tuple[InputState, ...]
) -> list[Drift]:
    """Inputs whose content changed, went missing, or were newly declared or dropped."""
    out = _Builder(experiment)
    old_by, new_by = {i.path: i for i in ref}, {i.path: i for i in cur}
    for path in sorted(set(old_by) | set(new_by)):
        old, new = old_by.get(path), new_by.get(path)
        subject = input_subject(path)
        if old is None:
            out.add(DriftKind.DATA, subject, Change.ADDED, f"{subject} is newly declared")
        elif new is None:
            msg = f"{subject} is no longer declared"
            out.add(DriftKind.DATA, subject, Change.REMOVED, msg, old.digest)
        elif new.kind == "missing" and old.kind != "missing":
            msg = f"{subject} is missing (was {_short(old.digest)})"
            out.add(DriftKind.DATA, subject, Change.REMOVED, msg, old.digest)
        elif old.digest != new.digest or old.kind != new.kind:
            if old.version_ref and new.version_ref:
                msg = f"{subject} changed: dataset {old.version_ref} → {new.version_ref}"
            else:
                msg = (
                    f"{subject} changed: {_short(old.digest)} → {_short(new.digest)}"
                    f"{_sizes(old, new)}"
                )
            out.add(DriftKind.DATA, subject, Change.CHANGED, msg, old.digest, new.digest)
    return out.items


def input_subject(path: str) -> str:
    """The ``subject`` of the drift of the input at ``path``."""
    return f"input {path}"


def _short(digest: str | None) -> str:
    if digest is None:
        return "nothing"
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}:{hexdigest[:12]}" if hexdigest else digest


def _sizes(old: InputState, new: InputState) -> str:
    parts = []
    if old.size != new.size and old.size is not None and new.size is not None:
        parts.append(f"{old.size} → {new.size} bytes")
    if old.files != new.files and old.files is not None and new.files is not None:
        parts.append(f"{old.files} → {new.files} files")
    return f" ({', '.join(parts)})" if parts else ""


_MAX_FILES_SHOWN = 5


def code_drift(experiment: str, ref: CodeState | None, cur: CodeState | None) -> list[Drift]:
    """A moved commit and uncommitted changes: information, never blocking."""
    out = _Builder(experiment)
    if ref is None or cur is None or cur.reason is not None:
        return out.items
    if ref.commit != cur.commit:
        msg = f"commit moved: {_commit(ref.commit)} → {_commit(cur.commit)}"
        out.add(DriftKind.CODE, "commit", Change.CHANGED, msg, ref.commit, cur.commit)
    if cur.dirty:
        more = len(cur.changed) - _MAX_FILES_SHOWN
        files = ", ".join(cur.changed[:_MAX_FILES_SHOWN]) + (f" (+{more} more)" if more > 0 else "")
        msg = f"uncommitted changes: {files}" if files else "uncommitted changes"
        out.add(DriftKind.CODE, "worktree", Change.CHANGED, msg, None, list(cur.changed))
    return out.items


def _commit(commit: str | None) -> str:
    return commit[:10] if commit else "(no commit)"
