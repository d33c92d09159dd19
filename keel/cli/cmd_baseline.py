"""`keel baseline set/show` and `keel gate`."""

from __future__ import annotations

import sys

import click

from keel.cli.cmd_lock import exit_2_on_error
from keel.cli.context import Ctx, console, echo_json


@click.group("baseline")
def baseline_group() -> None:
    """Set and show the run each experiment's new results are compared with.

    Setting a baseline is audited: who (the OS user), when and why are recorded, and the
    history is kept. `keel gate` and `keel check --against baseline` compare with it, and
    EXPERIMENT@baseline (or @baseline) names it wherever a run is expected.

    \b
    Examples:
      keel baseline set 06g0q9y --why "first model above 0.95 accuracy"
      keel baseline show train
      keel show train@baseline
    """


@baseline_group.command("set")
@click.argument("run")
@click.option("--why", required=True, help="Why this run becomes the baseline (required).")
@click.option("--json", "as_json", is_flag=True, help="The new baseline record as JSON.")
@click.pass_obj
def set_cmd(ctx: Ctx, run: str, why: str, as_json: bool) -> None:
    """Make RUN (a succeeded run) its experiment's baseline, recording who, when and why.

    RUN is a run id, a unique prefix of one, EXPERIMENT@latest or @latest.

    \b
    Examples:
      keel baseline set train@latest --why "new data pipeline, reviewed in #412"
      keel baseline set 06g0q9y --why "first model above 0.95 accuracy" --json
    """
    from keel.ops.baseline import baseline_history, set_baseline

    ws = ctx.workspace()
    record = set_baseline(ws, run, why=why)
    if as_json:
        echo_json(record.to_json())
        return
    history = baseline_history(ws, record.experiment)
    was = f" (was {history[1].run})" if len(history) > 1 else ""
    click.echo(f"baseline of {record.experiment} is now run {record.run}{was}")
    click.echo(f"  set by {record.who} at {record.when}: {record.why}")


@baseline_group.command("show")
@click.argument("experiment")
@click.option("--json", "as_json", is_flag=True, help="The history as JSON, newest first.")
@click.pass_obj
def show_cmd(ctx: Ctx, experiment: str, as_json: bool) -> None:
    """Show EXPERIMENT's baseline history, newest (the current baseline) first.

    \b
    Examples:
      keel baseline show train
      keel baseline show train --json
    """
    from rich.table import Table

    from keel.ops.baseline import baseline_history

    history = baseline_history(ctx.workspace(), experiment)
    if as_json:
        echo_json(
            {
                "experiment": experiment,
                "current": history[0].run,
                "history": [r.to_json() for r in history],
            }
        )
        return
    table = Table(box=None, header_style="bold", title=f"baseline history of {experiment}")
    for column in ("", "run", "when", "who", "why"):
        table.add_column(column)
    for n, record in enumerate(history):
        table.add_row("*" if n == 0 else "", record.run, record.when[:19], record.who, record.why)
    console().print(table)


@click.command("gate")
@click.argument("run")
@click.option(
    "--against",
    default="@baseline",
    show_default=True,
    metavar="REF",
    help="The reference run: the run's experiment's baseline, or any run reference.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict on stdout.")
@click.pass_obj
def gate_cmd(ctx: Ctx, run: str, against: str, as_json: bool) -> None:
    """Fail when RUN's metrics regressed from the baseline beyond their tolerance.

    Each metric with a goal (max or min) is compared with the baseline's: worse by more than
    its tolerance is a regression; better or within tolerance passes; a goal metric missing
    from RUN fails. Always against the baseline, never the previous run, so a slow decay is
    caught.

    Exit codes: 0 pass, 1 regression or missing metric, 2 no baseline (or another error).

    \b
    Examples:
      keel gate train@latest
      keel gate 06g0q9y --json
      keel gate train@latest --against 06fzz01
    """
    from keel.ops.baseline import gate_run
    from keel.report.drift import render_gate

    with exit_2_on_error():
        outcome = gate_run(ctx.workspace(), run, against=against)
    if as_json:
        echo_json(outcome.to_json())
    else:
        reference = f"{outcome.reference.id} ({against})"
        console().print(render_gate(outcome.result, run=outcome.run.id, reference=reference))
    sys.exit(outcome.result.exit_code)
