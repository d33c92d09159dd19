"""`keel data diff` and `keel data check` (mounted in the `keel data` group)."""

from __future__ import annotations

from pathlib import Path

import click

from keel.cli.context import Ctx, console, echo_json


@click.command("diff")
@click.argument("old", metavar="NAME@A")
@click.argument("new", metavar="[NAME@B]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def data_diff_cmd(ctx: Ctx, old: str, new: str | None, as_json: bool) -> None:
    """Compare two versions of a dataset: files, schema, row counts and per-column drift.

    Files are compared by their digests; tables (CSV, Parquet) by the profiles stored when
    each version was added, so no data is read. Each column present in both versions gets
    PSI (numeric and categorical) and the Kolmogorov-Smirnov statistic (numeric), and is
    marked drifted at PSI ≥ 0.2 (0.1-0.2 moderate), KS ≥ 0.1 or a change of 0.1 in its
    share of nulls. B defaults to the latest version. Exits 0 whenever the comparison was made.

    \b
    Examples:
      keel data diff sales@3f2a9c0d1e4b sales@9a8b7c6d5e4f
      keel data diff sales@3f2a9c0d1e4b          # against the latest version
      keel data diff sales@3f2a9c0d1e4b sales --json
    """
    from keel.ops.data import get_version
    from keel.ops.datadiff import diff_versions

    ws = ctx.workspace()
    before = get_version(ws, old)
    after = get_version(ws, new or before.name)
    result = diff_versions(ws, before, after)
    if as_json:
        echo_json(result.to_json())
        return
    from keel.report.datadrift import render_data_diff

    console().print(render_data_diff(result))


@click.command("check")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "--path",
    type=click.Path(exists=True, path_type=Path),
    help="Check this file or folder against the version's contract instead of its stored data.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def data_check_cmd(ctx: Ctx, ref: str, path: Path | None, as_json: bool) -> None:
    """Check a dataset version's tables against its contract (default: the latest version).

    Every failing column and check is listed with its first failing values and their rows
    (row 1 is the first data row). Exits 0 when the data satisfies the contract, 4 when it
    does not.

    \b
    Examples:
      keel data check sales
      keel data check sales@3f2a9c0d1e4b --json
      keel data check sales --path exports/sales-2024-06.csv
    """
    from keel.errors import ValidationError
    from keel.ops.data import get_version
    from keel.ops.datacheck import check_version

    ws = ctx.workspace()
    result = check_version(ws, get_version(ws, ref), path=path)
    if as_json:
        echo_json(
            {
                "version": result.version,
                "ok": bool(result),
                "tables": result.tables,
                "rows": result.rows,
                "problems": [str(p) for p in result.problems],
            }
        )
        if not result:
            raise click.exceptions.Exit(ValidationError.code)
        return
    if not result:
        raise ValidationError(result.problems)
    console().print(
        f"ok: {result.version} satisfies its contract "
        f"({result.tables} table(s), {result.rows:,} rows)"
    )
