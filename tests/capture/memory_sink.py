"""An in-memory BlobSink for the capture tests (keel.store is a higher layer)."""

from __future__ import annotations

from pathlib import Path

from keel.base.digest import Digest, hash_bytes


class MemoryBlobSink:
    """A BlobSink that keeps objects in a dict, keyed by digest string."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put_bytes(self, data: bytes) -> Digest:
        digest = hash_bytes(data)
        self.objects[str(digest)] = bytes(data)
        self.puts += 1
        return digest

    def put_file(self, path: Path) -> Digest:
        return self.put_bytes(path.read_bytes())

    def fetch(self, digest: str) -> bytes:
        return self.objects[digest]

    def copy(self, digest: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self.objects[digest])
