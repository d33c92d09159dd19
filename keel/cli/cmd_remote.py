"""`keel push`, `keel pull` and `keel gc`: share the store with a remote, and clean it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from keel.cli.context import Ctx, console, echo_json

if TYPE_CHECKING:
    from keel.ops.gc import GcReport
    from keel.ops.remote import TransferProgress, TransferReport

_REMOTE_HELP = "Remote from keel.yaml (default: the one named origin, else the first declared)."
_LISTED = 50


@contextmanager
def _progress_bar(title: str, *, quiet: bool) -> Iterator[Callable[[TransferProgress], None]]:
    """A rich progress bar on stderr, driven by the library's progress callback."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())  # fmt: skip
    quiet = quiet or not sys.stderr.isatty()  # a bar drawn into a file or pipe is noise
    with Progress(*columns, console=console(stderr=True), transient=True, disable=quiet) as bar:
        task = bar.add_task(title, total=None)

        def update(p: TransferProgress) -> None:
            label = f"{p.phase.value} {p.objects}/{p.objects_total} objects"
            bar.update(task, description=label, completed=p.bytes, total=p.bytes_total or None)

        yield update


_Decorator = Callable[[Callable[..., None]], Callable[..., None]]


def _transfer_options(command: Callable[..., None]) -> Callable[..., None]:
    """The arguments and options push and pull share."""
    decorators: list[_Decorator] = [
        click.argument("targets", nargs=-1, metavar="[RUN|NAME@VERSION]..."),
        click.option(
            "--all",
            "everything",
            is_flag=True,
            help="Every ref (runs, dataset versions, baselines, noise profiles).",
        ),
        click.option("--remote", "-r", metavar="NAME", help=_REMOTE_HELP),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Concurrent transfers.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
        click.pass_obj,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


@click.command("push")
@_transfer_options
def push_cmd(
    ctx: Ctx, targets: tuple[str, ...], everything: bool, remote: str | None, jobs: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Send runs and dataset versions, with every object they name, to a remote.

    \b
    Examples:
      keel push 06g0q                 one run: manifest, code diff, inputs, outputs, logs
      keel push train@latest iris@3f2a9c01b7d4
      keel push --all --remote backup

    Only objects the remote lacks are sent, and nothing there is ever replaced. An interrupted
    push is finished by running it again. Exits 1 when an object could not be sent.
    """
    from keel.ops.remote import push

    ws = ctx.workspace()
    with _progress_bar("pushing", quiet=as_json) as progress:
        report = push(ws, targets, everything=everything, remote=remote, on_progress=progress,
                      jobs=jobs)  # fmt: skip
    _show(report, verb="pushed", direction="to", as_json=as_json)


@click.command("pull")
@_transfer_options
def pull_cmd(
    ctx: Ctx, targets: tuple[str, ...], everything: bool, remote: str | None, jobs: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Fetch runs and dataset versions, with every object they name, from a remote.

    \b
    Examples:
      keel pull 06g0q                 a run by id or unique id prefix
      keel pull iris@3f2a9c01b7d4     a dataset version
      keel pull --all                 everything; pulled runs then show in `keel ls`

    Only objects this store lacks are fetched, each verified by its digest before it is stored:
    a corrupt remote object is named and refused. An interrupted pull is finished by running it
    again. Exits 1 when an object could not be fetched intact.
    """
    from keel.ops.remote import pull

    ws = ctx.workspace()
    with _progress_bar("pulling", quiet=as_json) as progress:
        report = pull(ws, targets, everything=everything, remote=remote, on_progress=progress,
                      jobs=jobs)  # fmt: skip
    _show(report, verb="pulled", direction="from", as_json=as_json)


def _show(report: TransferReport, *, verb: str, direction: str, as_json: bool) -> None:
    if as_json:
        echo_json(report.to_json())
        sys.exit(0 if report else 1)
    for digest, reason in report.failed:
        click.secho(f"FAILED {digest}: {reason}", fg="red", err=True)
    for name in report.held_back:
        click.secho(f"NOT SET {name}: an object it needs did not move", fg="red", err=True)
    for conflict in report.conflicts:
        click.secho(f"CONFLICT {conflict}", fg="yellow", err=True)
    click.echo(
        f"{verb} {_count(report.moved, 'object')} ({_size(report.moved_bytes)}) and "
        f"{_count(len(report.refs), 'ref')} {direction} {report.remote.name} "
        f"({report.remote.url}); already there: {_count(report.present, 'object')}, "
        f"{_count(report.refs_unchanged, 'ref')}"
    )
    sys.exit(0 if report else 1)


@click.command("gc")
@click.option("--yes", is_flag=True, help="Delete (without it, only show what would go).")
@click.option("--grace", default="24h", show_default=True, metavar="DURATION",
              help="Keep unreferenced objects younger than this (e.g. 30m, 24h, 7d).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def gc_cmd(ctx: Ctx, yes: bool, grace: str, as_json: bool) -> None:
    """Delete stored objects no run, dataset, lock, baseline or running job references.

    \b
    Examples:
      keel gc                         what would go, and how much space it frees
      keel gc --yes --grace 7d        delete what is unreferenced and older than a week

    A dry run by default. It fails closed: if any ref, record or listing cannot be read,
    nothing is deleted and it exits non-zero with the reason.
    """
    from keel.ops.gc import gc, parse_grace

    ws = ctx.workspace()
    report = gc(ws, grace=parse_grace(grace), delete=yes)
    if as_json:
        echo_json(_gc_json(report))
        return
    for digest, size in report.doomed[:_LISTED]:
        click.echo(f"{'deleted' if yes else 'would delete'} {digest}  {_size(size)}")
    if len(report.doomed) > _LISTED:
        click.echo(f"... and {len(report.doomed) - _LISTED} more (--json lists them all)")
    doomed = f"{_count(len(report.doomed), 'unreferenced object')} ({_size(report.doomed_bytes)})"
    kept = (f"kept {_count(report.referenced, 'referenced object')} and {report.young} younger "
            f"than {grace} ({_size(report.young_bytes)})")  # fmt: skip
    if yes:
        click.echo(f"deleted {doomed} from {ws.store_root}; {kept}")
    elif report.doomed:
        click.echo(f"would delete {doomed} from {ws.store_root}; {kept}; "
                   "run `keel gc --yes` to delete them")  # fmt: skip
    else:
        click.echo(f"nothing to delete in {ws.store_root}; {kept}")


def _gc_json(report: GcReport) -> dict[str, object]:
    return {
        "deleted": report.deleted,
        "objects": [{"digest": str(d), "size": s} for d, s in report.doomed],
        "bytes": report.doomed_bytes,
        "referenced": report.referenced,
        "young": report.young,
        "young_bytes": report.young_bytes,
        "grace_s": report.grace.total_seconds(),
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    from rich.filesize import decimal

    return decimal(n)
