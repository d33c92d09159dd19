"""Render `keel why`: the verdict, then each switch with its measured effect."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.compare.attribution import Attribution


def render_why(at: Attribution, *, a: str, b: str, seconds: float) -> RenderableType:
    """The verdict line, the measured values, and a table of switches (best explanation first)."""
    head = Text(at.verdict(), style="bold green" if at.causes else "bold yellow")
    facts = Text(
        f"{at.metric}: A {a} = {at.a:g}, B {b} = {at.b:g}"
        + (f", A re-run = {at.base:g}" if at.base is not None else "")
        + (
            f"  (difference {'within' if at.within_noise else 'beyond'} measured noise)"
            if at.within_noise is not None
            else ""
        )
    )
    table = Table(
        title="Switches (A's configuration with one factor taken from B)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("factor", "run", at.metric, "change", "share of A→B gap", "note"):
        table.add_column(col)
    for e in at.effects:
        table.add_row(
            str(e.factor),
            e.run_id or "",
            _num(e.value),
            _num(e.delta, signed=True),
            f"{e.share:.0%}" if e.share is not None else "",
            Text(
                "explains the move" if e.explains else (e.error or ""),
                style="green" if e.explains else "dim",
            ),
        )
    parts: list[RenderableType] = [head, facts, table]
    if at.untried:
        parts.append(
            Text(
                "not tried (budget or --include-env): " + ", ".join(map(str, at.untried)),
                style="yellow",
            )
        )
    parts.append(Text(f"{len(at.effects) + 1} runs in {seconds:.1f} s", style="dim"))
    return Group(*parts)


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.6g}" if signed else f"{value:.6g}"
