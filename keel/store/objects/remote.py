"""An ObjectStore on an fsspec filesystem: S3 (through s3fs), a plain folder, or any fsspec URL.

The layout under the URL's path is the local store's::

    objects/blake3/ab/cdef...   one object per file, fanned out by its first two hex digits
    refs/<name>                 ``blake3:<hex>`` and a newline
    tmp/                        (folders only) files being written

Writes never replace an object that is already there, whatever its bytes:

- S3: a conditional create (``IfNoneMatch="*"``); S3 shows an object whole or not at all.
- A folder: the complete, fsynced temp file is hard-linked into place. ``link`` fails when the
  name exists (like ``O_EXCL``), so an existing file is never touched and no reader ever sees a
  partial one.
- Other backends: an existence check, then the write. A racing writer can only write the same
  bytes under the same name (the name is their digest).

Reads are verified like the local store's. Every error of the backend is translated here into
StoreUnavailable (naming the remote, its URL and what to set or check), ObjectNotFound or
MissingExtra. fsspec and s3fs are imported only in this package, on first use
(:mod:`keel.store.objects.fsspec_backend`).

Beyond the port, transfers use two listings to learn what the store holds with few requests:
:meth:`FsspecObjectStore.object_sizes` (every object, or one fan-out folder) and
:meth:`FsspecObjectStore.ref_names`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from keel.base.atomic import atomic_writer, fsync_dir
from keel.base.digest import ALGORITHM, CHUNK, Digest, Hasher, hash_bytes, hash_file
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
from keel.store.objects.files import copy_hashing, unreadable
from keel.store.objects.fsspec_backend import (
    describe,
    error_code,
    is_backend_error,
    missing_extra,
    open_filesystem,
)

SMALL = 16 << 20  # objects up to this size move in one request; larger ones are streamed
_PART = 8 << 20  # part size of a streamed S3 upload (S3 wants at least 5 MiB)
_OBJECT_MODE = 0o444
_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{62}$")
_EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class FsspecObjectStore:
    """An ObjectStore at an fsspec URL (``s3://bucket/prefix``, ``file:///path``, ``/path``).

    Args:
        url: where the store lives. A plain path must be absolute.
        name: the remote's name in keel.yaml, used in messages.
        environ: the variables to read S3 settings from (``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL``,
            ``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``/``AWS_DEFAULT_REGION``); anything unset
            there is left to the backend's own lookup (profiles, config files).
        create: when True (the default) a folder that does not exist reads as an empty store;
            when False it raises :class:`~keel.errors.StoreUnavailable`, so that a mistyped
            path does not look like an empty remote. The first write creates the folder either
            way. (A missing S3 bucket is always StoreUnavailable: keel never creates buckets.)
    """

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        environ: Mapping[str, str] | None = None,
        create: bool = True,
    ) -> None:
        self.name = name
        self._given = url
        self._create_root = create
        self._fs, root = open_filesystem(url, environ, self._what)
        self._root = root.rstrip("/")
        protocols = self._fs.protocol
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        self._kind = "s3" if "s3" in protocols else "local" if "file" in protocols else "other"
        self._objects = f"{self._root}/objects/{ALGORITHM}"
        self._refs = f"{self._root}/refs"

    @property
    def url(self) -> str:
        """The store's URL (``file://`` for a folder)."""
        if self._kind == "local":
            return Path(self._root).as_uri()
        return self._given.rstrip("/")

    def __repr__(self) -> str:
        return f"FsspecObjectStore({self.url!r})"

    # -- objects ----------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Digest:
        """Store ``data`` unless an object with its digest is already there."""
        digest = hash_bytes(data)
        self._create(self._path(digest), data)
        return digest

    def put_file(self, path: Path) -> Digest:
        """Store a file's content, hashing while copying; a file that changes meanwhile fails."""
        try:
            size = os.stat(path).st_size
            if size <= SMALL:
                return self.put_bytes(Path(path).read_bytes())
            if self._kind == "local":
                return self._put_local_file(Path(path))
            digest, _ = hash_file(path)
        except OSError as exc:
            raise unreadable(Path(path), exc) from exc
        target = self._path(digest)
        with self._translate("write", target):
            if self._fs.exists(target):  # do not send gigabytes to learn that
                return digest
        self._stream_up(Path(path), digest, target)
        return digest

    def has(self, digest: Digest) -> bool:
        """True when the object is stored (its bytes are not checked)."""
        path = self._path(digest)
        with self._translate("read", path):
            try:
                self._fs.info(path)
            except _ABSENT as exc:
                self._raise_if_unavailable(exc)
                return False
        return True

    def get_bytes(self, digest: Digest) -> bytes:
        """The object's bytes, re-hashed before they are returned."""
        path = self._path(digest)
        # NOTE: s3fs asks for the size first (a HEAD) to split large reads; one GET is enough.
        options = {"max_concurrency": 1} if self._kind == "s3" else {}
        with self._reading(digest, path):
            data: bytes = self._fs.cat_file(path, **options)
        if hash_bytes(data) != digest:
            raise corrupt(digest, self._where(path))
        return data

    def copy_to(self, digest: Digest, dest: Path) -> None:
        """Stream the object into ``dest`` through a temp file; verify before the rename."""
        path = self._path(digest)
        with self._reading(digest, path):
            src = self._fs.open(path, "rb", block_size=CHUNK)
        try:
            with src, atomic_writer(Path(dest)) as out:
                hasher = Hasher()
                while chunk := self._read(src, digest, path):
                    hasher.update(chunk)
                    out.write(chunk)
                if hasher.digest() != digest:
                    raise corrupt(digest, self._where(path))
        except OSError as exc:
            raise UserError(
                f"cannot write {dest}: {exc.strerror or exc}; check that its folder is writable"
            ) from exc

    def size(self, digest: Digest) -> int:
        """The object's size in bytes."""
        path = self._path(digest)
        with self._reading(digest, path):
            return int(self._fs.info(path)["size"])

    def iter_digests(self) -> Iterator[Digest]:
        """Every object with a well-formed name, in digest order."""
        yield from sorted(self.object_sizes())

    def verify(self, digest: Digest) -> bool:
        """Re-hash the whole object (streamed)."""
        path = self._path(digest)
        with self._reading(digest, path):
            src = self._fs.open(path, "rb", block_size=CHUNK)
        with src:
            hasher = Hasher()
            while chunk := self._read(src, digest, path):
                hasher.update(chunk)
        return hasher.digest() == digest

    def read_head(self, digest: Digest, size: int) -> bytes:
        """The first ``size`` bytes of the object (not verified: for telling records apart)."""
        path = self._path(digest)
        with self._reading(digest, path):
            head: bytes = self._fs.cat_file(path, start=0, end=size)
        return head

    def object_sizes(self, fan: str | None = None) -> dict[Digest, int]:
        """Digest -> size of every object, or of those in one fan-out folder (``"ab"``).

        One listing: on S3 a request per 1,000 objects, however the folders are fanned out.
        """
        base = self._objects if fan is None else f"{self._objects}/{fan}"
        found = self._find(base, "list")
        out: dict[Digest, int] = {}
        cut = len(self._objects) + 1
        for path, info in found.items():
            rel = path[cut:]
            size = info.get("size")
            if _NAME.match(rel):
                out[Digest(ALGORITHM, rel.replace("/", ""))] = size if isinstance(size, int) else 0
        return out

    # -- refs -------------------------------------------------------------------------------

    def set_ref(self, name: str, digest: Digest, *, create_only: bool = False) -> bool:
        """Write ``refs/<name>``; ``create_only`` is a conditional create (one writer wins)."""
        check_ref_name(name)
        payload = f"{check_digest(digest)}\n".encode()
        self._check_clash(name)
        path = f"{self._refs}/{name}"
        if create_only:
            return self._create(path, payload, mode=0o644)
        with self._translate("write", path):
            if self._kind == "local":
                self._write_local(_writer(payload, path), replace=True)
            else:
                self._fs.pipe_file(path, payload)
        return True

    def get_ref(self, name: str) -> Digest | None:
        """The digest in ``refs/<name>``, or None."""
        path = f"{self._refs}/{check_ref_name(name)}"
        with self._translate("read", path):
            try:
                raw: bytes = self._fs.cat_file(path)
            except _ABSENT as exc:
                self._raise_if_unavailable(exc)
                return None
        try:
            return Digest.parse(raw.decode("ascii", "replace").strip())
        except UserError as exc:
            raise CorruptObject(
                f"ref {name!r} at {self._where(path)} does not hold a digest; "
                "run `keel verify --remote`"
            ) from exc

    def list_refs(self, prefix: str) -> Iterator[tuple[str, Digest]]:
        """Refs whose name starts with ``prefix``, sorted (one listing, then one read each)."""
        for name in self.ref_names(prefix):
            digest = self.get_ref(name)
            if digest is not None:  # deleted since the listing
                yield name, digest

    def ref_names(self, prefix: str) -> list[str]:
        """Names of the refs that start with ``prefix``, sorted, from one listing."""
        folder = ref_folder(prefix)
        base = f"{self._refs}/{folder}" if folder else self._refs
        cut = len(self._refs) + 1
        names = (path[cut:] for path in self._find(base, "list"))
        return sorted(n for n in names if is_ref_name(n) and n.startswith(prefix))

    def delete_ref(self, name: str) -> None:
        """Remove ``refs/<name>`` if present."""
        path = f"{self._refs}/{check_ref_name(name)}"
        with self._translate("delete", path):
            try:
                self._fs.rm_file(path)
            except _ABSENT as exc:
                self._raise_if_unavailable(exc)

    # -- writing ----------------------------------------------------------------------------

    def _create(self, path: str, data: bytes, *, mode: int = _OBJECT_MODE) -> bool:
        """Write ``path`` only if nothing is there; False when something already was."""
        with self._translate("write", path):
            if self._kind == "local":
                return self._write_local(_writer(data, path), mode=mode)
            if self._kind == "other" and self._fs.exists(path):
                return False
            try:
                if self._kind == "s3":
                    self._fs.pipe_file(path, data, mode="create")
                else:
                    self._fs.pipe_file(path, data)
            except OSError as exc:
                if isinstance(exc, FileExistsError) or error_code(exc) in _EXISTS_CODES:
                    return False
                raise
        return True

    def _write_local(
        self,
        write: Callable[[BinaryIO], str],
        *,
        replace: bool = False,
        mode: int = _OBJECT_MODE,
    ) -> bool:
        """Write a temp file in ``tmp/``, sync it, then link (or rename) it to ``write``'s path.

        ``write`` fills the file and returns where it goes (known only at the end of a hashing
        copy). Without ``replace``, an existing file wins and False is returned.
        """
        tmp_dir = f"{self._root}/tmp"
        os.makedirs(tmp_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="put-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                target = write(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            parent = os.path.dirname(target)
            os.makedirs(parent, exist_ok=True)
            if replace:
                os.replace(tmp, target)
            else:
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    return False
            fsync_dir(Path(parent))
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _put_local_file(self, path: Path) -> Digest:
        src = open(path, "rb", buffering=0)
        found: list[Digest] = []

        def write(out: BinaryIO) -> str:
            found.append(copy_hashing(src, out, lambda e: unreadable(path, e)))
            return self._path(found[0])

        with src, self._translate("write", f"{self._root}/tmp"):
            self._write_local(write)
        return found[0]

    def _stream_up(self, path: Path, digest: Digest, target: str) -> None:
        """Upload a large file in parts, re-hashing it; nothing is created unless it matches."""
        mode = "xb" if self._kind == "s3" else "wb"
        with self._translate("write", target):
            out = self._fs.open(target, mode, block_size=_PART)
        try:
            hasher = Hasher()
            with open(path, "rb", buffering=0) as src:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    with self._translate("write", target):
                        out.write(chunk)
            if hasher.digest() != digest:
                raise UserError(f"{path} changed while it was being stored; store it again")
        except OSError as exc:
            _discard(out)
            raise unreadable(path, exc) from exc
        except BaseException:
            _discard(out)
            raise
        with self._translate("write", target):
            try:
                out.close()
            except FileExistsError:
                _discard(out)

    # -- reading and errors -----------------------------------------------------------------

    def _path(self, digest: Digest) -> str:
        hexdigest = check_digest(digest).hexdigest
        return f"{self._objects}/{hexdigest[:2]}/{hexdigest[2:]}"

    def _where(self, path: str) -> str:
        return f"{self._what()} ({path})"

    def _what(self) -> str:
        place = self._given.rstrip("/")
        return f"remote '{self.name}' at {place}" if self.name else f"store {place}"

    def _find(self, base: str, action: str) -> dict[str, dict[str, object]]:
        with self._translate(action, base):
            if self._kind == "local":
                self._check_root()
            try:
                found: dict[str, dict[str, object]] = self._fs.find(base, detail=True)
            except FileNotFoundError as exc:
                self._raise_if_unavailable(exc)
                return {}
        return {p: i for p, i in found.items() if p.startswith(base + "/")}

    def _read(self, src: BinaryIO, digest: Digest, path: str) -> bytes:
        with self._reading(digest, path):
            return src.read(CHUNK)

    def _check_clash(self, name: str) -> None:
        """Refuse a name that is below a ref, or above one (S3 would happily hold both)."""
        parts = name.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        below = f"{self._refs}/{name}"
        with self._translate("read", self._refs):
            for parent in parents:
                if self._is_file(f"{self._refs}/{parent}"):
                    raise ref_clash(name, parent)
            if self._has_below(below):
                raise ref_clash(name, f"{name}/...")

    def _is_file(self, path: str) -> bool:
        if self._kind == "local":
            return os.path.isfile(path)
        if self._kind == "s3":  # one HEAD; fsspec's info() would also list to find folders
            bucket, key, _ = self._fs.split_path(path)
            try:
                self._fs.call_s3("head_object", Bucket=bucket, Key=key)
            except FileNotFoundError:
                return False
            return True
        try:
            return bool(self._fs.info(path).get("type") == "file")
        except _ABSENT as exc:
            self._raise_if_unavailable(exc)
            return False

    def _has_below(self, path: str) -> bool:
        if self._kind == "local":
            return os.path.isdir(path)
        if self._kind == "s3":  # one LIST of at most one key
            bucket, key, _ = self._fs.split_path(path)
            found = self._fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key + "/", MaxKeys=1)
            return bool(found.get("KeyCount"))
        return any(p.startswith(path + "/") for p in self._fs.find(path))

    def _check_root(self) -> None:
        if self._kind == "local" and not self._create_root and not os.path.isdir(self._root):
            raise StoreUnavailable(
                f"{self._what()}: the folder {self._root} does not exist; create it, or fix "
                "the remote's location (`remotes:` in keel.yaml)"
            )

    def _raise_if_unavailable(self, exc: OSError) -> None:
        """A "not found" that means the bucket or folder is missing raises StoreUnavailable."""
        if error_code(exc) == "NoSuchBucket":
            bucket = self._root.partition("/")[0]
            raise StoreUnavailable(
                f"{self._what()}: bucket '{bucket}' does not exist; create it, or fix the "
                "remote's URL (`remotes:` in keel.yaml)"
            ) from exc
        self._check_root()

    @contextlib.contextmanager
    def _reading(self, digest: Digest, path: str) -> Iterator[None]:
        with self._translate("read", path):
            try:
                yield
            except _ABSENT as exc:
                self._raise_if_unavailable(exc)
                raise not_found(digest, self.url) from exc

    @contextlib.contextmanager
    def _translate(self, action: str, path: str) -> Iterator[None]:
        """Turn the backend's errors into keel's, naming the remote and what to do."""
        try:
            yield
        except KeelError:
            raise
        except ImportError as exc:
            raise missing_extra(self._given, exc) from exc
        except Exception as exc:
            if not isinstance(exc, OSError) and not is_backend_error(exc):
                raise
            if isinstance(exc, OSError):
                self._raise_if_unavailable(exc)
            raise StoreUnavailable(describe(self._what(), action, path, exc)) from exc


def _writer(data: bytes, target: str) -> Callable[[BinaryIO], str]:
    def write(out: BinaryIO) -> str:
        out.write(data)
        return target

    return write


def _discard(out: object) -> None:
    """Abandon a partly written remote file: nothing is created."""
    discard = getattr(out, "discard", None)
    if callable(discard):
        with contextlib.suppress(Exception):
            discard()
    with contextlib.suppress(AttributeError):
        out.closed = True  # type: ignore[attr-defined]
