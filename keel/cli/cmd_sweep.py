"""`keel sweep EXPERIMENT ...`, `keel sweep --resume SWEEP`, `keel sweep show`, `keel sweep ls`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from keel.cli.context import Ctx, console, echo_json

if TYPE_CHECKING:
    from keel.base.canonical import JsonValue
    from keel.ops.sweep import SweepOutcome

_USAGE = "[OPTIONS] EXPERIMENT -p NAME=VALUES...  |  --resume SWEEP  |  show [SWEEP]  |  ls"
_SWEEP_OPTIONS = ("axes", "seeds", "folds", "fold_strategy", "fold_data", "fold_label",
                  "fold_group", "strategy", "trials", "timeout_s", "metric", "seed",
                  "why")  # fmt: skip


class _SweepGroup(click.Group):
    """``keel sweep`` runs a sweep unless its first word is a subcommand (show, ls)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


class _RunCommand(click.Command):
    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("keel sweep", _USAGE)


@click.group("sweep", cls=_SweepGroup)
def sweep_group() -> None:
    """Run many trials of an experiment; resume, show and list sweeps."""


@sweep_group.command("run", cls=_RunCommand, hidden=True)
@click.argument("experiment", required=False)
@click.option(
    "-p",
    "--param",
    "axes",
    multiple=True,
    metavar="NAME=VALUES",
    help="An axis: a,b,c | range(start,stop[,step]) | uniform(a,b) | loguniform(a,b) "
    "| randint(a,b); one value fixes NAME for every trial. Repeatable.",
)
@click.option("--seeds", type=int, help="Seed replicates of each configuration (default 1).")
@click.option("--folds", type=int, help="Cross-validation folds k (each trial gets one fold).")
@click.option(
    "--fold-strategy",
    type=click.Choice(["kfold", "stratified", "group"]),
    help="How rows are split into folds (default kfold).",
)
@click.option("--fold-data", metavar="PATH", help="The table whose rows are split.")
@click.option("--fold-label", metavar="COL", help="Class column for stratified folds.")
@click.option("--fold-group", metavar="COL", help="Group column for group folds.")
@click.option(
    "--strategy",
    type=click.Choice(["grid", "random", "optuna"]),
    help="grid (default), random, or optuna (adaptive; needs keel[optuna]).",
)
@click.option("--trials", type=int, help="Configurations to try (random, optuna; caps a grid).")
@click.option(
    "--executor",
    type=click.Choice(["local", "pool", "dask"]),
    default="local",
    show_default=True,
    help="Run trials here one at a time, in N local processes, or on Dask.",
)
@click.option("--jobs", type=int, help="Parallel trials (pool, dask; default: the CPU count).")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Dask scheduler (tcp://HOST:PORT); default: a local cluster on 127.0.0.1.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    metavar="S",
    help="Kill a trial after S seconds (it is sealed killed; the rest go on).",
)
@click.option("--metric", help="The metric to optimise and to mark the best row by.")
@click.option("--seed", type=int, help="Root seed; trial seeds are derived from it.")
@click.option("--why", help="Why this sweep: recorded with every trial.")
@click.option(
    "--resume",
    metavar="SWEEP",
    help="Run the trials of SWEEP that are missing, failed, killed or lost.",
)
@click.option("--profile", help="Profile to run under (overrides the global --profile).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the sweep id and its trials' ids and statuses as JSON.",
)
@click.pass_obj
def run_cmd(ctx: Ctx, /, experiment: str | None, executor: str, jobs: int | None,
            scheduler: str | None, resume: str | None, profile: str | None, as_json: bool,
            **sweep: object) -> None:  # fmt: skip
    """Run EXPERIMENT over parameter axes, seeds and folds; every trial is a sealed run.

    The whole sweep is validated and frozen (code, keel.yaml, inputs, folds, every trial's
    plan) before its first trial starts: later edits cannot leak into it. Ctrl-C stops it
    cleanly; --resume SWEEP finishes it, running only what is missing or did not succeed.
    EXPERIMENT may also name a sweep declared under `sweeps:` in keel.yaml.

    \b
    Examples:
      keel sweep train -p lr=0.01,0.1,1 -p 'epochs=range(5,20,5)' --seeds 3
      keel sweep train -p 'lr=loguniform(1e-4,1)' --strategy random --trials 20
      keel sweep train -p lr=0.01,0.1 --folds 5 --fold-data data/points.csv
      keel sweep train -p 'lr=uniform(0.01,1)' --strategy optuna --trials 30 --metric score
      keel sweep train -p lr=0.1,1 --executor pool --jobs 4 --timeout 600
      keel sweep --resume 06g0q9y
      keel sweep show 06g0q9y;  keel sweep ls
    """
    from keel.ops.sweep import PoolOptions, SweepRequest, resume_sweep, start_sweep

    if profile:
        ctx.profile = profile
    given = [_flag(k) for k in _SWEEP_OPTIONS if sweep.get(k) not in (None, ())]
    if resume is not None and (experiment is not None or given):
        what = ", ".join(([experiment] if experiment else []) + given)
        raise click.UsageError(f"--resume runs the sweep as it was frozen; drop {what}")
    if resume is None and experiment is None:
        raise click.UsageError("name the EXPERIMENT (or declared sweep) to run, or --resume SWEEP")
    ws = ctx.workspace()
    options = PoolOptions(executor=executor, jobs=jobs, scheduler=scheduler)
    if resume is not None:
        outcome = resume_sweep(ws, resume, pool_options=options, on_event=_echo_event)
    else:
        assert experiment is not None
        request = SweepRequest(name=experiment, **_request_fields(sweep))  # type: ignore[arg-type]
        outcome = start_sweep(ws, request, pool_options=options, on_event=_echo_event)
    _finish(outcome, as_json)


