"""Stored dataset versions: their records and refs, their files, and materialising them.

A version record is canonical JSON in the object store, and the ref ``datasets/<name>/<version>``
points at it. The ref is written last and only once (:func:`publish_version`: the first writer
wins), so a version is either complete or absent, and two writers of the same content agree.

Materialised files are hard links to the store's read-only objects when the filesystem allows it
and the user cannot write through a read-only file (not root); otherwise read-only copies. The
store is never modified.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.canonical import canonical_json, loads
from keel.base.digest import Digest
from keel.errors import UserError
from keel.model.dataset import DatasetVersion, TreeEntry, tree_entries, version_ref_name

if TYPE_CHECKING:
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)

# -- records ------------------------------------------------------------------------------------


def load_version(ws: Workspace, digest: Digest) -> DatasetVersion:
    """Read the version record stored under ``digest`` (verified on read)."""
    return DatasetVersion.from_json(loads(ws.objects.get_bytes(digest)))


def version_id(digest: str) -> str:
    """The version id of content with ``digest``: the first 12 hex digits of its digest."""
    return Digest.parse(digest).hexdigest[:12]


def version_files(ws: Workspace, version: DatasetVersion) -> dict[str, TreeEntry]:
    """The files of a version by POSIX path (a file version has one, named after its source)."""
    if version.kind == "file":
        name = Path(version.source_path or version.name).name
        return {name: TreeEntry(version.digest, version.size)}
    digest = Digest.parse(version.digest)
    return tree_entries(loads(ws.objects.get_bytes(digest)), digest=version.digest)


def existing_version(ws: Workspace, name: str, version: str, digest: str) -> DatasetVersion | None:
    """The stored version ``name@version`` if any; a different digest is an id collision.

    Raises:
        keel.errors.UserError: ``name@version`` names content other than ``digest``.
    """
    found = ws.objects.get_ref(version_ref_name(name, version))
    if found is None:
        return None
    existing = load_version(ws, found)
    if existing.digest != digest:
        raise UserError(f"{name}@{version} already names other content ({existing.digest}); "
                        "this cannot happen by chance: run `keel verify`")  # fmt: skip
    return existing


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOutcome:
    """The version the content is; ``created`` is False when it already existed."""

    version: DatasetVersion
    created: bool


def publish_version(ws: Workspace, record: DatasetVersion) -> AddOutcome:
    """Store the record, then point its ref at it (create-only: the first writer wins)."""
    digest = ws.objects.put_bytes(canonical_json(record.to_json()))
    if ws.objects.set_ref(record.ref_name, digest, create_only=True):
        return AddOutcome(version=record, created=True)
    existing = existing_version(ws, record.name, record.version, record.digest)
    assert existing is not None  # the ref exists: set_ref refused to replace it
    return AddOutcome(version=existing, created=False)


def source_text(ws: Workspace, path: Path) -> str:
    """``path`` relative to the project (POSIX) when inside it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(ws.root).as_posix()
    except ValueError:
        return str(absolute)


# -- materialising ------------------------------------------------------------------------------


def materialise(ws: Workspace, version: DatasetVersion, dest: Path, *, writable: bool) -> None:
    """Build ``version`` in a temporary sibling of ``dest``, then swap it into place.

    Raises:
        keel.errors.UserError: ``dest`` holds (or lies in) the project folder or the store, or
            cannot be written; an object of the version is missing from the store.
    """
    resolved, store = dest.resolve(), ws.store_root.resolve()
    if ws.root.resolve().is_relative_to(resolved):
        raise UserError(f"refusing to write {dest}: it holds the project")
    if store.is_relative_to(resolved) or resolved.is_relative_to(store):
        raise UserError(f"refusing to write {dest}: it is keel's store")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.keel-", dir=dest.parent))
    try:
        staged = work / "new"
        placer = _Placer(ws, version, writable=writable)
        if version.kind == "file":
            placer.place(version.digest, staged)
        else:
            staged.mkdir()
            for rel, entry in sorted(version_files(ws, version).items()):
                target = staged.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                placer.place(entry.digest, target)
        _swap(staged, dest, work / "old")
    except OSError as exc:
        raise UserError(f"cannot write {dest}: {exc.strerror or exc}; check that its folder "
                        "is writable") from exc  # fmt: skip
    finally:
        _remove_tree(work)


def _swap(staged: Path, dest: Path, old: Path) -> None:
    """Rename ``staged`` to ``dest``; an existing ``dest`` goes to ``old`` (back on failure)."""
    moved = os.path.lexists(dest)
    if moved:
        os.rename(dest, old)
    try:
        os.rename(staged, dest)
    except OSError:
        if moved:
            os.rename(old, dest)
        raise


class _Placer:
    """Puts store objects at paths: a hard link when safe, else a copy (read-only unless asked)."""

    def __init__(self, ws: Workspace, version: DatasetVersion, *, writable: bool) -> None:
        self._ws = ws
        self._version = version
        self._writable = writable
        self._link = not writable

    def place(self, digest: str, target: Path) -> None:
        source = self._ws.objects.object_path(Digest.parse(digest))
        if not os.path.exists(source):
            raise UserError(f"{self._version.ref}: object {digest} is not in the store; "
                            "`keel pull` it from a remote, or run `keel verify`")  # fmt: skip
        if self._link and self._try_link(source, target):
            return
        shutil.copyfile(source, target)
        os.chmod(target, 0o644 if self._writable else 0o444)

    def _try_link(self, source: Path, target: Path) -> bool:
        try:
            os.link(source, target)
        except OSError:  # another filesystem, or links not allowed: copy from now on
            self._link = False
            return False
        if os.access(target, os.W_OK):  # the user (root) could write through it: never link
            os.unlink(target)
            self._link = False
            return False
        return True


def _remove_tree(path: Path) -> None:
    def retry(func: Callable[..., object], name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        os.chmod(parent, stat.S_IRWXU)
        func(name)

    if path.exists():
        try:
            if sys.version_info >= (3, 12):
                shutil.rmtree(path, onexc=retry)
            else:
                shutil.rmtree(path, onerror=retry)
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)
