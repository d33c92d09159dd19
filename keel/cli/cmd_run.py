"""`keel run`."""

from __future__ import annotations

import signal
import sys

import click

from keel.cli.context import Ctx, echo_json


def parse_overrides(values: tuple[str, ...]) -> dict[str, str]:
    """``("lr=0.1", ...)`` → ``{"lr": "0.1"}``; a value may itself contain ``=``."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="'-p'")
        out[name.strip()] = value
    return out


@click.command("run")
@click.argument("experiment")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a parameter (repeatable); validated against the catalog.",
)
@click.option("--seed", type=int, help="Root seed for this run (default: the experiment's).")
@click.option("--profile", help="Profile to run under (overrides the global --profile).")
@click.option("--why", help="Why this run: recorded in the manifest.")
@click.option(
    "--allow-drift",
    metavar="REASON",
    help="Under a strict profile, run even though keel.lock drifted; the reason is recorded.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the sealed run as JSON on stdout (the command's output goes to stderr).",
)
@click.pass_obj
def run_cmd(
    ctx: Ctx,
    experiment: str,
    params: tuple[str, ...],
    seed: int | None,
    profile: str | None,
    why: str | None,
    allow_drift: str | None,
    as_json: bool,
) -> None:
    """Run EXPERIMENT and seal a manifest of exactly what produced the result.

    \b
    Examples:
      keel run train
      keel run train -p model=logreg -p c=0.5 --seed 7 --why "try a linear model"
      keel run train --profile prod --json
      keel run train --profile prod --allow-drift "numpy 2 is what we now ship"
    """
    from keel.ops.run import RunRequest, run_experiment

    overrides = parse_overrides(params)
    if allow_drift is not None and not allow_drift.strip():
        raise click.BadParameter("give a reason", param_hint="'--allow-drift'")
    if profile:
        ctx.profile = profile
    ws = ctx.workspace()
    out = sys.stderr.buffer if as_json else sys.stdout.buffer

    def on_output(stream: str, chunk: bytes) -> None:
        target = sys.stderr.buffer if stream == "stderr" else out
        target.write(chunk)
        target.flush()

    outcome = run_experiment(
        ws,
        RunRequest(
            experiment=experiment,
            overrides=overrides,
            seed=seed,
            why=why,
            allow_drift=allow_drift,
        ),
        on_output=on_output,
    )
    m = outcome.manifest
    if as_json:
        echo_json({"digest": str(outcome.digest), "manifest": m.to_json()})
    else:
        _summary(m, str(outcome.digest), ws.store_root)
        for version in outcome.datasets:
            click.echo(f"  registered dataset {version.ref}", err=True)
    sys.exit(_exit_code(m.run.status.value, m.run.exit_code, m.run.signal))


def _summary(m: object, digest: str, store: object) -> None:
    from keel.model.manifest import Manifest

    assert isinstance(m, Manifest)
    run = m.run
    colour = {"succeeded": "green", "failed": "red"}.get(run.status.value, "yellow")
    metrics = "  ".join(f"{k}={v.value:.6g}" for k, v in sorted(m.metrics.items()))
    click.echo(
        click.style(f"run {run.id} {run.status.value}", fg=colour, bold=True)
        + f" in {run.duration_s or 0:.2f} s"
        + (f"  {metrics}" if metrics else ""),
        err=True,
    )
    for flag in m.flags:
        click.secho(f"  ! {flag}", fg="yellow", err=True)
    click.echo(f"  sealed {digest} in {store}", err=True)
    click.echo(f"  keel show {run.id}", err=True)


def _exit_code(status: str, exit_code: int | None, sig: str | None) -> int:
    if status == "succeeded":
        return 0
    if sig is not None:
        return 128 + int(signal.Signals[sig])
    if status == "killed":
        return 130
    return exit_code or 1