def _flag(name: str) -> str:
    return {"axes": "-p", "timeout_s": "--timeout"}.get(name, "--" + name.replace("_", "-"))


def _request_fields(sweep: Mapping[str, object]) -> dict[str, object]:
    fields = {k: sweep.get(k) for k in _SWEEP_OPTIONS}
    axes = sweep.get("axes")
    fields["axes"] = tuple(str(a) for a in axes) if isinstance(axes, tuple | list) else ()
    return fields


def _echo_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """Progress on stderr: the plan, then one line per finished trial."""
    if kind == "sweep":
        total, to_run = data.get("total"), data.get("to_run")
        if to_run == 0:
            click.echo(f"sweep {data.get('id')}: nothing to run (all {total} trials succeeded)",
                       err=True)  # fmt: skip
        else:
            click.echo(f"sweep {data.get('id')}: {to_run} of {total} trials to run", err=True)
    elif kind == "trial":
        status = str(data.get("status"))
        colour = {"succeeded": "green", "failed": "red", "error": "red"}.get(status, "yellow")
        metrics = data.get("metrics")
        shown = "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())
                          if isinstance(v, float)) if isinstance(metrics, dict) else ""  # fmt: skip
        run = f"run {data.get('run')}" if data.get("run") else str(data.get("error") or "")
        click.echo(f"[{data.get('done')}/{data.get('total')}] trial {data.get('index')} "
                   + click.style(status, fg=colour) + f"  {run}  {shown}".rstrip(),
                   err=True)  # fmt: skip


def _finish(outcome: SweepOutcome, as_json: bool) -> None:
    from keel.ops.sweep_table import aggregate
    from keel.report.sweep import render_table

    record = outcome.record
    if as_json:
        echo_json(_json(outcome))
    elif outcome.trials:
        console().print(render_table(aggregate(record, outcome.trials, outcome.states)))
    for key, error in list(outcome.errors.items())[:5]:
        click.secho(f"  ! trial {key[:12]}: keel failed around the run: {error}", fg="red",
                    err=True)  # fmt: skip
    if outcome.interrupted:
        left = sum(1 for s in outcome.states.values() if s.status != "succeeded")
        click.secho(f"interrupted: {left} of {len(outcome.trials)} trials not succeeded; "
                    f"finish with: keel sweep --resume {record.id}", fg="yellow",
                    err=True)  # fmt: skip
        sys.exit(130)
    if not outcome.ok and outcome.trials:
        bad = {k: v for k, v in outcome.statuses.items() if k != "succeeded"}
        listed = ", ".join(f"{n} {k}" for k, n in bad.items())
        click.secho(f"sweep {record.id}: {listed}; re-run them with: keel sweep --resume "
                    f"{record.id}", fg="yellow", err=True)  # fmt: skip
        sys.exit(1)


def _json(outcome: SweepOutcome) -> dict[str, JsonValue]:
    trials: list[JsonValue] = []
    for t in outcome.trials:
        state = outcome.states.get(t.trial.key)
        trials.append({"index": t.trial.index, "key": t.trial.key, "config": t.trial.config,
                       "replicate": t.trial.replicate, "fold": t.trial.fold,
                       "seed": t.trial.seed, "params": dict(t.trial.params),
                       "run": state.run_id if state else None,
                       "status": state.status if state else "missing"})  # fmt: skip
    return {"sweep": outcome.record.id, "experiment": outcome.record.experiment,
            "interrupted": outcome.interrupted, "statuses": dict(outcome.statuses),
            "trials": trials}  # fmt: skip


@sweep_group.command("show")
@click.argument("sweep", default="@latest")
@click.option("--metric", help="Mark the best row by this metric (default: the sweep's).")
@click.option("--json", "as_json", is_flag=True, help="The table as JSON.")
@click.pass_obj
def show_cmd(ctx: Ctx, sweep: str, metric: str | None, as_json: bool) -> None:
    """Show SWEEP: one row per configuration, mean ± std over its seeds and folds.

    SWEEP is a sweep id, a unique prefix of one, or @latest (the default). Rows are in
    configuration order whatever order trials finished in; the best is marked by the
    metric's declared goal.

    \b
    Examples:
      keel sweep show
      keel sweep show 06g0q9y --metric score --json
    """
    from keel.ops.sweep_freeze import load_sweep
    from keel.ops.sweep_table import sweep_table
    from keel.report.sweep import render_table

    ws = ctx.workspace()
    table = sweep_table(ws, load_sweep(ws, sweep), metric=metric)
    if as_json:
        echo_json(table.to_json())
        return
    console().print(render_table(table))


@sweep_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def ls_cmd(ctx: Ctx, as_json: bool) -> None:
    """List sweeps, newest first, with how their trials stand.

    \b
    Examples:
      keel sweep ls
      keel sweep ls --json
    """
    from keel.ops.sweep_table import list_sweeps
    from keel.report.sweep import render_listing

    sweeps = list_sweeps(ctx.workspace())
    if as_json:
        echo_json([s.to_json() for s in sweeps])
        return
    console().print(render_listing(sweeps))
