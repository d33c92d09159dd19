"""`keel init`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument(
    "folder", required=False, type=click.Path(file_okay=False, path_type=Path), default=Path(".")
)
@click.option("--name", help="Project name (default: the folder's name).")
def init_cmd(folder: Path, name: str | None) -> None:
    """Scaffold keel.yaml and a small example experiment in FOLDER (default: here).

    \b
    Example:
      keel init my-study && cd my-study && keel run estimate
    """
    from keel.ops.init import init_project

    for path in init_project(folder, name=name):
        click.echo(f"wrote {path}")
    click.echo("next: keel run estimate   (then: keel show @latest)")
