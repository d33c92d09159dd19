"""`keel why`."""

from __future__ import annotations

import click

from keel.cli.context import Ctx, console, echo_json


@click.command("why")
@click.argument("a")
@click.argument("b")
@click.option("--metric", help="The metric to explain (default: the first declared one).")
@click.option(
    "--max-runs",
    type=int,
    default=8,
    show_default=True,
    help="At most this many re-runs (A's re-run included).",
)
@click.option(
    "--include-env",
    is_flag=True,
    help="Also switch the package set (builds B's environment, as reproduce --env recorded).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def why_cmd(
    ctx: Ctx,
    a: str,
    b: str,
    metric: str | None,
    max_runs: int,
    include_env: bool,
    as_json: bool,
) -> None:
    """Explain which difference between runs A and B moved the metric.

    Re-runs A as recorded, then A with one group of B's factors switched at a time —
    params, seed, inputs, code, environment variables (and packages with --include-env) —
    and reports which switch carries the metric to B's value. Every re-run is a sealed run.

    \b
    Examples:
      keel why 06g0rr 06g0s9
      keel why train@baseline train@latest --metric accuracy --max-runs 4
      keel why A B --include-env --json
    """
    from keel.ops.why import explain

    out = console(stderr=True)
    report = explain(
        ctx.workspace(),
        a,
        b,
        metric=metric,
        max_runs=max_runs,
        include_packages=include_env,
        on_progress=lambda line: out.print(f"[dim]{line}[/]") if not as_json else None,
    )
    if as_json:
        echo_json(report.to_json())
        return
    from keel.report.why import render_why

    console().print(render_why(report.attribution, a=report.a, b=report.b, seconds=report.seconds))
