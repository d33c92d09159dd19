"""Comparing data: two dataset versions (`keel data diff`), and changed run inputs (`keel check`).

Both compare stored profiles (:mod:`keel.ops.dataprofile`), never the data itself when it can
be helped: :func:`diff_versions` reads two versions' tree and profile objects only;
:func:`add_data_statistics` profiles an input's earlier content from the project cache or the
object store, and its current content from disk, only when no dataset version already holds
its profile. The comparisons themselves are :mod:`keel.compare.datadrift`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from keel.base.digest import Digest
from keel.compare.datadrift import (
    DataDiff,
    FileEntry,
    FilesDiff,
    compare_files,
    compare_profiles,
    compare_schema,
)
from keel.compare.drift_facets import Change, Drift, DriftKind, input_subject
from keel.errors import MissingExtra, UserError
from keel.ops.dataprofile import (
    load_profile,
    profile_path,
    profile_stored,
    stored_contract,
    version_profile,
)
from keel.ops.tables import EXTRA_HINT

if TYPE_CHECKING:
    from keel.model.dataset import DatasetVersion
    from keel.ops.workspace import Workspace
    from keel.spec.lockfile import InputState


def diff_versions(ws: Workspace, old: DatasetVersion, new: DatasetVersion) -> DataDiff:
    """What changed from ``old`` to ``new``: files (from their tree objects), then for tables
    the schema, row counts and per-column drift, from the stored profiles alone.

    Raises:
        keel.errors.ObjectNotFound: a tree, profile or contract object is not in the store.
        keel.errors.MissingExtra: numpy (``keel[data]``) is not installed.
    """
    before = None if old.profile is None else load_profile(ws, str(old.profile))
    after = None if new.profile is None else load_profile(ws, str(new.profile))
    files = compare_files(_files(ws, old), _files(ws, new))
    notes = tuple(
        f"{v.ref} has no profile: it holds no CSV or Parquet table"
        for v, p in ((old, before), (new, after))
        if p is None
    )
    diff = DataDiff(name=new.name, old=old.ref, new=new.ref, files=files, notes=notes)
    if before is None or after is None:
        return diff
    not_nullable = (
        frozenset() if new.contract is None else stored_contract(ws, new.contract).not_nullable
    )
    tables, added, removed = compare_profiles(before, after, not_nullable=not_nullable)
    schema = compare_schema(before, after, not_nullable=not_nullable)
    return replace(diff, schema=schema, tables=tables, added_tables=added, removed_tables=removed)


def _files(ws: Workspace, version: DatasetVersion) -> list[FileEntry]:
    """A version's files: its tree's entries, or the one file it is."""
    from keel.ops.datastore import version_files

    return [
        FileEntry(path=path, digest=entry.digest, size=entry.size)
        for path, entry in sorted(version_files(ws, version).items())
    ]


# -- `keel check` ----------------------------------------------------------------------------


def add_data_statistics(
    ws: Workspace,
    items: tuple[Drift, ...],
    *,
    old_inputs: tuple[InputState, ...],
    new_inputs: tuple[InputState, ...],
    root: Path,
) -> tuple[tuple[Drift, ...], tuple[str, ...]]:
    """Attach drift statistics to each changed input whose earlier content can be profiled.

    Each content is a dataset version's (its stored profile), or is profiled: the earlier one
    from the project cache (content profiled before) or the object store, the current one from
    disk. Inputs that are not tables, or whose earlier content is unknown, are left as they are.

    Returns:
        The items (with ``data`` set where computed) and notes on statistics that failed.
    """
    before = {input_subject(i.path): i for i in old_inputs}
    after = {input_subject(i.path): i for i in new_inputs}
    out: list[Drift] = []
    notes: list[str] = []
    for item in items:
        old, new = before.get(item.subject), after.get(item.subject)
        data = None
        if item.kind is DriftKind.DATA and item.change is Change.CHANGED and old and new:
            try:
                data = _input_drift(ws, old, new, root=root)
            except MissingExtra:
                notes.append(f"data drift statistics need pandas and numpy: {EXTRA_HINT}")
            except UserError as exc:
                notes.append(f"{item.subject}: no drift statistics ({exc})")
        out.append(item if data is None else replace(item, data=data))
    return tuple(out), tuple(dict.fromkeys(notes))


def _input_drift(ws: Workspace, old: InputState, new: InputState, *, root: Path) -> DataDiff | None:
    """Statistics of one changed input; None when either content cannot be profiled."""
    if old.digest is None or new.digest is None or new.kind not in ("file", "dir"):
        return None
    name = PurePosixPath(old.path).name
    before = version_profile(ws, old.digest) or profile_stored(
        ws, digest=old.digest, kind=old.kind, name=name
    )
    if before is None:
        return None
    after = version_profile(ws, new.digest)
    if after is None:
        text = {c for t in before.tables for c, dtype in t.schema.items() if dtype == "str"}
        single = before.tables[0].format if new.kind == "file" and len(before.tables) == 1 else None
        after = profile_path(ws, root / new.path, text_columns=text, fmt=single)
    if after is None:
        return None
    tables, added, removed = compare_profiles(before, after)
    return DataDiff(
        name=new.path,
        old=Digest.parse(old.digest).short,
        new=Digest.parse(new.digest).short,
        files=FilesDiff(),
        schema=compare_schema(before, after),
        tables=tables,
        added_tables=added,
        removed_tables=removed,
    )
