"""Render a sealed manifest for `keel show`: params with sources, code, env, data, metrics, logs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from keel.base.canonical import JsonValue
from keel.model.manifest import FileRecord, Manifest
from keel.report.reproduce import noise_summary, reproduction_summary

if TYPE_CHECKING:
    from keel.compare.noise import NoiseProfile

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "killed": "yellow",
    "lost": "magenta",
    "running": "cyan",
    "queued": "cyan",
}


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def render_manifest(
    manifest: Manifest,
    *,
    digest: str,
    log_tail: str = "",
    noise: tuple[NoiseProfile, str] | None = None,
) -> RenderableType:
    """Everything a person wants to see about one run, in sections.

    ``noise`` is the experiment's noise profile and its digest, when one was measured.
    """
    parts: list[RenderableType] = [
        _header(manifest, digest),
        _params(manifest),
        _code(manifest.code),
        _environment(manifest),
        _files("Inputs", manifest.inputs),
        _files("Outputs", manifest.outputs),
        _metrics(manifest),
    ]
    if manifest.artifacts:
        parts.append(_files("Artifacts", manifest.artifacts))
    if manifest.reproduction:
        parts.append(_titled("Reproduction", reproduction_summary(manifest.reproduction)))
    if noise is not None:
        parts.append(noise_summary(*noise))
    if manifest.flags:
        parts.append(
            Panel("\n".join(f"! {f}" for f in manifest.flags), title="Flags", border_style="yellow")
        )
    if manifest.not_captured:
        parts.append(
            Text(
                "not captured: "
                + "; ".join(f"{k} ({v})" for k, v in manifest.not_captured.items()),
                style="yellow",
            )
        )
    if log_tail:
        parts.append(Panel(Text(log_tail), title="Log tail (stdout)", border_style="dim"))
    return Group(*parts)


def _kv(rows: Iterable[tuple[str, object]], title: str | None = None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        if value not in (None, "", (), []):
            table.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return table if title is None else _titled(title, table)


def _titled(title: str, body: RenderableType) -> Table:
    outer = Table.grid()
    outer.add_row(Text(title, style="bold underline"))
    outer.add_row(body)
    return outer


def _header(m: Manifest, digest: str) -> RenderableType:
    r = m.run
    dur = f"{r.duration_s:.2f} s" if r.duration_s is not None else None
    return _kv(
        [
            ("run", f"{r.id}  ({r.experiment}, project {r.project})"),
            ("status", status_text(r.status)),
            ("seal" if r.status.finished else "start record", digest),
            ("created", r.created_at),
            ("duration", dur),
            ("exit", r.exit_code if r.signal is None else f"signal {r.signal}"),
            ("profile", r.profile),
            ("why", r.why),
            ("tags", ", ".join(r.tags)),
            ("reproduces", r.reproduces),
            ("host", f"{r.user}@{r.host} pid {r.pid}"),
            ("executor", _executor(m)),
            ("sweep", _sweep(m)),
            ("command", " ".join(m.config.command) if m.config.command else m.config.entrypoint),
            (
                "seed",
                f"{m.seeds.root} ({m.seeds.source}); PYTHONHASHSEED={m.seeds.pythonhashseed} "
                f"({m.seeds.pythonhashseed_source})",
            ),
            ("keel", r.keel_version),
        ]
    )


def _executor(m: Manifest) -> str:
    ex = m.run.executor
    return f"{ex.name} ×{ex.parallelism}" + (f" on {ex.worker}" if ex.worker else "")


def _sweep(m: Manifest) -> str | None:
    """``SWEEP trial N (config C, replicate R, fold F/K)`` for a sweep trial."""
    info = m.sweep
    if not info:
        return None
    where = [f"config {info.get('config')}", f"replicate {info.get('replicate')}"]
    if info.get("fold") is not None:
        where.append(f"fold {info.get('fold')}/{info.get('folds')}")
    return f"{info.get('id')} trial {info.get('trial')} ({', '.join(where)})"


def _params(m: Manifest) -> RenderableType:
    table = Table(title="Parameters", title_justify="left", expand=False)
    table.add_column("name", style="bold")
    table.add_column("value")
    table.add_column("source", style="dim")
    for name, pv in sorted(m.config.params.items()):
        table.add_row(name, Text(_short(pv.value)), pv.source)
    return table


def _code(code: dict[str, JsonValue]) -> RenderableType:
    if not code.get("captured"):
        return _kv([("code", f"not captured: {code.get('reason')}")])
    untracked = code.get("untracked") or []
    diff_files = code.get("diff_files") or []
    dirty = "dirty" if code.get("dirty") else "clean"
    return _kv(
        [
            ("commit", f"{code.get('commit')} on {code.get('branch') or '(detached)'} — {dirty}"),
            ("remote", code.get("remote")),
            (
                "changed files",
                ", ".join(map(str, diff_files)) if isinstance(diff_files, list) else None,
            ),
            ("untracked", len(untracked) if isinstance(untracked, list) and untracked else None),
            ("patch", code.get("diff")),
            ("during run", "CHANGED" if code.get("changed_during_run") else None),
        ],
        title="Code",
    )


def _obj(value: JsonValue) -> dict[str, JsonValue]:
    return value if isinstance(value, dict) else {}


def _environment(m: Manifest) -> RenderableType:
    env = m.environment
    if not env.get("captured"):
        return _kv([("environment", f"not captured: {env.get('reason')}")])
    py = _obj(env.get("python"))
    hw = m.hardware
    gpus = hw.get("gpus")
    return _kv(
        [
            ("python", f"{py.get('implementation')} {py.get('version')} ({py.get('executable')})"),
            ("platform", py.get("platform")),
            (
                "packages",
                f"{len(_obj(env.get('packages')))} installed, digest {env.get('packages_digest')}",
            ),
            ("lock files", ", ".join(sorted(_obj(env.get("lock_files"))))),
            (
                "env vars",
                ", ".join(f"{k}={v}" for k, v in sorted(_obj(env.get("env_vars")).items())),
            ),
            (
                "hardware",
                f"{hw.get('cpu_model')}, {hw.get('cpu_logical')} cores, "
                f"{_bytes(hw.get('memory_bytes'))} RAM, "
                f"gpus: {len(gpus) if isinstance(gpus, list) else 0}",
            ),
        ],
        title="Environment",
    )


def _files(title: str, records: Iterable[FileRecord]) -> RenderableType:
    table = Table(title=title, title_justify="left")
    for col in ("path", "kind", "digest", "size", "stored"):
        table.add_column(col)
    for rec in records:
        flag = ""
        if getattr(rec, "changed_during_run", False):
            flag = " [yellow](changed during run)[/]"
        dataset, version = getattr(rec, "dataset", None), getattr(rec, "version", None)
        if dataset is not None:
            flag += f" [cyan](dataset {dataset}@{version})[/]"
        table.add_row(
            Text(rec.path) + Text.from_markup(flag),
            rec.kind,
            (rec.digest or "")[:19],
            _bytes(rec.size),
            "yes" if rec.stored else "digest only",
        )
    return table


def _metrics(m: Manifest) -> RenderableType:
    table = Table(title="Metrics", title_justify="left")
    for col in ("name", "value", "goal", "tolerance", "points", "source"):
        table.add_column(col)
    for name, rec in sorted(m.metrics.items()):
        table.add_row(
            name,
            f"{rec.value:.6g}",
            rec.goal or "",
            _short(rec.tolerance),
            str(len(rec.series) or 1),
            rec.source,
        )
    return table


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bytes(n: object) -> str:
    if not isinstance(n, int):
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)
