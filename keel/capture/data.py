"""Data facet: content digests of input and output files and folders, optionally stored.

A folder's digest is the digest of its tree object, the canonical JSON
``{"entries": [{"path", "digest", "size"}, ...]}`` sorted by POSIX path. Only regular files
count: symlinks are skipped and empty folders leave no trace. Files are streamed, never loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from keel.base.canonical import JsonValue, canonical_json, loads
from keel.base.digest import Digest, hash_bytes, hash_file, iter_tree_files
from keel.capture.ports import BlobSink
from keel.errors import CorruptObject, UserError

_HashFile = Callable[[Path], tuple[Digest, int]]


def hash_path(path: Path) -> dict[str, JsonValue]:
    """Digest of a file or folder, without storing it.

    Returns ``{"kind": "file", "digest", "size"}``, ``{"kind": "dir", "digest", "size",
    "files"}`` (size summed over files) or ``{"kind": "missing"}``. A symlink given as ``path``
    is followed; symlinks inside a folder are not.
    """
    return _record(path, hash_file, None)


def store_path(path: Path, sink: BlobSink) -> dict[str, JsonValue]:
    """Like :func:`hash_path`, but every file and the folder's tree object go into ``sink``.

    The record gains ``"stored": True`` (except for a missing path); :func:`restore_path`
    reads it back.
    """

    def put(file: Path) -> tuple[Digest, int]:
        size = os.stat(file).st_size
        return sink.put_file(file), size

    return _record(path, put, sink)


def _record(path: Path, digest_of: _HashFile, sink: BlobSink | None) -> dict[str, JsonValue]:
    stored: dict[str, JsonValue] = {"stored": True} if sink is not None else {}
    if path.is_file():
        digest, size = digest_of(path)
        return {"kind": "file", "digest": str(digest), "size": size, **stored}
    if not path.is_dir():
        return {"kind": "missing"}
    entries: list[JsonValue] = []
    total = 0
    for file in iter_tree_files(path):
        digest, size = digest_of(file)
        entries.append(
            {"path": file.relative_to(path).as_posix(), "digest": str(digest), "size": size}
        )
        total += size
    entries.sort(key=lambda e: str(e["path"]) if isinstance(e, dict) else "")
    tree = canonical_json({"entries": entries})
    tree_digest = sink.put_bytes(tree) if sink is not None else hash_bytes(tree)
    return {
        "kind": "dir",
        "digest": str(tree_digest),
        "size": total,
        "files": len(entries),
        **stored,
    }


def restore_path(
    record: Mapping[str, JsonValue],
    dest: Path,
    fetch: Callable[[str], bytes],
    copy: Callable[[str, Path], None],
) -> None:
    """Materialise a stored file or folder at ``dest``.

    Args:
        record: a :func:`store_path` record.
        dest: the file or folder to create.
        fetch: returns an object's bytes by digest (used for the small tree object).
        copy: writes the object with a digest to a path (streamed by the store).

    Raises:
        keel.errors.UserError: the record was only hashed, or names an unsafe path.
        keel.errors.CorruptObject: the tree object does not match its digest.
    """
    kind = record.get("kind")
    if kind == "missing":
        return
    if not record.get("stored"):
        raise UserError(f"{dest}: its content was hashed but not stored, so it cannot be "
                        "restored; declare it with store enabled to keep a copy")  # fmt: skip
    digest = str(record.get("digest"))
    if kind == "file":
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy(digest, dest)
        return
    dest.mkdir(parents=True, exist_ok=True)
    for rel, file_digest in _tree_entries(digest, fetch(digest)):
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        copy(file_digest, target)


def _tree_entries(digest: str, data: bytes) -> list[tuple[PurePosixPath, str]]:
    if str(hash_bytes(data)) != digest:
        raise CorruptObject(f"tree object {digest} does not match its content; run `keel verify`")
    tree = loads(data)
    entries = tree.get("entries") if isinstance(tree, dict) else None
    found: list[tuple[PurePosixPath, str]] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        rel = PurePosixPath(str(entry.get("path")))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise UserError(f"tree object {digest} names an unsafe path {str(rel)!r}")
        found.append((rel, str(entry.get("digest"))))
    return found
