"""Render `keel status` and `keel repro` from their JSON documents, one line per stage.

Lines come with a colour name for the frontend to apply (or not). Plain text on purpose: on a
10,000-stage pipeline `keel status` must answer in a second, and a rich table alone would
cost a tenth of that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keel.base.canonical import JsonValue

_STATUS_WORDS = {
    "up-to-date": ("up to date", "green"),
    "restore": ("will restore", "cyan"),
    "run": ("will run", "yellow"),
}
_OUTCOME_WORDS = {
    "up-to-date": ("up to date", "green"),
    "restored": ("restored", "cyan"),
    "ran": ("ran", "green"),
    "failed": ("failed", "red"),
    "skipped": ("skipped", "magenta"),
}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of text and the colour it is drawn in (None: the default)."""

    text: str
    colour: str | None = None


def _stages(doc: Mapping[str, JsonValue]) -> list[Mapping[str, JsonValue]]:
    stages = doc.get("stages")
    return [s for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []


def _strs(value: JsonValue) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def render_status(doc: Mapping[str, JsonValue]) -> list[Line]:
    """`keel status`: each stage, what `keel repro` would do and why, then a summary."""
    lines: list[Line] = []
    stages = _stages(doc)
    for stage in stages:
        action = str(stage.get("action"))
        word, colour = _STATUS_WORDS.get(action, (action, None))
        reasons = _strs(stage.get("reasons"))
        if action == "up-to-date":
            text = f"{stage.get('name')}: {'; '.join(reasons) or word}"
        else:
            text = f"{stage.get('name')}: {word}" + (f" — {'; '.join(reasons)}" if reasons else "")
        lines.append(Line(text, colour))
    lines.append(Line(_summary(stages, field="action", words=_STATUS_WORDS), "bold"))
    return lines


def render_repro(doc: Mapping[str, JsonValue]) -> list[Line]:
    """`keel repro`: each stage's outcome (as :func:`repro_line`), then a summary."""
    stages = _stages(doc)
    lines = [line for stage in stages for line in repro_lines(stage)]
    lines.append(Line(_summary(stages, field="outcome", words=_OUTCOME_WORDS), "bold"))
    return lines


def repro_lines(stage: Mapping[str, JsonValue]) -> list[Line]:
    """One stage's outcome (printed as each stage finishes), with its flags below it."""
    outcome = str(stage.get("outcome"))
    word, colour = _OUTCOME_WORDS.get(outcome, (outcome, None))
    reasons = _strs(stage.get("reasons"))
    run = f" (run {stage.get('run')})" if stage.get("run") else ""
    if outcome == "skipped":
        text = f"{stage.get('name')}: skipped: {'; '.join(reasons)}"
    elif outcome == "up-to-date":
        text = f"{stage.get('name')}: {'; '.join(reasons) or word}{run}"
    else:
        text = f"{stage.get('name')}: {word}{run}" + (f" — {'; '.join(reasons)}" if reasons else "")
    lines = [Line(text, colour)]
    if stage.get("error"):
        lines.append(Line(f"  error: {stage.get('error')}", "red"))
    lines.extend(Line(f"  ! {flag}", "yellow") for flag in _strs(stage.get("flags")))
    return lines


def start_line(event: Mapping[str, JsonValue]) -> Line:
    """The line printed when a stage is handed to the pool."""
    reasons = _strs(event.get("reasons"))
    return Line(f"{event.get('name')}: running — {'; '.join(reasons)}", "dim")


def _summary(
    stages: Sequence[Mapping[str, JsonValue]],
    *,
    field: str,
    words: Mapping[str, tuple[str, str]],
) -> str:
    counts: dict[str, int] = {}
    for stage in stages:
        value = str(stage.get(field))
        counts[value] = counts.get(value, 0) + 1
    total = len(stages)
    noun = "stage" if total == 1 else "stages"
    if not stages:
        return "no stages"
    if counts.get("up-to-date") == total:
        return f"{total} {noun}, all up to date"
    parts = [f"{n} {words.get(value, (value, ''))[0]}" for value, n in counts.items()]
    return f"{total} {noun}: " + ", ".join(parts)
