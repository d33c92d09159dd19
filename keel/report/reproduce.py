"""Render reproductions and noise profiles: the verdict with its evidence, and measured spread.

Reproductions are rendered from their JSON record (the ``reproduction`` slot of a manifest, or
what `keel reproduce --json` prints), so `keel reproduce` and `keel show` draw the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Group as Stack
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from keel.base.canonical import JsonValue

if TYPE_CHECKING:
    from keel.compare.noise import Group, NoiseProfile

ENV_CHANGES_SHOWN = 15
_VERDICT_STYLE = {
    "REPRODUCED": "bold green",
    "REPRODUCED_WITHIN_TOLERANCE": "bold green",
    "DIVERGED": "bold red",
    "NOT_REPRODUCIBLE": "bold magenta",
}


def verdict_text(verdict: str) -> Text:
    """A verdict word in its colour."""
    return Text(verdict, style=_VERDICT_STYLE.get(verdict, "bold"))


def render_reproduction(record: Mapping[str, JsonValue]) -> RenderableType:
    """A reproduction in full: verdict, timing, differences and the environment difference."""
    parts: list[RenderableType] = [_headline(record)]
    if record.get("reason"):
        parts.append(Text(f"  {record['reason']}", style="magenta"))
    differences = _objects(record.get("differences"))
    if differences:
        parts.append(_differences(differences))
    if record.get("verdict") != "NOT_REPRODUCIBLE":
        parts.append(_environment(_objects(record.get("environment_changes"))))
    return Stack(*parts)


def reproduction_summary(record: Mapping[str, JsonValue]) -> RenderableType:
    """The short form `keel show` prints for a run that is a reproduction."""
    parts: list[RenderableType] = [_headline(record)]
    for diff in _objects(record.get("differences"))[:10]:
        parts.append(Text(f"  {diff.get('kind')} {diff.get('name')}: {diff.get('note')}"))
    changes = _objects(record.get("environment_changes"))
    keys = ", ".join(str(c.get("key")) for c in changes[:6]) + (" …" if len(changes) > 6 else "")
    parts.append(Text(f"  environment: {_count(len(changes), 'change')} ({keys})" if changes
                      else "  environment: no change"))  # fmt: skip
    return Stack(*parts)


def _headline(record: Mapping[str, JsonValue]) -> Text:
    line = verdict_text(str(record.get("verdict")))
    line.append(f"  run {record.get('of')}")
    if record.get("reproduction"):
        line.append(f" → {record['reproduction']}")
    total, overhead = record.get("time_to_reproduce_s"), record.get("overhead_s")
    if isinstance(total, int | float) and isinstance(overhead, int | float):
        line.append(f" in {total:.2f} s (overhead {overhead:.2f} s beyond the run)")
    if record.get("verdict") != "NOT_REPRODUCIBLE":
        outputs, metrics = record.get("outputs_compared"), record.get("metrics_compared")
        line.append(f"; compared {_count(outputs, 'output')}, {_count(metrics, 'metric')}",
                    style="dim")  # fmt: skip
    if record.get("env_mode") == "recorded":
        line.append("; recorded environment", style="dim")
    return line


def _differences(differences: Sequence[Mapping[str, JsonValue]]) -> Table:
    table = Table(title="Differences", title_justify="left")
    for col in ("kind", "name", "original", "reproduction", "how much", "verdict", "noise"):
        table.add_column(col)
    for d in differences:
        noise = d.get("within_noise")
        table.add_row(
            str(d.get("kind")),
            str(d.get("name")),
            _value(d.get("original")),
            _value(d.get("reproduction")),
            str(d.get("note") or ""),
            Text("tolerated", "green") if d.get("tolerated") else Text("differs", "red"),
            "" if noise is None else ("within noise" if noise else "beyond noise"),
        )
    return table


def _environment(changes: Sequence[Mapping[str, JsonValue]]) -> RenderableType:
    if not changes:
        return Text("environment: no change since the run", style="green")
    title = f"Environment then → now ({_count(len(changes), 'change')})"
    table = Table(title=title, title_justify="left")
    for col in ("key", "then", "now", "note"):
        table.add_column(col)
    for c in changes[:ENV_CHANGES_SHOWN]:
        table.add_row(str(c.get("key")), _value(c.get("a")), _value(c.get("b")),
                      str(c.get("note") or ""))  # fmt: skip
    if len(changes) > ENV_CHANGES_SHOWN:
        table.add_row(f"… {len(changes) - ENV_CHANGES_SHOWN} more (--json lists all)", "", "", "")
    return table


def render_noise(profile: NoiseProfile, digest: str) -> RenderableType:
    """A noise profile in full: outputs identical or not per group, and each metric's spread."""
    parts: list[RenderableType] = [_noise_headline(profile, digest)]
    outputs = sorted({p for g in profile.groups for p in g.outputs})
    if outputs:
        table = Table(title="Outputs", title_justify="left")
        table.add_column("output")
        for group in profile.groups:
            table.add_column(_group_title(group))
        for path in outputs:
            table.add_row(path, *(_output_cell(g, path) for g in profile.groups))
        parts.append(table)
    parts.append(_spread_table(profile.groups))
    return Stack(*parts)


def noise_summary(profile: NoiseProfile, digest: str) -> RenderableType:
    """The short form `keel show` prints: one line per measured group."""
    parts: list[RenderableType] = [_noise_headline(profile, digest)]
    for group in profile.groups:
        varying = [*group.varying_outputs, *group.varying_metrics]
        line = Text(f"  {_group_title(group)}: ")
        if group.identical:
            line.append("bit-identical", style="green")
        else:
            line.append("varies: " + ", ".join(varying[:6]), style="yellow")
            stds = [f"{m} ±{s.std:.3g}" for m, s in group.metrics.items() if not s.constant]
            if stds:
                line.append(f" ({', '.join(stds[:4])})", style="dim")
        if group.failed:
            line.append(f"; {group.failed} failed", style="red")
        parts.append(line)
    return Stack(*parts)


def _noise_headline(profile: NoiseProfile, digest: str) -> Text:
    line = Text("Noise profile ", style="bold")
    line.append(f"of {profile.experiment}, measured {profile.created_at[:19]} (seed "
                f"{profile.seed}; {digest[:19]})", style="dim")  # fmt: skip
    return line


def _group_title(group: Group) -> str:
    return f"{group.perturbation.value} ×{len(group.runs)}"


def _output_cell(group: Group, path: str) -> Text:
    found = group.outputs.get(path)
    if found is None:
        return Text("—", style="dim")
    if found.identical:
        return Text("identical", style="green")
    return Text(f"{found.distinct} distinct of {found.runs}", style="yellow")


def _spread_table(groups: Sequence[Group]) -> Table:
    table = Table(title="Metric spread", title_justify="left")
    for col in ("metric", "runs", "n", "mean", "std", "min", "max"):
        table.add_column(col, justify="left" if col in ("metric", "runs") else "right")
    names = sorted({m for g in groups for m in g.metrics})
    for name in names:
        for group in groups:
            s = group.metrics.get(name)
            if s is None:
                continue
            style = "" if s.constant else "yellow"
            table.add_row(name, _group_title(group), str(s.n), f"{s.mean:.6g}",
                          Text(f"{s.std:.3g}", style=style), f"{s.min:.6g}",
                          f"{s.max:.6g}")  # fmt: skip
    return table


def _count(n: JsonValue, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _objects(value: JsonValue) -> list[Mapping[str, JsonValue]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _value(value: JsonValue) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    if text.startswith("blake3:"):
        return text[:19]
    return text if len(text) <= 40 else text[:37] + "..."
