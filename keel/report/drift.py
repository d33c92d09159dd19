"""Render the answers of drift prevention: a drift report (`keel check`), a gate (`keel gate`)."""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.compare.drift import DriftReport
from keel.compare.drift_facets import DriftKind
from keel.compare.gate import GateResult, Verdict
from keel.report.datadrift import data_drift_lines

_KIND_STYLE = {
    DriftKind.CONFIG: "red",
    DriftKind.ENVIRONMENT: "red",
    DriftKind.DATA: "red",
    DriftKind.CODE: "dim",
}
_VERDICT_STYLE = {
    Verdict.IMPROVED: "green",
    Verdict.WITHIN: "",
    Verdict.REGRESSED: "bold red",
    Verdict.MISSING: "bold red",
    Verdict.NEW: "cyan",
    Verdict.NO_GOAL: "dim",
}


def render_drift(report: DriftReport) -> RenderableType:
    """Per experiment: what it was compared with, then every drift by kind; then a summary."""
    parts: list[RenderableType] = []
    for name in sorted(report.references):
        items = report.for_experiment(name)
        reference = report.references[name]
        blocking = any(item.blocking for item in items)
        head = Text()
        head.append("DRIFT " if blocking else "ok    ", style="bold red" if blocking else "green")
        head.append(name, style="bold")
        head.append(f"  against {reference}", style="dim")
        parts.append(head)
        for item in items:
            line = Text("    ")
            line.append(f"{item.kind.value:<12}", style=_KIND_STYLE[item.kind])
            line.append(item.message)
            if not item.blocking:
                line.append("  (information)", style="dim")
            parts.append(line)
            if item.data is not None:
                parts.extend(data_drift_lines(item.data, indent=" " * 16))
    parts.extend(Text(f"note: {note}", style="yellow") for note in report.notes)
    parts.append(_drift_summary(report))
    return Group(*parts)


def _drift_summary(report: DriftReport) -> Text:
    counts = report.counts
    blocking = [f"{counts[k.value]} {k.value}" for k in DriftKind if k is not DriftKind.CODE]
    code = counts[DriftKind.CODE.value]
    code_note = f"; {code} code change(s), information only" if code else ""
    if report.drifted:
        return Text(f"drifted: {', '.join(blocking)}{code_note}", style="bold red")
    checked = len(report.references)
    return Text(f"no drift ({checked} experiment(s) checked{code_note})", style="green")


def render_gate(result: GateResult, *, run: str, reference: str) -> RenderableType:
    """The gate table (metric, baseline, run, delta, tolerance, verdict) and its verdict line."""
    title = Text(f"gate: run {run} against {reference}", style="bold")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("metric", "goal", "baseline", "run", "delta", "tolerance", "verdict"):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for row in result.rows:
        table.add_row(
            row.metric,
            row.goal or "",
            _number(row.baseline),
            _number(row.run),
            _number(row.delta, signed=True),
            _number(row.tolerance) if row.goal else "",
            Text(row.verdict.value, style=_VERDICT_STYLE[row.verdict]),
        )
    if result.passed:
        verdict = Text(f"PASS: run {run} is no worse than {reference} beyond tolerance", "green")
    else:
        names = ", ".join(f"{r.metric} ({r.verdict.value})" for r in result.failures)
        verdict = Text(f"FAIL: {names}", style="bold red")
    return Group(title, table, verdict)


def _number(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    return f"{value:+.6g}" if signed else f"{value:.6g}"
