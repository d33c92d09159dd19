"""`keel lock` and `keel check`."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

import click

from keel.cli.context import Ctx, console, echo_json
from keel.errors import UserError

PYTHON_HELP = (
    "Interpreter whose environment is recorded or compared (default: the one keel runs in). "
    "Also KEEL_PYTHON."
)


@contextlib.contextmanager
def exit_2_on_error() -> Iterator[None]:
    """For commands whose exit codes are 0 / 1 / 2: any user error prints one line, exits 2."""
    try:
        yield
    except UserError as exc:
        if os.environ.get("KEEL_DEBUG"):
            traceback.print_exc()
        click.echo(click.style("error: ", fg="red") + str(exc), err=True)
        sys.exit(2)


@click.command("lock")
@click.argument("experiments", nargs=-1)
@click.option("--profile", help="Profile to resolve with (overrides the global --profile).")
@click.option("--python", envvar="KEEL_PYTHON", metavar="PATH", help=PYTHON_HELP)
@click.pass_obj
def lock_cmd(
    ctx: Ctx, experiments: tuple[str, ...], profile: str | None, python: str | None
) -> None:
    """Record each experiment's resolved config, environment and input digests in keel.lock.

    keel.lock is TOML with sorted keys, one table per experiment: commit it. Without
    EXPERIMENTS every experiment is locked and the file is rewritten; with names, only those
    are (re)locked and the others kept. Code is recorded as information (commit, dirty), never
    pinned.

    \b
    Examples:
      keel lock                          lock every experiment
      keel lock train                    re-lock one experiment after an intended change
      keel --profile prod lock           lock what the strict prod profile runs
      keel lock --python .venv/bin/python
    """
    from keel.ops.lock import lock_experiments

    if profile:
        ctx.profile = profile
    ws = ctx.workspace()
    outcome = lock_experiments(ws, experiments, profile=ws.profile, python=python)
    envs = {e.environment.fingerprint for e in outcome.lock.experiments.values() if e.environment}
    inputs = sum(len(outcome.lock.experiments[n].inputs) for n in outcome.locked)
    click.echo(
        f"locked {', '.join(outcome.locked)} (profile {ws.profile}) in {outcome.path}: "
        f"{inputs} input(s), {len(envs)} environment(s)"
    )


@click.command("check")
@click.argument("experiments", nargs=-1)
@click.option(
    "--against",
    default="lock",
    show_default=True,
    metavar="lock|baseline|RUN",
    help="Compare with keel.lock, each experiment's baseline run, or one run's manifest.",
)
@click.option(
    "--profile", help="Resolve with this profile (default: the one the lock or the run recorded)."
)
@click.option("--python", envvar="KEEL_PYTHON", metavar="PATH", help=PYTHON_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
@click.option(
    "--rerun",
    is_flag=True,
    help="Canary: re-run each baseline's recorded configuration in the current environment "
    "and judge it as `keel reproduce` does (exit 0 reproduced, 1 diverged, 2 error).",
)
@click.pass_obj
def check_cmd(
    ctx: Ctx,
    experiments: tuple[str, ...],
    against: str,
    profile: str | None,
    python: str | None,
    as_json: bool,
    rerun: bool,
) -> None:
    """Report drift from keel.lock, a baseline or a run — without running anything.

    Drift is named by kind: config (param, old → new, and its layer), environment (packages,
    Python, platform, lock files, thread-count variables), data (inputs whose content changed)
    and code (commit moved, uncommitted changes: information only, never a failure).

    Exit codes: 0 no drift, 1 drift, 2 error (no keel.lock, unknown experiment, ...).

    \b
    Examples:
      keel check                         every locked experiment against keel.lock
      keel check train --json            one experiment, machine-readable
      keel check --against baseline      each experiment against its baseline run
      keel check train --against 06g0q9y against one run's manifest
      KEEL_PYTHON=.venv/bin/python keel check
      keel check --rerun                 after a package or keel upgrade: do baselines still hold?
    """
    if rerun:
        _rerun(ctx, experiments, as_json)
    from keel.ops.check import check_drift
    from keel.report.drift import render_drift

    with exit_2_on_error():
        if profile:
            ctx.profile = profile
        ws = ctx.workspace()
        report = check_drift(ws, experiments, against=against, profile=ctx.profile, python=python)
    if as_json:
        echo_json(report.to_json())
    else:
        console().print(render_drift(report))
    sys.exit(report.exit_code)


def _rerun(ctx: Ctx, experiments: tuple[str, ...], as_json: bool) -> None:
    from rich.table import Table

    from keel.ops.check import rerun_baselines
    from keel.report.reproduce import verdict_text

    with exit_2_on_error():
        results = rerun_baselines(ctx.workspace(), experiments)
    code = max(r.exit_code for _, r in results)
    if as_json:
        echo_json({"rerun": [{"experiment": n, **r.to_json()} for n, r in results],
                   "exit_code": code})  # fmt: skip
        sys.exit(code)
    table = Table(title="Baselines re-run in the current environment", title_justify="left")
    for col in ("experiment", "baseline", "re-run", "verdict"):
        table.add_column(col)
    for name, r in results:
        rerun_id = r.outcome.manifest.run.id if r.outcome else ""
        table.add_row(name, r.run_id, rerun_id, verdict_text(r.verdict))
    console().print(table)
    sys.exit(code)
