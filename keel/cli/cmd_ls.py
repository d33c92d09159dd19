"""`keel ls`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from keel.cli.context import Ctx, console, echo_json

if TYPE_CHECKING:
    from keel.model.run import RunSummary


@click.command("ls")
@click.option("-e", "--experiment", help="Only runs of this experiment.")
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "succeeded", "failed", "killed", "lost"]),
    help="Only runs with this status.",
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Only runs whose resolved parameter equals VALUE (repeatable).",
)
@click.option("--tag", "tags", multiple=True, help="Only runs with this tag (repeatable).")
@click.option("--sort", "sort_metric", metavar="METRIC", help="Sort by a metric (best first).")
@click.option("--asc", is_flag=True, help="With --sort: smallest first.")
@click.option(
    "-n", "--limit", type=int, default=50, show_default=True, help="At most this many runs."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def ls_cmd(
    ctx: Ctx,
    experiment: str | None,
    status: str | None,
    params: tuple[str, ...],
    tags: tuple[str, ...],
    sort_metric: str | None,
    asc: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first (or best first with --sort).

    \b
    Examples:
      keel ls
      keel ls -e train --status succeeded --sort accuracy
      keel ls -p model=logreg --tag baseline --json
    """
    from keel.cli.cmd_run import parse_overrides
    from keel.ops.listing import list_runs

    ws = ctx.workspace()
    rows = list_runs(
        ws,
        experiment=experiment,
        status=status,
        params=parse_overrides(params),
        tags=tags,
        sort_metric=sort_metric,
        descending=not asc,
        limit=limit,
    )
    if as_json:
        echo_json([_row_json(r) for r in rows])
        return
    _table(rows, sort_metric)


def _row_json(r: RunSummary) -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(r)
    data["status"] = r.status.value
    data["tags"] = list(r.tags)
    return data


def _table(rows: list[RunSummary], sort_metric: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from keel.report.show import status_text

    out = console()
    if not rows:
        out.print("no runs match: start one with `keel run EXPERIMENT`")
        return
    metric_names = sorted({m for r in rows for m in r.metrics})[:4]
    if sort_metric and sort_metric not in metric_names:
        metric_names.insert(0, sort_metric)
    table = Table(box=None, header_style="bold")
    for col in ("id", "experiment", "status", "created", "duration", "git", *metric_names):
        table.add_column(col, no_wrap=True)
    table.add_column("why", overflow="ellipsis", no_wrap=True, max_width=40)
    for r in rows:
        dur = f"{r.duration_s:.2f}s" if r.duration_s is not None else ""
        git = (r.git_commit or "")[:8] + ("*" if r.git_dirty else "")
        values = [_fmt(r.metrics.get(n)) for n in metric_names]
        table.add_row(
            r.id,
            r.experiment,
            status_text(r.status.value),
            r.created_at[:16].replace("T", " "),
            dur,
            git,
            *values,
            Text(r.why or ""),
        )
    out.print(table)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"
