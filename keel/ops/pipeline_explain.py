"""Why a stage would run: the differences between its components now and at its last success.

Reasons are short and name the value at fault: ``param c: 1.0 → 0.5``, ``code train.py
changed``, ``input data/train.csv changed``, ``package numpy 2.3.1 → 2.4.0``. The full configs
and package lists are only read (through :class:`Sources`) when a digest differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

from keel.base.canonical import JsonValue
from keel.capture.codehash import MISSING
from keel.ops.stagekey import PENDING, Components

MAX_PACKAGE_REASONS = 8

# Config keys explained one by one; "command" and "extra_env" follow from the parameters, so
# they are named only when no parameter changed.
_CONFIG_WORDS = {
    "seed": "seed",
    "entrypoint": "entrypoint",
    "cwd": "working folder",
    "inputs": "declared inputs",
    "outputs": "declared outputs",
    "env": "environment allow-list",
}
_DERIVED = {"command": "command", "extra_env": "environment variables (profile env)"}


class Sources(Protocol):
    """Where the details behind two digests are read from, on demand."""

    def current_config(self) -> Mapping[str, JsonValue] | None:
        """The stage's resolved config now."""

    def recorded_config(self) -> Mapping[str, JsonValue] | None:
        """The resolved config its last successful run recorded."""

    def current_env(self) -> Mapping[str, JsonValue] | None:
        """The environment facet now."""

    def recorded_env(self) -> Mapping[str, JsonValue] | None:
        """The environment facet its last successful run recorded."""


def explain(current: Components, recorded: Components | None, *, sources: Sources) -> list[str]:
    """Every difference between ``current`` and ``recorded``, as reasons to run."""
    if recorded is None:
        return ["never run"]
    reasons = params_changes(recorded.params, current.params)
    if current.config != recorded.config:
        reasons += _config_changes(sources, params_changed=bool(reasons))
    reasons += _file_changes("code", old=recorded.code, new=current.code)
    reasons += _file_changes("input", old=recorded.inputs, new=current.inputs)
    if current.env != recorded.env:
        reasons += _env_changes(sources.recorded_env(), sources.current_env())
    if reasons or not current.complete:
        return reasons
    return ["cache key changed (keel's key format)"]


def text(value: JsonValue) -> str:
    """A value as a reason shows it: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def params_changes(old: Mapping[str, JsonValue], new: Mapping[str, JsonValue]) -> list[str]:
    """``param NAME: OLD → NEW`` for each changed value; added and removed ones too."""
    reasons: list[str] = []
    for name in sorted({*old, *new}):
        if name not in old:
            reasons.append(f"param {name} added: {text(new[name])}")
        elif name not in new:
            reasons.append(f"param {name} removed (was {text(old[name])})")
        elif old[name] != new[name] or type(old[name]) is not type(new[name]):
            reasons.append(f"param {name}: {text(old[name])} → {text(new[name])}")
    return reasons


def _config_changes(sources: Sources, *, params_changed: bool) -> list[str]:
    old, new = sources.recorded_config(), sources.current_config()
    if old is None or new is None:
        return [] if params_changed else ["config changed"]
    reasons = []
    for key, word in _CONFIG_WORDS.items():
        if old.get(key) != new.get(key):
            reasons.append(_change(word, old=old.get(key), new=new.get(key)))
    if not params_changed:
        for key, word in _DERIVED.items():
            if old.get(key) != new.get(key):
                reasons.append(_change(word, old=old.get(key), new=new.get(key)))
    return reasons or ([] if params_changed else ["config changed"])


def _change(word: str, *, old: JsonValue, new: JsonValue) -> str:
    if isinstance(old, list) and isinstance(new, list) and all(isinstance(x, str) for x in old):
        if word == "command":
            return f"command: {' '.join(map(text, old))} → {' '.join(map(text, new))}"
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        return f"{word} changed"
    return f"{word}: {text(old)} → {text(new)}"


def _file_changes(kind: str, *, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    reasons = []
    for path in sorted({*old, *new}):
        before, after = old.get(path), new.get(path)
        if after == PENDING or before == after:
            continue
        if after == MISSING:
            reasons.append(f"{kind} {path} missing")
        elif before is None:
            reasons.append(f"{kind} {path} added" if kind == "code" else f"input {path} added")
        elif after is None:
            if kind == "code":
                reasons.append(f"code {path} no longer used")
        elif before == MISSING:
            reasons.append(f"{kind} {path} appeared")
        else:
            reasons.append(f"{kind} {path} changed")
    return reasons


def _env_changes(
    old: Mapping[str, JsonValue] | None, new: Mapping[str, JsonValue] | None
) -> list[str]:
    if old is None or new is None:
        return ["environment changed"]
    reasons = []
    old_py, new_py = _python_version(old), _python_version(new)
    if old_py != new_py:
        reasons.append(f"python {old_py} → {new_py}")
    before, after = _packages(old), _packages(new)
    changes = []
    for name in sorted({*before, *after}):
        if name not in before:
            changes.append(f"package {name} {after[name]} added")
        elif name not in after:
            changes.append(f"package {name} {before[name]} removed")
        elif before[name] != after[name]:
            changes.append(f"package {name} {before[name]} → {after[name]}")
    if len(changes) > MAX_PACKAGE_REASONS:
        more = len(changes) - MAX_PACKAGE_REASONS + 1
        changes = [*changes[: MAX_PACKAGE_REASONS - 1], f"and {more} more package changes"]
    reasons += changes
    return reasons or ["environment changed (interpreter or platform)"]


def _python_version(facet: Mapping[str, JsonValue]) -> str:
    python = facet.get("python")
    return str(python.get("version")) if isinstance(python, dict) else "unknown"


def _packages(facet: Mapping[str, JsonValue]) -> dict[str, str]:
    packages = facet.get("packages")
    return {str(k): str(v) for k, v in packages.items()} if isinstance(packages, dict) else {}
