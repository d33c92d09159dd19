"""`keel data add/ls/show/checkout/status` and `keel lineage`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from keel.cli.cmd_lock import exit_2_on_error
from keel.cli.context import Ctx, console, echo_json


@click.group("data")
def data_group() -> None:
    """Version files and folders as immutable, content-addressed datasets.

    A version is a snapshot of a file or folder, named NAME@VERSION, where VERSION is the
    first 12 hex digits of its content digest: adding the same content again finds the same
    version. NAME alone means the latest (newest) version. Experiments read datasets with
    `inputs: [{dataset: NAME}]` and write them with `outputs: [{path: P, dataset: NAME}]`.

    \b
    Examples:
      keel data add iris data/iris --why "UCI iris, cleaned"
      keel data ls
      keel data show iris
      keel data status iris
      keel data checkout iris@3f2a9c1b0d4e /tmp/iris-old
      keel lineage features@latest
    """


@data_group.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--contract", "contract", type=click.Path(path_type=Path), metavar="FILE",
              help="Data contract the version must satisfy (later versions inherit it).")
@click.option("--why", help="Why this version exists: recorded with it.")
@click.option("--breaking", metavar="REASON",
              help="Accept a breaking schema change, recording why.")
@click.option("--json", "as_json", is_flag=True, help="The version record as JSON.")
@click.pass_obj
def add_cmd(ctx: Ctx, name: str, path: Path, contract: Path | None, why: str | None,
            breaking: str | None, as_json: bool) -> None:  # fmt: skip
    """Snapshot the file or folder PATH as a new version of dataset NAME.

    Files are streamed into the store; a folder's version is the digest of its tree of file
    digests (symlinks and empty folders are not part of it). Adding unchanged content again
    is a no-op that prints the version it already is.

    \b
    Examples:
      keel data add iris data/iris.csv
      keel data add images ./images --why "re-labelled batch 7"
      keel data add iris data/iris.csv --contract contracts/iris.yaml --json
    """
    from keel.ops.data import add_dataset

    outcome = add_dataset(ctx.workspace(), name=name, path=path, contract_file=contract,
                          why=why, breaking=breaking, on_progress=_progress())  # fmt: skip
    version = outcome.version
    if as_json:
        echo_json({"created": outcome.created, "version": version.to_json()})
        return
    from keel.report.data import size_text

    if outcome.created:
        click.echo(f"added {version.ref}  ({version.kind}, {_files(version.files)}, "
                   f"{size_text(version.size)})")  # fmt: skip
    else:
        click.echo(f"unchanged: {path} is already {version.ref}; nothing stored")


def _progress() -> Callable[[int, int], None]:
    """A progress callback that draws a bar on a terminal (nothing when piped)."""
    if not sys.stderr.isatty():
        return lambda done, total: None
    from rich.progress import Progress

    bar = Progress(console=console(stderr=True), transient=True)
    task = bar.add_task("storing", total=None)

    def update(done: int, total: int) -> None:
        if done == 1:
            bar.start()
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    return update


@data_group.command("ls")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Records as JSON (see --help).")
@click.pass_obj
def ls_cmd(ctx: Ctx, name: str | None, as_json: bool) -> None:
    """List datasets with their latest version, or NAME's versions (newest first).

    \b
    JSON shapes:
      keel data ls --json       [{"name", "versions": N, "latest": RECORD}, ...]
      keel data ls NAME --json  [RECORD, ...]   newest first

    \b
    Examples:
      keel data ls
      keel data ls iris --json
    """
    from keel.ops.data import dataset_names, dataset_versions
    from keel.report.data import render_datasets, render_versions

    ws = ctx.workspace()
    if name is not None:
        versions = dataset_versions(ws, name)
        if not versions:
            from keel.ops.data import get_version

            get_version(ws, name)  # raises, naming the closest datasets
        if as_json:
            echo_json([v.to_json() for v in versions])
        else:
            console().print(render_versions(versions))
        return
    latest = []
    for each in dataset_names(ws):
        versions = dataset_versions(ws, each)
        latest.append((versions[0], len(versions)))
    if as_json:
        echo_json([{"name": v.name, "versions": n, "latest": v.to_json()} for v, n in latest])
    else:
        console().print(render_datasets(latest))


@data_group.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option("--json", "as_json", is_flag=True,
              help='{"record": RECORD, "digest": record digest, "latest": bool, "files": [...]}.')
@click.pass_obj
def show_cmd(ctx: Ctx, ref: str, as_json: bool) -> None:
    """Show one version: its record, what produced it, and its files.

    \b
    Examples:
      keel data show iris
      keel data show iris@3f2a9c1b0d4e --json
    """
    from keel.ops.data import dataset_versions, get_version
    from keel.ops.datastore import version_files
    from keel.report.data import render_version

    ws = ctx.workspace()
    version = get_version(ws, ref)
    record = str(ws.objects.get_ref(version.ref_name))
    latest = dataset_versions(ws, version.name)[0].version == version.version
    files = version_files(ws, version)
    if as_json:
        echo_json({"record": version.to_json(), "digest": record, "latest": latest,
                   "files": [{"path": p, "digest": e.digest, "size": e.size}
                             for p, e in sorted(files.items())]})  # fmt: skip
        return
    console().print(render_version(version, record=record, files=files, latest=latest))


@data_group.command("checkout")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.option("--copy", "copy", is_flag=True,
              help="Independent, writable copies instead of read-only links to the store.")
@click.pass_obj
def checkout_cmd(ctx: Ctx, ref: str, path: Path, force: bool, copy: bool) -> None:
    """Materialise a version at PATH (built beside it, then renamed into place).

    Files are read-only hard links into the store where the filesystem allows it, read-only
    copies otherwise; the store itself is never changed. An existing PATH is refused unless
    --force is given.

    \b
    Examples:
      keel data checkout iris data/iris
      keel data checkout iris@3f2a9c1b0d4e data/iris --force
      keel data checkout images@latest /scratch/images --copy
    """
    from keel.ops.data import checkout_dataset

    version = checkout_dataset(ctx.workspace(), ref, path, force=force, copy=copy)
    click.echo(f"{version.ref} is at {path} ({_files(version.files)})")


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


@data_group.command("status")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--rehash", is_flag=True, help="Read every file again instead of trusting stats.")
@click.option("--json", "as_json", is_flag=True,
              help='{"name", "version", "latest", "path", "state", "digest", "matches", '
                   '"changed", "added", "removed", "reads"}.')  # fmt: skip
@click.pass_obj
def status_cmd(ctx: Ctx, ref: str, path: Path | None, rehash: bool, as_json: bool) -> None:
    """Is the working copy at PATH still the latest version (or NAME@VERSION)?

    PATH defaults to where the version was added from. Unchanged files cost one stat each:
    their digests are cached by size, mtime, inode and ctime (see docs/data.md for the
    limits); --rehash reads every file.

    Exit codes: 0 the copy is that version, 1 it differs or is missing, 2 an error.

    \b
    Examples:
      keel data status iris
      keel data status iris@3f2a9c1b0d4e data/iris --json
      keel data status images /scratch/images --rehash
    """
    from keel.ops.data import dataset_status
    from keel.report.data import render_status

    with exit_2_on_error():
        status = dataset_status(ctx.workspace(), ref, path, rehash=rehash)
    if as_json:
        echo_json(status.to_json())
    else:
        console().print(render_status(status))
    sys.exit(0 if status.clean else 1)


@click.command("lineage")
@click.argument("ref", metavar="RUN|NAME@VERSION")
@click.option("--json", "as_json", is_flag=True,
              help='{"root", "nodes": [{"id", "type", "label", ...}], "edges": '
                   '[{"source", "target", "relation"}], "upstream", "downstream"}.')  # fmt: skip
@click.pass_obj
def lineage_cmd(ctx: Ctx, ref: str, as_json: bool) -> None:
    """Walk the lineage of a run or a dataset version, both ways.

    Upstream: a version's producing run, that run's input datasets, their producing runs...
    Downstream: the runs that read a version, the versions they produced... A run shows the
    datasets it consumed (upstream) and produced (downstream). Node ids are run:ID and
    dataset:NAME@VERSION; edges point along the data flow (relation input or output).

    \b
    Examples:
      keel lineage features@3f2a9c1b0d4e
      keel lineage iris@latest --json
      keel lineage train@latest
    """
    from keel.ops.lineage import lineage_graph
    from keel.report.data import render_lineage

    graph = lineage_graph(ctx.workspace(), ref)
    if as_json:
        echo_json(graph.to_json())
    else:
        console().print(render_lineage(graph))


def _mount() -> None:
    """`keel data diff` and `keel data check` live with the contract and drift code."""
    from keel.cli.cmd_datadiff import data_check_cmd, data_diff_cmd

    data_group.add_command(data_diff_cmd, "diff")
    data_group.add_command(data_check_cmd, "check")


_mount()
