"""Render sweeps: the per-configuration table of `keel sweep show`, the list of `keel sweep ls`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.base.canonical import JsonValue
from keel.model.sweeprecord import MetricStats, SweepListing, SweepRow, SweepTable
from keel.report.show import status_text

BEST = "★"


def render_table(table: SweepTable) -> RenderableType:
    """A header line, then one row per configuration (config order), the best one marked."""
    shape = [_plural(len(table.rows), "configuration"), _plural(table.seeds, "seed")]
    if table.folds:
        shape.append(_plural(table.folds, "fold"))
    head = Text.assemble(
        (f"sweep {table.id}", "bold"),
        f"  {table.experiment}, {table.strategy}, {_plural(table.trials, 'trial')} "
        f"({' × '.join(shape)})  ",
        _statuses(table.statuses),
    )
    grid = Table(box=None, header_style="bold", pad_edge=False)
    params = _param_names(table.rows)
    grid.add_column("config", justify="right")
    for name in params:
        grid.add_column(name)
    for name in table.metrics:
        marker = f" ({table.goal})" if name == table.metric and table.goal else ""
        grid.add_column(f"{name}{marker}", justify="right", no_wrap=True)
    grid.add_column("succeeded", justify="right")
    grid.add_column("")
    for row in table.rows:
        grid.add_row(
            str(row.config),
            *(_value(row.params.get(p)) for p in params),
            *(_stats(row.metrics.get(m)) for m in table.metrics),
            f"{row.statuses.get('succeeded', 0)}/{row.trials}",
            _row_note(row),
            style="bold green" if row.best else None,
        )
    parts: list[RenderableType] = [head, grid]
    if table.metric and table.goal:
        parts.append(Text(f"{BEST} best by {table.metric} ({table.goal}); values are mean ± "
                          "sample std over seeds and folds", style="dim"))  # fmt: skip
    for flag in table.flags:
        parts.append(Text(f"! {flag}", style="yellow"))
    return Group(*parts)


def render_listing(sweeps: Sequence[SweepListing]) -> RenderableType:
    """One line per sweep, newest first."""
    if not sweeps:
        return Text("no sweeps yet: start one with `keel sweep EXPERIMENT -p NAME=A,B`")
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("id", "experiment", "strategy", "created", "trials", "status"):
        grid.add_column(col, no_wrap=True)
    grid.add_column("why", overflow="ellipsis", no_wrap=True, max_width=40)
    for s in sweeps:
        grid.add_row(s.id, s.experiment, s.strategy, s.created_at[:16].replace("T", " "),
                     str(s.trials), _statuses(s.statuses), s.why or "")  # fmt: skip
    return grid


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _param_names(rows: Sequence[SweepRow]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names.extend(n for n in row.params if n not in names)
    return names


def _statuses(counts: dict[str, int]) -> Text:
    text = Text()
    for i, (status, n) in enumerate(sorted(counts.items())):
        if i:
            text.append(", ")
        text.append_text(status_text(status) if status != "missing" else Text("not run"))
        text.append(f" {n}")
    return text


def _row_note(row: SweepRow) -> Text:
    if row.best:
        return Text(BEST, style="bold green")
    others = {k: v for k, v in row.statuses.items() if k != "succeeded"}
    return _statuses(others) if others else Text("")


def _stats(stats: MetricStats | None) -> str:
    if stats is None or stats.mean is None:
        return "—"
    if stats.std is None:
        return f"{stats.mean:.4g} (n={stats.n})"
    # A spread below the display precision of the mean is rounding noise: show it as 0.
    std = 0.0 if stats.std <= 1e-9 * max(abs(stats.mean), 1.0) else stats.std
    return f"{stats.mean:.4g} ± {std:.2g} (n={stats.n})"


def _value(value: JsonValue) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)
