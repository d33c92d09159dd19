"""`keel verify`, `keel reindex`, `keel migrate`: store and index maintenance."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from keel.cli.context import Ctx, console, echo_json

if TYPE_CHECKING:
    from keel.ops.verify import RemoteVerifyReport


@click.command("verify")
@click.option(
    "--remote",
    "remote",
    metavar="NAME",
    is_flag=False,
    flag_value="",
    default=None,
    help="Check a remote from keel.yaml instead (alone: the default remote).",
)
@click.option(
    "--read-data",
    is_flag=True,
    help="With --remote: download every object and re-hash it (default: check that each is "
    "there with the right size). The local check always reads the data.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def verify_cmd(ctx: Ctx, remote: str | None, read_data: bool, as_json: bool) -> None:
    """Re-hash every stored object and report corruption or dangling refs.

    \b
    Examples:
      keel verify                     every object here, re-hashed
      keel verify --remote origin     every object the remote's refs reach: there, right size
      keel verify --remote --read-data   ...downloaded and re-hashed

    Exits 0 when everything is intact, 1 otherwise. Nothing is modified.
    """
    from rich.progress import Progress

    ws = ctx.workspace()
    quiet = as_json or not sys.stderr.isatty()
    with Progress(console=console(stderr=True), transient=True, disable=quiet) as bar:
        task = bar.add_task("verifying", total=None)

        def progress(n: int, total: int) -> None:
            bar.update(task, completed=n, total=total)

        if remote is not None:
            from keel.ops.verify import verify_remote

            checked = verify_remote(ws, remote=remote or None, read_data=read_data,
                                    on_progress=progress)  # fmt: skip
            bar.stop()
            _show_remote(checked, as_json=as_json)
            return
        from keel.ops.verify import verify_store

        report = verify_store(ws, on_progress=progress)
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


def _show_remote(report: RemoteVerifyReport, *, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "remote": report.remote,
                "url": report.url,
                "checked": report.checked,
                "read_data": report.read_data,
                "corrupt": [{"digest": d, "reason": r} for d, r in report.corrupt],
                "missing": list(report.missing),
                "dangling_refs": [list(x) for x in report.dangling_refs],
                "unresolved": report.unresolved,
                "ok": bool(report),
            }
        )
        sys.exit(0 if report else 1)
    for digest, reason in report.corrupt:
        click.secho(f"CORRUPT {digest}: {reason}", fg="red")
    for digest in report.missing:
        click.secho(f"MISSING {digest} (this store has it: push the run or dataset version "
                    "that names it by name, `keel push RUN`)", fg="red")  # fmt: skip
    for name, digest in report.dangling_refs:
        click.secho(f"MISSING {digest} (referenced by {name})", fg="red")
    how = "downloaded and re-hashed" if report.read_data else "present with the right size"
    bad = len(report.corrupt) + len(report.missing) + len(report.dangling_refs)
    verdict = f"all {how}" if report else f"{bad} problems"
    click.echo(f"checked {report.checked} objects on {report.remote} ({report.url}): {verdict}")
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
