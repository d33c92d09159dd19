"""`keel repro` and `keel status`: pipelines of experiments linked by their inputs and outputs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import click

from keel.cli.context import Ctx, echo_json

if TYPE_CHECKING:
    from keel.base.canonical import JsonValue
    from keel.ops.workspace import Workspace
    from keel.report.pipeline import Line


def _styled(line: Line) -> str:
    if line.colour == "bold":
        return click.style(line.text, bold=True)
    if line.colour == "dim":
        return click.style(line.text, dim=True)
    return click.style(line.text, fg=line.colour) if line.colour else line.text


def _echo(lines: Iterable[Line], *, err: bool = False) -> None:
    """Print lines in their colours (plain when piped), in one write."""
    stream = sys.stderr if err else sys.stdout
    plain = not stream.isatty() or "NO_COLOR" in os.environ
    click.echo("\n".join(line.text if plain else _styled(line) for line in lines), err=err)


def _status(ws: Workspace, targets: tuple[str, ...], *, force: bool, as_json: bool) -> None:
    """Print the status document; exit 0 when up to date, else 1."""
    from keel.ops.pipeline import status_document

    doc = status_document(ws, targets, force=force)
    if as_json:
        echo_json(doc)
    else:
        from keel.report.pipeline import render_status

        _echo(render_status(doc))
    sys.exit(0 if doc.get("up_to_date") is True else 1)


@click.command("status")
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.pass_obj
def status_cmd(ctx: Ctx, targets: tuple[str, ...], as_json: bool) -> None:
    """Say, for every pipeline stage, whether `keel repro` would run it, and exactly why.

    Every experiment is a stage; one that reads another's output runs after it. With
    TARGETs, only those stages and everything upstream of them.

    Exit status: 0 when everything is up to date; 1 when something would run or have its
    outputs restored.

    \b
    Examples:
      keel status
      keel status train --json
    """
    _status(ctx.workspace(), targets, force=False, as_json=as_json)


@click.command("repro")
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@click.option(
    "--executor",
    type=click.Choice(["local", "pool", "dask"]),
    default="local",
    show_default=True,
    help="Where stages run: one at a time here, N local processes, or a Dask cluster.",
)
@click.option("-j", "--jobs", type=int, help="Stages run at once (default: the CPU count).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://HOST:PORT).")
@click.option("--force", is_flag=True, help="Run the selected stages even when cached.")
@click.option("--dry-run", is_flag=True, help="Say what would run and why; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@click.pass_obj
def repro_cmd(
    ctx: Ctx,
    targets: tuple[str, ...],
    executor: str,
    jobs: int | None,
    scheduler: str | None,
    force: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Run TARGETs (default: every stage) and what they depend on, reusing cached results.

    A stage is skipped when its cache key — resolved config, code, input digests and
    environment — matches an earlier successful run; its outputs are restored from the store
    if they are missing or differ. Independent stages run side by side with --executor pool
    or dask. A failed stage stops the stages downstream of it; other branches go on.

    Exit status: 0 when every stage is done (ran, cached or restored), 1 when one failed or
    was skipped; with --dry-run, as `keel status`.

    \b
    Examples:
      keel repro
      keel repro evaluate --executor pool -j 4
      keel repro --dry-run
      keel repro train --force
    """
    ws = ctx.workspace()
    if dry_run:
        _status(ws, targets, force=force, as_json=as_json)
    from keel.ops.pipeline_run import ReproOptions, repro
    from keel.report.pipeline import render_repro, repro_lines, start_line

    def on_event(kind: str, data: Mapping[str, JsonValue]) -> None:
        if kind == "start":
            _echo([start_line(data)], err=True)
        elif kind == "stage" and not as_json:
            _echo(repro_lines(data))

    options = ReproOptions(executor=executor, jobs=jobs, scheduler=scheduler, force=force)
    try:
        result = repro(ws, targets, options=options, on_event=on_event)
    finally:
        ws.close()
    doc = result.to_json()
    if as_json:
        echo_json(doc)
    else:
        _echo(render_repro(doc)[-1:])
    sys.exit(0 if result.ok else 1)
