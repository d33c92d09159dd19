"""Collect a run's metrics: the declared ``metrics_file`` and ``keel.log_metric`` calls."""

from __future__ import annotations

import json
import math
from pathlib import Path

from keel.model.manifest import MetricPoint, MetricRecord
from keel.model.plan import MetricSpec


def collect_metrics(
    *, metrics_file: Path | None, api_log: Path, specs: tuple[MetricSpec, ...]
) -> tuple[dict[str, MetricRecord], list[str]]:
    """Merge both metric sources; a value in ``metrics_file`` wins over the API's last value.

    Returns:
        The metrics by name, and human-readable problems (unreadable file, non-numbers) that the
        caller records as flags instead of failing the run.
    """
    problems: list[str] = []
    series = _read_api_log(api_log, problems)
    from_file = _read_metrics_file(metrics_file, problems) if metrics_file else {}
    declared = {s.name: s for s in specs}
    out: dict[str, MetricRecord] = {}
    for name in sorted(set(series) | set(from_file)):
        points = tuple(series.get(name, ()))
        value = from_file[name] if name in from_file else points[-1].value
        spec = declared.get(name)
        out[name] = MetricRecord(
            value=value,
            series=points if len(points) > 1 or (points and points[0].step is not None) else (),
            goal=spec.goal if spec else None,
            tolerance=spec.tolerance if spec else None,
            source="file" if name in from_file else "api",
        )
    for name in sorted(set(declared) - set(out)):
        problems.append(f"declared metric '{name}' was not reported")
    return out, problems


def _read_api_log(path: Path, problems: list[str]) -> dict[str, list[MetricPoint]]:
    series: dict[str, list[MetricPoint]] = {}
    if not path.exists():
        return series
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        try:
            rec = json.loads(line)
            series.setdefault(str(rec["name"]), []).append(
                MetricPoint(value=float(rec["value"]), step=rec.get("step"))
            )
        except (ValueError, KeyError, TypeError):
            problems.append(f"unreadable metric record on line {n} of the metric log")
    return series


def _read_metrics_file(path: Path, problems: list[str]) -> dict[str, float]:
    if not path.exists():
        problems.append(f"metrics_file {path.name} was not written by the run")
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"metrics_file {path.name} is not valid JSON: {exc}")
        return {}
    if not isinstance(data, dict):
        problems.append(f"metrics_file {path.name} must hold a flat JSON object {{name: number}}")
        return {}
    values: dict[str, float] = {}
    for key, value in data.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.append(f"metrics_file {path.name}: {key!r} is not a finite number; skipped")
            continue
        values[str(key)] = float(value)
    return values
