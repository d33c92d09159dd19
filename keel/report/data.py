"""Render datasets: the list of datasets or of one dataset's versions, a version in full, a
working copy's status, and a lineage graph."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from keel.model.dataset import DatasetStatus, DatasetVersion, LineageGraph, TreeEntry

MAX_FILES_SHOWN = 20
MAX_CHANGES_SHOWN = 50


def render_datasets(latest: Sequence[tuple[DatasetVersion, int]]) -> RenderableType:
    """One row per dataset: its latest version and how many versions it has."""
    if not latest:
        return Text("no datasets yet: add one with `keel data add NAME PATH`", style="dim")
    table = _table("name", "latest", "versions", "kind", "files", "size", "created", "who", "why")
    for version, count in latest:
        table.add_row(version.name, version.version, str(count), version.kind,
                      str(version.files), size_text(version.size), version.created_at[:19],
                      version.who, _origin(version))  # fmt: skip
    return table


def render_versions(versions: Sequence[DatasetVersion]) -> RenderableType:
    """One row per version of a dataset, newest (the latest) first."""
    table = _table("", "version", "kind", "files", "size", "created", "who", "why")
    for n, version in enumerate(versions):
        table.add_row("*" if n == 0 else "", version.version, version.kind, str(version.files),
                      size_text(version.size), version.created_at[:19], version.who,
                      _origin(version))  # fmt: skip
    return table


def render_version(
    version: DatasetVersion, *, record: str, files: Mapping[str, TreeEntry], latest: bool
) -> RenderableType:
    """A version's record, its lineage and its first files."""
    head = Text()
    head.append(version.ref, style="bold")
    head.append("  (latest)" if latest else "", style="green")
    rows = _table("", "")
    rows.show_header = False
    for key, value in (
        ("digest", version.digest), ("record", record), ("kind", version.kind),
        ("files", str(version.files)), ("size", size_text(version.size)),
        ("created", f"{version.created_at} by {version.who}"), ("why", version.why or ""),
        ("source", version.source_path or ""), ("produced by", _produced_by(version)),
        ("contract", version.contract or ""), ("profile", version.profile or ""),
        ("breaking", version.breaking or ""),
    ):  # fmt: skip
        if value:
            rows.add_row(Text(key, style="dim"), value)
    listing = _table("file", "size", "digest")
    for rel in sorted(files)[:MAX_FILES_SHOWN]:
        listing.add_row(rel, size_text(files[rel].size), files[rel].digest[:19])
    more = len(files) - MAX_FILES_SHOWN
    tail = [Text(f"... and {more} more files (--json lists them all)", style="dim")] if more > 0 \
        else []  # fmt: skip
    return Group(head, rows, listing, *tail)


def render_status(status: DatasetStatus) -> RenderableType:
    """One line saying whether the copy is the version, then what changed."""
    which = status.expected.ref + (" (latest)" if status.latest else "")
    line = Text()
    if status.state == "unchanged":
        line.append("unchanged ", style="green")
        line.append(f"{status.path} is {which}")
    elif status.state == "missing":
        line.append("missing   ", style="bold red")
        line.append(f"{status.path} does not exist; `keel data checkout {status.expected.ref} "
                    f"{status.path}` puts it there")  # fmt: skip
    else:
        line.append("changed   ", style="bold red")
        line.append(f"{status.path} differs from {which}")
        if status.matches:
            line.append(f"; it is {status.expected.name}@{status.matches}", style="yellow")
    parts: list[RenderableType] = [line]
    for mark, style, paths in (("M", "yellow", status.changes.changed),
                               ("A", "green", status.changes.added),
                               ("D", "red", status.changes.removed)):  # fmt: skip
        for path in paths[:MAX_CHANGES_SHOWN]:
            parts.append(Text.assemble(("  " + mark + " ", style), path))
        if len(paths) > MAX_CHANGES_SHOWN:
            parts.append(Text(f"    ... and {len(paths) - MAX_CHANGES_SHOWN} more", style="dim"))
    if status.reads:
        parts.append(Text(f"({status.reads} files read)", style="dim"))
    return Group(*parts)


def render_lineage(graph: LineageGraph) -> RenderableType:
    """The root, then what it came from (upstream) and what came from it (downstream)."""
    up = Tree(Text("upstream (came from)", style="bold"))
    _branch(up, graph, graph.root, graph.parents, {graph.root}, "←")
    down = Tree(Text("downstream (came from it)", style="bold"))
    _branch(down, graph, graph.root, graph.children, {graph.root}, "→")
    parts: list[RenderableType] = [_label(graph, graph.root)]
    parts.append(up if graph.upstream else Text("upstream: nothing recorded", style="dim"))
    parts.append(down if graph.downstream else Text("downstream: nothing yet", style="dim"))
    return Group(*parts)


def _branch(
    tree: Tree,
    graph: LineageGraph,
    node: str,
    links: Callable[[str], list[str]],
    seen: set[str],
    arrow: str,
) -> None:
    for nxt in links(node):
        if nxt in seen:
            continue
        child = tree.add(Text(f"{arrow} ").append_text(_label(graph, nxt)))
        _branch(child, graph, nxt, links, {*seen, nxt}, arrow)


def _label(graph: LineageGraph, node_id: str) -> Text:
    node = graph.nodes[node_id]
    attrs = node.attrs
    text = Text()
    if node.type == "run":
        text.append(f"run {node.label}", style="bold cyan")
        detail = "not in this store" if attrs.get("missing") else \
            f"{attrs.get('experiment')}, {attrs.get('status')}, {str(attrs.get('created_at'))[:19]}"
    else:
        text.append(node.label, style="bold")
        detail = "not in this store" if attrs.get("missing") else \
            f"dataset, {attrs.get('kind')}, {str(attrs.get('created_at'))[:19]}"  # fmt: skip
    return text.append(f"  ({detail})", style="dim")


def _produced_by(version: DatasetVersion) -> str:
    if version.lineage.run is None:
        return ""
    inputs = ", ".join(version.lineage.inputs) or "no dataset inputs"
    return f"run {version.lineage.run} (from {inputs})"


def _origin(version: DatasetVersion) -> str:
    if version.lineage.run is not None:
        return f"run {version.lineage.run}"
    return version.why or ""


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def size_text(n: int) -> str:
    """``n`` bytes for people: ``812 B``, ``1.5 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
