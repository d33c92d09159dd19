"""The object store in a local folder: fanned-out object files, ref files, durable atomic writes.

Layout under ``root``::

    objects/blake3/ab/cdef...   one read-only file per object, fanned out by its first 2 hex digits
    refs/runs/<id>              a small text file holding ``blake3:<hex>``
    tmp/                        files being written; renamed into place once complete and synced

Every write goes temp file -> fsync -> rename -> fsync of the folder, so a crash leaves either
the old state or the new one. Concurrent writers of one object each write their own temp file
and rename it over the same name; the content is identical, so any winner is right.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from keel.base.atomic import atomic_writer, fsync_dir
from keel.base.digest import ALGORITHM, Digest, hash_bytes, hash_stream
from keel.errors import CorruptObject, KeelError, StoreUnavailable, UserError
from keel.store.objects.base import (
    check_digest,
    check_ref_name,
    corrupt,
    is_ref_name,
    not_found,
    ref_clash,
    ref_folder,
)
from keel.store.objects.files import copy_hashing, exists, sync, unavailable, unreadable

OBJECT_MODE = 0o444  # objects are immutable: make an accidental edit fail loudly
_FAN = re.compile(r"^[0-9a-f]{2}$")
_REST = re.compile(r"^[0-9a-f]{62}$")
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class LocalObjectStore:
    """An ObjectStore in a local folder.

    Args:
        root: the store folder (``.keel`` in a project by default).
        create: when True (the default) the folder is created by the first write and reads of a
            missing folder see an empty store; when False a missing folder raises
            :class:`~keel.errors.StoreUnavailable` (for stores that must already exist, such
            as a shared mount).
    """

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = Path(root).absolute()
        self._create = create
        self._objects = self.root / "objects" / ALGORITHM
        self._refs = self.root / "refs"
        self._tmp = self.root / "tmp"

    @property
    def url(self) -> str:
        """``file://`` URL of the store folder."""
        return self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # -- objects ----------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Digest:
        """Store ``data``; a digest already stored is not written again."""
        digest = hash_bytes(data)
        with self._os_errors(self._objects, "write to"):
            if exists(self.object_path(digest)):
                return digest

        def write(out: BinaryIO) -> Digest:
            out.write(data)
            return digest

        return self._store(write)

    def put_file(self, path: Path) -> Digest:
        """Store a file's content, hashing while copying to a temp file (constant memory)."""
        try:
            src = open(path, "rb", buffering=0)
        except OSError as exc:
            raise unreadable(path, exc) from exc
        with src:
            return self._store(lambda out: copy_hashing(src, out, lambda e: unreadable(path, e)))

    def has(self, digest: Digest) -> bool:
        """True when the object file exists."""
        path = self.object_path(digest)
        with self._os_errors(path, "read"):
            if exists(path):
                return True
        self._check_root()
        return False

    def get_bytes(self, digest: Digest) -> bytes:
        """The object's bytes, re-hashed before they are returned."""
        path = self.object_path(digest)
        with self._reading(digest, path):
            data = path.read_bytes()
        if hash_bytes(data) != digest:
            raise corrupt(digest, str(path))
        return data

    def copy_to(self, digest: Digest, dest: Path) -> None:
        """Stream the object into ``dest`` through a temp file; verify before the rename."""
        path = self.object_path(digest)
        with self._reading(digest, path):
            src = open(path, "rb", buffering=0)
        with src:
            try:
                with atomic_writer(Path(dest)) as out:
                    got = copy_hashing(src, out, lambda e: self._unavailable(e, path, "read"))
                    if got != digest:
                        raise corrupt(digest, str(path))
            except OSError as exc:
                raise UserError(
                    f"cannot write {dest}: {exc.strerror or exc}; check that its folder is writable"
                ) from exc

    def size(self, digest: Digest) -> int:
        """The object's size in bytes."""
        path = self.object_path(digest)
        with self._reading(digest, path):
            return path.stat().st_size

    def iter_digests(self) -> Iterator[Digest]:
        """Every object file with a well-formed name, in digest order."""
        with self._os_errors(self._objects, "list"):
            if not self._objects.is_dir():
                self._check_root()
                return
            for fan in sorted(os.listdir(self._objects)):
                if _FAN.match(fan):
                    for rest in sorted(os.listdir(self._objects / fan)):
                        if _REST.match(rest):
                            yield Digest(ALGORITHM, fan + rest)

    def verify(self, digest: Digest) -> bool:
        """Re-hash the whole object file (streamed)."""
        path = self.object_path(digest)
        with self._reading(digest, path), open(path, "rb", buffering=0) as fh:
            got, _ = hash_stream(fh)
        return got == digest

    def object_path(self, digest: Digest) -> Path:
        """Where the object with ``digest`` is (or would be) stored."""
        hexdigest = check_digest(digest).hexdigest
        return self._objects / hexdigest[:2] / hexdigest[2:]

    # -- refs -------------------------------------------------------------------------------

    def set_ref(self, name: str, digest: Digest, *, create_only: bool = False) -> bool:
        """Write ``refs/<name>``; ``create_only`` hard-links the temp file so one writer wins."""
        target = self._refs / check_ref_name(name)
        payload = f"{check_digest(digest)}\n".encode()
        with self._os_errors(target, "write"):
            self._check_clash(name, target)
            self._ensure_dir(target.parent)
            with self._temp() as (out, tmp):
                out.write(payload)
                sync(out)
                if create_only:
                    try:
                        os.link(tmp, target)  # atomic create-if-absent, also across hosts on NFS
                    except FileExistsError:
                        return False
                else:
                    os.replace(tmp, target)
            fsync_dir(target.parent)
        return True

    def get_ref(self, name: str) -> Digest | None:
        """The digest in ``refs/<name>``, or None."""
        path = self._refs / check_ref_name(name)
        try:
            text = path.read_bytes().decode("ascii", "replace").strip()
        except _ABSENT:
            self._check_root()
            return None
        except OSError as exc:
            raise self._unavailable(exc, path, "read") from exc
        try:
            return Digest.parse(text)
        except UserError as exc:
            raise CorruptObject(
                f"ref {name!r} at {path} does not hold a digest; run `keel verify`"
            ) from exc

    def list_refs(self, prefix: str) -> Iterator[tuple[str, Digest]]:
        """Refs whose name starts with ``prefix``, sorted; only the prefix's folder is walked."""
        folder = ref_folder(prefix)
        base = self._refs / folder if folder else self._refs
        with self._os_errors(base, "list"):
            names = sorted(n for n in self._walk_refs(base) if n.startswith(prefix))
        for name in names:
            digest = self.get_ref(name)
            if digest is not None:  # deleted since the listing
                yield name, digest

    def delete_ref(self, name: str) -> None:
        """Remove ``refs/<name>`` if present."""
        path = self._refs / check_ref_name(name)
        with self._os_errors(path, "delete"):
            try:
                path.unlink()
            except _ABSENT:
                self._check_root()
                return
            fsync_dir(path.parent)

    # -- internals --------------------------------------------------------------------------

    def _store(self, write: Callable[[BinaryIO], Digest]) -> Digest:
        with self._os_errors(self._tmp, "write to"), self._temp() as (out, tmp):
            digest = write(out)
            target = self.object_path(digest)
            if not exists(target):  # stored already (an empty log, say): no fsync to pay for
                sync(out)
                os.chmod(tmp, OBJECT_MODE)
                self._ensure_dir(target.parent)
                os.replace(tmp, target)
                fsync_dir(target.parent)
        return digest

    @contextlib.contextmanager
    def _temp(self) -> Iterator[tuple[BinaryIO, Path]]:
        """A new file in ``tmp/``; removed on exit (after a rename there is nothing to remove)."""
        self._ensure_dir(self._tmp)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out, tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _ensure_dir(self, path: Path) -> None:
        """Create ``path`` and missing parents up to the root, syncing each new entry."""
        if path.is_dir():
            return
        if path == self.root:
            self._check_root()
            path.mkdir(parents=True, exist_ok=True)
            return
        self._ensure_dir(path.parent)
        try:
            path.mkdir()
        except FileExistsError:  # a concurrent writer made it (or a file is in the way)
            return
        fsync_dir(path.parent)

    def _walk_refs(self, base: Path) -> Iterator[str]:
        if not base.is_dir():
            self._check_root()
            return

        def fail(exc: OSError) -> None:
            raise exc

        for dirpath, _dirs, files in os.walk(base, onerror=fail):
            for file in files:
                name = Path(dirpath, file).relative_to(self._refs).as_posix()
                if is_ref_name(name):
                    yield name

    def _check_clash(self, name: str, target: Path) -> None:
        if target.is_dir():
            raise ref_clash(name, f"{name}/...")
        parent = target.parent
        while parent != self._refs:
            if parent.is_file():
                raise ref_clash(name, parent.relative_to(self._refs).as_posix())
            parent = parent.parent

    def _check_root(self) -> None:
        """Raise StoreUnavailable when the root is missing and may not be created."""
        if not self._create and not self.root.is_dir():
            raise StoreUnavailable(
                f"object store folder {self.root} does not exist: create it, or fix the store "
                "location (`store.objects` in keel.yaml or KEEL_STORE)"
            )

    def _unavailable(self, exc: OSError, path: Path, action: str) -> KeelError:
        self._check_root()
        return unavailable(exc, path=path, action=action, root=self.root)

    @contextlib.contextmanager
    def _os_errors(self, path: Path, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise self._unavailable(exc, path, action) from exc

    @contextlib.contextmanager
    def _reading(self, digest: Digest, path: Path) -> Iterator[None]:
        try:
            yield
        except _ABSENT as exc:
            self._check_root()
            raise not_found(digest, self.url) from exc
        except OSError as exc:
            raise self._unavailable(exc, path, "read") from exc
