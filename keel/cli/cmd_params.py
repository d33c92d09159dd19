"""`keel params`."""

from __future__ import annotations

import click

from keel.cli.context import Ctx, console, echo_json


@click.command("params")
@click.argument("experiment", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def params_cmd(ctx: Ctx, experiment: str | None, as_json: bool) -> None:
    """The parameter catalog: name, type, default, range or choices, unit, doc.

    With EXPERIMENT, only its parameters, with the default it actually gets and where from.

    \b
    Examples:
      keel params
      keel params train --json
    """
    from rich.table import Table
    from rich.text import Text

    from keel.resolve.resolve import catalog_rows

    ws = ctx.workspace()
    rows = catalog_rows(ws.project, experiment)
    if as_json:
        echo_json(rows)
        return
    table = Table(
        title=f"Parameters{' of ' + experiment if experiment else ''}",
        title_justify="left",
        header_style="bold",
    )
    columns = [
        c
        for c in ("name", "type", "default", "source", "range", "unit", "doc")
        if any(c in r for r in rows)
    ]
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(Text(_text(row.get(c))) for c in columns))
    console().print(table)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
