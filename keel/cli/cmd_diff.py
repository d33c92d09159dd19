"""`keel diff`."""

from __future__ import annotations

import click

from keel.cli.context import Ctx, console, echo_json


@click.command("diff")
@click.argument("run_a", metavar="A")
@click.argument("run_b", metavar="B")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--all",
    "all_fields",
    is_flag=True,
    help="Also show fields that differ between any two runs (ids, times, pid, log digests).",
)
@click.pass_obj
def diff_cmd(ctx: Ctx, run_a: str, run_b: str, as_json: bool, all_fields: bool) -> None:
    """Explain what differs between runs A and B, grouped and ranked.

    Groups: code (commits between, files changed, uncommitted changes), config (each
    parameter with the layer it came from), seeds, data (inputs, with changed rows of
    CSV/text files), environment (packages, Python, variables, BLAS), hardware, executor,
    outputs and metrics (delta and tolerance). A and B are run references as `keel show`
    takes them: ids, unique prefixes, EXPERIMENT@latest, EXPERIMENT@baseline. Prints exactly
    "no difference" when the runs differ only in ids, times and the like. Exits 0 whenever
    the comparison was made.

    \b
    Examples:
      keel diff 06g0q9y 06g0r2k
      keel diff train@baseline train@latest --json
      keel diff 06g0q 06g0r --all
    """
    from keel.ops.diff import diff_runs

    result = diff_runs(ctx.workspace(), run_a, run_b, all_fields=all_fields)
    if as_json:
        echo_json(result.to_json())
        return
    from keel.report.diff import render_diff

    console().print(render_diff(result.diff, a=result.a, b=result.b, warnings=result.warnings))
