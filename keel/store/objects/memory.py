"""An in-process ObjectStore for fast tests of the layers above; same contract as the folder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from keel.base.atomic import atomic_writer
from keel.base.digest import CHUNK, Digest, Hasher, hash_bytes
from keel.errors import UserError
from keel.store.objects.base import (
    check_digest,
    check_ref_name,
    corrupt,
    not_found,
    ref_clash,
    ref_folder,
)


class MemoryObjectStore:
    """Objects and refs kept in dictionaries of this instance (nothing is shared or persisted)."""

    def __init__(self) -> None:
        self._objects: dict[Digest, bytes] = {}
        self._refs: dict[str, Digest] = {}
        self._lock = threading.Lock()
        self._url = f"memory://{id(self):x}"

    @property
    def url(self) -> str:
        """``memory://<hex id>``, unique among the live stores of this process."""
        return self._url

    def put_bytes(self, data: bytes) -> Digest:
        """Store ``data``; return its digest."""
        digest = hash_bytes(data)
        with self._lock:
            self._objects.setdefault(digest, bytes(data))
        return digest

    def put_file(self, path: Path) -> Digest:
        """Store a file's content, hashed chunk by chunk while it is read."""
        hasher = Hasher()
        chunks: list[bytes] = []
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    hasher.update(chunk)
                    chunks.append(chunk)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}; check the path") from exc
        digest = hasher.digest()
        with self._lock:
            self._objects.setdefault(digest, b"".join(chunks))
        return digest

    def has(self, digest: Digest) -> bool:
        """True when the object is stored."""
        return check_digest(digest) in self._objects

    def get_bytes(self, digest: Digest) -> bytes:
        """The object's bytes, verified against the digest."""
        data = self._load(digest)
        if hash_bytes(data) != digest:
            raise corrupt(digest, self._where(digest))
        return data

    def copy_to(self, digest: Digest, dest: Path) -> None:
        """Write the verified object to ``dest`` atomically."""
        data = self.get_bytes(digest)
        try:
            with atomic_writer(dest) as out:
                out.write(data)
        except OSError as exc:
            raise UserError(
                f"cannot write {dest}: {exc.strerror or exc}; check that its folder is writable"
            ) from exc

    def size(self, digest: Digest) -> int:
        """The object's size in bytes."""
        return len(self._load(digest))

    def iter_digests(self) -> Iterator[Digest]:
        """Every stored digest (a snapshot taken when iteration starts)."""
        with self._lock:
            digests = sorted(self._objects)
        yield from digests

    def verify(self, digest: Digest) -> bool:
        """Re-hash the object: True when intact."""
        return hash_bytes(self._load(digest)) == digest

    def set_ref(self, name: str, digest: Digest, *, create_only: bool = False) -> bool:
        """Point ``name`` at ``digest``; with ``create_only``, False if it already exists."""
        check_ref_name(name)
        check_digest(digest)
        with self._lock:
            self._check_clash(name)
            if create_only and name in self._refs:
                return False
            self._refs[name] = digest
        return True

    def get_ref(self, name: str) -> Digest | None:
        """The digest ``name`` points at, or None."""
        return self._refs.get(check_ref_name(name))

    def list_refs(self, prefix: str) -> Iterator[tuple[str, Digest]]:
        """Refs whose name starts with ``prefix``, sorted by name."""
        ref_folder(prefix)
        with self._lock:
            found = sorted((n, d) for n, d in self._refs.items() if n.startswith(prefix))
        yield from found

    def delete_ref(self, name: str) -> None:
        """Remove a ref if it exists."""
        check_ref_name(name)
        with self._lock:
            self._refs.pop(name, None)

    def _load(self, digest: Digest) -> bytes:
        try:
            return self._objects[check_digest(digest)]
        except KeyError:
            raise not_found(digest, self._url) from None

    def _where(self, digest: Digest) -> str:
        return f"{self._url}/{digest.algorithm}/{digest.hexdigest}"

    def _check_clash(self, name: str) -> None:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self._refs:
                raise ref_clash(name, parent)
        below = name + "/"
        for other in self._refs:
            if other.startswith(below):
                raise ref_clash(name, other)
