"""Render data drift: `keel data diff` in full, and the short form `keel check` shows per input."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.compare.datadrift import (
    KS_DRIFTED,
    NULL_SHARE_DRIFTED,
    PSI_DRIFTED,
    PSI_MODERATE,
    ColumnDrift,
    DataDiff,
    DriftStatus,
    FilesDiff,
    TableDrift,
)
from keel.compare.schema import SchemaDiff

_STATUS_STYLE = {
    DriftStatus.STABLE: "green",
    DriftStatus.MODERATE: "yellow",
    DriftStatus.DRIFTED: "bold red",
}
MAX_FILES_SHOWN = 20
THRESHOLDS = (
    f"thresholds: PSI ≥ {PSI_DRIFTED} drifted ({PSI_MODERATE}–{PSI_DRIFTED} moderate); "
    f"KS ≥ {KS_DRIFTED} drifted; null share change ≥ {NULL_SHARE_DRIFTED} drifted"
)


def render_data_diff(diff: DataDiff) -> RenderableType:
    """Files, schema, then per table its row count and a table of column drift; a verdict."""
    parts: list[RenderableType] = [Text(f"{diff.old} → {diff.new}", style="bold")]
    parts.extend(_files(diff.files))
    parts.extend(_schema(diff.schema))
    unchanged = [t for t in diff.tables if t.unchanged]
    for table in diff.tables:
        if not table.unchanged:
            parts.extend(_table(table))
    if unchanged:
        parts.append(Text(f"{len(unchanged)} table(s) unchanged", style="dim"))
    for path in diff.added_tables:
        parts.append(Text(f"table {path}: new in {diff.new}", style="cyan"))
    for path in diff.removed_tables:
        parts.append(Text(f"table {path}: not in {diff.new}", style="yellow"))
    parts.extend(Text(f"note: {note}", style="yellow") for note in diff.notes)
    parts.append(_verdict(diff))
    if diff.tables:
        parts.append(Text(THRESHOLDS, style="dim"))
    return Group(*parts)


def _files(files: FilesDiff) -> list[RenderableType]:
    counts = (
        f"files: {len(files.changed)} changed, {len(files.added)} added, "
        f"{len(files.removed)} removed, {files.unchanged} unchanged"
    )
    lines: list[RenderableType] = [Text(counts)]
    shown = [Text(f"  + {f.path}  {_size(f.size)}", style="green") for f in files.added]
    shown += [Text(f"  - {f.path}  {_size(f.size)}", style="red") for f in files.removed]
    shown += [
        Text(f"  ~ {new.path}  {_size(old.size)} → {_size(new.size)}") for old, new in files.changed
    ]
    lines.extend(shown[:MAX_FILES_SHOWN])
    if len(shown) > MAX_FILES_SHOWN:
        lines.append(Text(f"  … {len(shown) - MAX_FILES_SHOWN} more", style="dim"))
    return lines


def _schema(schema: SchemaDiff) -> list[RenderableType]:
    if not schema:
        return [Text("schema: unchanged")]
    breaking = len(schema.breaking)
    head = f"schema: {len(schema.changes)} change(s)" + (
        f", {breaking} breaking" if breaking else ""
    )
    lines: list[RenderableType] = [Text(head, style="bold red" if breaking else "")]
    for change in schema.changes:
        line = Text(f"  {change.message}")
        if change.breaking:
            line.append("  breaking", style="bold red")
        lines.append(line)
    return lines


def _table(table: TableDrift) -> list[RenderableType]:
    name = table.path if table.path == table.old_path else f"{table.old_path} → {table.path}"
    change = table.new_rows - table.old_rows
    head = Text(f"table {name}: ", style="bold")
    head.append(f"rows {table.old_rows:,} → {table.new_rows:,} ({change:+,})", style="")
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("column", "dtype", "status", "PSI", "KS", "nulls", "mean", "note"):
        numeric = column in ("PSI", "KS")
        grid.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for col in table.columns:
        grid.add_row(
            col.column,
            col.new.dtype,
            Text(col.status.value, style=_STATUS_STYLE[col.status]),
            _stat(col.psi),
            _stat(col.ks) + ("" if col.ks_exact or col.ks is None else "≈"),
            f"{col.old.null_share:.1%} → {col.new.null_share:.1%}",
            _means(col),
            _note(col),
        )
    return [head, grid] if table.columns else [head]


def _verdict(diff: DataDiff) -> Text:
    if diff.schema.breaking:
        return Text("breaking schema change", style="bold red")
    drifted = diff.drifted
    if drifted:
        several = len({t for t, _ in drifted}) > 1
        names = ", ".join(f"{t}: {c}" if several else c for t, c in drifted)
        return Text(f"drifted: {len(drifted)} column(s) ({names})", style="bold red")
    if diff.tables:
        return Text("no column drifted", style="green")
    return Text("no table to compare", style="dim")


def data_drift_lines(diff: DataDiff, *, indent: str = "") -> list[Text]:
    """A few lines for `keel check`: rows and schema, then drifted and moderate columns."""
    lines: list[Text] = []
    for change in diff.schema.changes:
        style = "red" if change.breaking else "dim"
        lines.append(Text(f"{indent}{change.message}", style=style))
    several = len(diff.tables) > 1
    for table in diff.tables:
        prefix = f"{table.path}: " if several else ""
        rows = f"rows {table.old_rows:,} → {table.new_rows:,}"
        lines.append(Text(f"{indent}{prefix}{rows}; {_columns_summary(table)}"))
    return lines


def _columns_summary(table: TableDrift) -> str:
    by_status: dict[DriftStatus, list[ColumnDrift]] = {s: [] for s in DriftStatus}
    for col in table.columns:
        by_status[col.status].append(col)
    parts = []
    for status in (DriftStatus.DRIFTED, DriftStatus.MODERATE):
        if by_status[status]:
            listed = ", ".join(f"{c.column} ({_stats_text(c)})" for c in by_status[status])
            parts.append(f"{status.value}: {listed}")
    if by_status[DriftStatus.STABLE]:
        parts.append(f"{len(by_status[DriftStatus.STABLE])} column(s) stable")
    return "; ".join(parts) or "no column to compare"


def _stats_text(col: ColumnDrift) -> str:
    parts = []
    if col.psi is not None:
        parts.append(f"PSI {_stat(col.psi)}")
    if col.ks is not None:
        parts.append(f"KS {_stat(col.ks)}")
    old, new = col.old.null_share, col.new.null_share
    if old != new:
        parts.append(f"nulls {old:.1%} → {new:.1%}")
    return ", ".join(parts)


def _note(col: ColumnDrift) -> str:
    if col.shifts:
        return ", ".join(f"{_value(s.value)} {s.old:.1%} → {s.new:.1%}" for s in col.shifts[:3])
    return "; ".join(col.reasons)


def _means(col: ColumnDrift) -> str:
    old, new = col.old.mean, col.new.mean
    if old is None or new is None:
        return ""
    if col.new.dtype == "datetime":
        return f"{_when(old)} → {_when(new)}"
    return f"{old:.4g} → {new:.4g}"


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _stat(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _value(value: str | float) -> str:
    return f"'{value}'" if isinstance(value, str) else f"{value:g}"


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    if size < 1000:
        return f"{size} B"
    scaled, unit = size / 1000, 0
    while scaled >= 1000 and unit < 2:
        scaled, unit = scaled / 1000, unit + 1
    return f"{scaled:.1f} {('KB', 'MB', 'GB')[unit]}"
