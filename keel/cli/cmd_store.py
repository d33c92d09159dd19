"""`keel verify`, `keel reindex`, `keel migrate`: store and index maintenance."""

from __future__ import annotations

import sys

import click

from keel.cli.context import Ctx, console, echo_json


@click.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def verify_cmd(ctx: Ctx, as_json: bool) -> None:
    """Re-hash every stored object and report corruption or dangling run refs.

    Exits 0 when everything is intact, 1 otherwise. Nothing is modified.
    """
    from rich.progress import Progress

    from keel.ops.verify import verify_store

    ws = ctx.workspace()
    with Progress(console=console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task("verifying", total=None)
        report = verify_store(
            ws, on_progress=lambda n, total: bar.update(task, completed=n, total=total)
        )
    if as_json:
        echo_json(
            {
                "checked": report.checked,
                "corrupt": list(report.corrupt),
                "dangling_refs": [list(x) for x in report.dangling_refs],
                "ok": bool(report),
            }
        )
    else:
        for digest in report.corrupt:
            click.secho(f"CORRUPT {digest}", fg="red")
        for name, digest in report.dangling_refs:
            click.secho(f"MISSING {digest} (referenced by {name})", fg="red")
        verdict = (
            "all intact"
            if report
            else (
                f"{len(report.corrupt)} corrupt, {len(report.dangling_refs)} missing: restore them "
                "from a remote or backup; corrupt objects are never returned by reads"
            )
        )
        click.echo(f"checked {report.checked} objects in {ws.store_root}: {verdict}")
    sys.exit(0 if report else 1)


@click.command("reindex")
@click.pass_obj
def reindex_cmd(ctx: Ctx) -> None:
    """Rebuild the metadata index from the object store alone (the store is the truth)."""
    from keel.ops.sync import reindex

    ws = ctx.workspace()
    count = reindex(ws)
    click.echo(f"indexed {count} runs from {ws.store_root} into {_masked(ws.index_url)}")


@click.command("migrate")
@click.pass_obj
def migrate_cmd(ctx: Ctx) -> None:
    """Upgrade the metadata index schema to this keel's revision (back it up first)."""
    from keel.store.meta import migrate

    ws = ctx.workspace()
    before, after = migrate(ws.index_url)
    if before == after:
        click.echo(f"index schema already at revision {after}")
    else:
        click.echo(f"index schema upgraded from {before or 'empty'} to {after}")


def _masked(url: str) -> str:
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
