"""Render a run diff for `keel diff`: the summary line, then one table per group of changes."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.base.canonical import JsonValue
from keel.compare.change import BEYOND_TOLERANCE
from keel.compare.diff import Change, ChangeKind, ManifestDiff
from keel.model.run import RunSummary

MAX_LIST_LINES = 10  # list values (commits, files) show this many lines, then "… N more"
MAX_TEXT = 60
_DIGEST = re.compile(r"^blake3:([0-9a-f]{64})$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_TITLES = {ChangeKind.SEED: "Seeds", ChangeKind.DATA: "Data (inputs)"}


def render_diff(
    diff: ManifestDiff, *, a: RunSummary, b: RunSummary, warnings: Sequence[str] = ()
) -> RenderableType:
    """The summary line on top, the two runs, any warnings, then a table per group.

    Exactly ``no difference`` when nothing differs and there is nothing to warn about.
    """
    if not diff and not warnings:
        return Text("no difference")
    parts: list[RenderableType] = [
        Text(diff.summary(), style="bold"),
        _runs(a, b),
        *(Text(f"! {w}", style="yellow") for w in warnings),
    ]
    for kind in ChangeKind:
        changes = diff.of(kind)
        if changes:
            parts.append(Text(""))
            parts.append(_table(kind, changes))
    return Group(*parts)


def _runs(a: RunSummary, b: RunSummary) -> Table:
    table = Table.grid(padding=(0, 2))
    for label, run in (("A", a), ("B", b)):
        table.add_row(
            Text(label, style="bold"),
            run.id,
            run.experiment,
            run.created_at[:19].replace("T", " "),
            run.status.value,
        )
    return table


def _table(kind: ChangeKind, changes: Sequence[Change]) -> Table:
    title = _TITLES.get(kind, kind.value.capitalize())
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    metrics = kind is ChangeKind.METRICS
    table.add_column("metric" if metrics else "what", style="bold", overflow="fold")
    table.add_column("A", overflow="fold")
    table.add_column("B", overflow="fold")
    if metrics:
        table.add_column("Δ", justify="right")
    table.add_column("note", style="dim", overflow="fold")
    for change in changes:
        row: list[Text | str] = [change.key, _value(change.key, change.a)]
        row.append(_value(change.key, change.b))
        if metrics:
            row.append(_delta(change.a, change.b))
        table.add_row(*row, _note(change))
    return table


def _note(change: Change) -> Text:
    note = change.note or ""
    alarming = BEYOND_TOLERANCE in note or "not in the repository" in note
    style = "red" if alarming else ""
    return Text(note, style=style)


def _delta(a: JsonValue, b: JsonValue) -> str:
    if isinstance(a, bool) or isinstance(b, bool):
        return ""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return f"{b - a:+.6g}"
    return ""


def _value(key: str, value: JsonValue) -> Text:
    if value is None:
        return Text("—", style="dim")
    if isinstance(value, bool):
        return Text(str(value).lower())
    if isinstance(value, float):
        return Text(f"{value:.6g}")
    if isinstance(value, int):
        return Text(_bytes(value) if key.endswith("memory_bytes") else str(value))
    if isinstance(value, str):
        return Text(_short(value))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        lines = [_short(str(v)) for v in value[:MAX_LIST_LINES]]
        if len(value) > MAX_LIST_LINES:
            lines.append(f"… {len(value) - MAX_LIST_LINES} more")
        return Text("\n".join(lines) if lines else "(none)")
    return Text(_clip(json.dumps(value, sort_keys=True, ensure_ascii=False)))


def _short(text: str) -> str:
    """Digests and commit ids shortened; long text clipped."""
    match = _DIGEST.match(text)
    if match:
        return match.group(1)[:12]
    if _SHA.match(text):
        return text[:10]
    return _clip(text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
