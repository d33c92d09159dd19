"""Algorithm-qualified content digests (blake3), computed while streaming."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from keel.errors import UserError

ALGORITHM = "blake3"
CHUNK = 1 << 20  # 1 MiB reads: the throughput plateau for blake3 on this class of machine
_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content digest such as ``blake3:3b2f...``; the algorithm is always explicit."""

    algorithm: str
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"

    @property
    def short(self) -> str:
        """First 12 hex characters, for display only."""
        return self.hexdigest[:12]

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:hex``; raise UserError naming the bad value."""
        algorithm, sep, hexdigest = text.partition(":")
        if not sep or algorithm != ALGORITHM or not _HEX.match(hexdigest):
            raise UserError(
                f"not a keel digest: {text!r}; expected '{ALGORITHM}:' followed by 64 hex digits"
            )
        return cls(algorithm, hexdigest)


class _Blake3(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


def _hasher() -> _Blake3:
    import blake3  # 1 ms import; kept local so `keel --help` never pays for it

    hasher: _Blake3 = blake3.blake3()
    return hasher


class Hasher:
    """Incremental digest computation."""

    def __init__(self) -> None:
        self._h = _hasher()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        """Feed more bytes."""
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        """The digest of everything fed so far."""
        return Digest(ALGORITHM, self._h.hexdigest())


def hash_bytes(data: bytes) -> Digest:
    """Digest of an in-memory byte string."""
    h = Hasher()
    h.update(data)
    return h.digest()


def hash_stream(stream: BinaryIO) -> tuple[Digest, int]:
    """Digest and size of a binary stream, read in chunks (constant memory)."""
    h = Hasher()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        h.update(view[:n])
    return h.digest(), h.size


def hash_file(path: str | os.PathLike[str]) -> tuple[Digest, int]:
    """Digest and size of a file, streamed."""
    with open(path, "rb", buffering=0) as fh:
        return hash_stream(fh)


def iter_tree_files(root: Path) -> Iterable[Path]:
    """Regular files below ``root`` in a stable (sorted, POSIX path) order; symlinks are skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                yield p
