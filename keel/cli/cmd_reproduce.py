"""`keel reproduce` and `keel determinism`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from keel.cli.context import Ctx, console, echo_json

if TYPE_CHECKING:
    from keel.base.canonical import JsonValue


def _echo_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """Progress of a reproduce, on stderr."""
    if kind == "restoring":
        commit = str(data.get("commit") or "(no commit)")[:12]
        dirty = " with its uncommitted changes" if data.get("dirty") else ""
        click.secho(f"restoring commit {commit}{dirty} in a temporary worktree", dim=True, err=True)
    elif kind == "environment":
        click.secho(str(data.get("message")), dim=True, err=True)
    elif kind == "started":
        click.secho(f"running {data.get('experiment')} as run {data.get('run_id')}", dim=True,
                    err=True)  # fmt: skip


def _to_stderr(stream: str, chunk: bytes) -> None:
    sys.stderr.buffer.write(chunk)
    sys.stderr.buffer.flush()


@click.command("reproduce")
@click.argument("run")
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="NAME=ABS",
    help="Accept a metric differing by up to ABS (repeatable); default: its declared tolerance.",
)
@click.option(
    "--env",
    "env_mode",
    type=click.Choice(["current", "recorded"]),
    default="current",
    show_default=True,
    help="Run in this interpreter, or in a virtual environment rebuilt with the recorded "
    "package versions (cached under .keel/cache/envs).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary worktree and print its path.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict and evidence as JSON.")
@click.pass_obj
def reproduce_cmd(
    ctx: Ctx, run: str, tolerances: tuple[str, ...], env_mode: str, keep: bool, as_json: bool
) -> None:
    """Re-execute RUN from its manifest and say, with evidence, whether it reproduced.

    The recorded code (commit + uncommitted diff + untracked files) is restored in a temporary
    git worktree, the recorded inputs come from the store, and the run executes with its
    recorded parameters, seed, PYTHONHASHSEED and allow-listed variables. Your working tree is
    never touched. Outputs are compared by digest and metrics within tolerance; the
    environment difference between then and now is listed whatever the verdict. The
    reproduction is itself a sealed run (`keel show` it).

    \b
    Exit codes: 0 REPRODUCED or REPRODUCED_WITHIN_TOLERANCE, 1 DIVERGED, 2 NOT_REPRODUCIBLE.

    \b
    Examples:
      keel reproduce @latest
      keel reproduce train@latest --tolerance accuracy=0.005
      keel reproduce 06g0q --env recorded
      keel reproduce 06g0q --keep --json
    """
    from keel.ops.reproduce import EnvMode, ReproduceRequest, parse_tolerances, reproduce
    from keel.report.reproduce import render_reproduction

    request = ReproduceRequest(
        ref=run, tolerances=parse_tolerances(tolerances), env=EnvMode(env_mode), keep=keep
    )
    result = reproduce(ctx.workspace(), request, on_output=_to_stderr, on_event=_echo_event)
    if as_json:
        echo_json(result.to_json())
        sys.exit(result.exit_code)
    data = result.to_json()
    console().print(render_reproduction(data))
    if result.outcome is not None:
        click.echo(f"  keel show {result.outcome.run_id}")
    if result.sandbox is not None:
        click.echo(f"  kept the worktree at {result.sandbox} "
                   f"(remove it with `git worktree remove --force {result.sandbox}`)")  # fmt: skip
    sys.exit(result.exit_code)


@click.command("determinism")
@click.argument("experiment")
@click.option(
    "-n", "--runs", "replicates", type=int, default=3, show_default=True,
    help="Runs per group: same-seed replicates, and per perturbation.",
)  # fmt: skip
@click.option(
    "--perturb",
    metavar="seed,threads,hashseed",
    default="",
    help="Also vary these, one at a time: the seed, BLAS/OpenMP thread counts, PYTHONHASHSEED.",
)
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Runs at once.")
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
    help="Override a parameter (repeatable), as for `keel run`.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the noise profile as JSON.")
@click.pass_obj
def determinism_cmd(
    ctx: Ctx,
    experiment: str,
    replicates: int,
    perturb: str,
    jobs: int,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run EXPERIMENT several times: are the results bit-identical, and how noisy are they?

    Same-seed replicates show whether the experiment is deterministic; --perturb measures each
    metric's spread (mean, std, min, max) when one factor varies. Every run is a sealed run
    tagged `determinism`, executed in its own temporary worktree. The result is stored as the
    experiment's noise profile: `keel show` displays it, and `keel reproduce` uses it to say
    whether a metric difference is within noise.

    \b
    Examples:
      keel determinism train
      keel determinism train -n 5 --perturb seed,threads,hashseed --jobs 2
      keel determinism train -p lr=0.1 --json
    """
    from rich.progress import Progress

    from keel.cli.cmd_run import parse_overrides
    from keel.ops.determinism import DeterminismRequest, determinism, parse_perturbations
    from keel.report.reproduce import render_noise

    request = DeterminismRequest(
        experiment=experiment,
        overrides=parse_overrides(params),
        replicates=replicates,
        perturb=parse_perturbations(perturb),
        jobs=jobs,
    )
    with Progress(console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{experiment}: runs", total=None)

        def on_event(kind: str, data: Mapping[str, JsonValue]) -> None:
            done, total = data.get("done"), data.get("total")
            if isinstance(done, int) and isinstance(total, int):
                bar.update(task, completed=done, total=total)

        result = determinism(ctx.workspace(), request, on_event=on_event)
    if as_json:
        echo_json({"digest": str(result.digest), "deterministic": bool(result),
                   "profile": result.profile.to_json()})  # fmt: skip
        return
    console().print(render_noise(result.profile, str(result.digest)))
    verdict = "bit-identical" if result else "NOT bit-identical"
    click.echo(f"same-seed replicates: {verdict}; stored as the noise profile of {experiment}")
