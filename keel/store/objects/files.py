"""File primitives of the local object store: a hashing copy and OS error translation."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from io import FileIO
from pathlib import Path
from typing import BinaryIO

from keel.base.digest import CHUNK, Digest, Hasher
from keel.errors import KeelError, StoreUnavailable, UserError

_HINTS = {
    errno.EACCES: "check the folder's owner and permissions",
    errno.EPERM: "check the folder's owner and permissions",
    errno.ENOSPC: "free some disk space, or move the store (KEEL_STORE)",
    errno.EDQUOT: "free some disk quota, or move the store (KEEL_STORE)",
    errno.EROFS: "the filesystem is read-only; point the store at a writable folder",
    errno.ENOTDIR: "a file is in the way of the store's folders; move it aside",
}
_DEFAULT_HINT = "check that the store folder exists and is reachable"


def unavailable(exc: OSError, *, path: Path, action: str, root: Path) -> StoreUnavailable:
    """StoreUnavailable for an OS error on a store file: which file, why, and what to do."""
    where = exc.filename or path
    hint = _HINTS.get(exc.errno or 0, _DEFAULT_HINT)
    return StoreUnavailable(
        f"cannot {action} {where} (object store at {root}): {exc.strerror or exc}; {hint}"
    )


def exists(path: Path) -> bool:
    """True when ``path`` exists; errors other than "not found" propagate."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def sync(out: BinaryIO) -> None:
    """Flush and fsync ``out``; a failed fsync raises (it is never retried)."""
    out.flush()
    os.fsync(out.fileno())


def copy_hashing(src: FileIO, out: BinaryIO, read_error: Callable[[OSError], KeelError]) -> Digest:
    """Copy ``src`` to ``out`` in CHUNK-sized reads, hashing on the way."""
    hasher = Hasher()
    view = memoryview(bytearray(CHUNK))
    while True:
        try:
            n = src.readinto(view)
        except OSError as exc:
            raise read_error(exc) from exc
        if not n:
            return hasher.digest()
        hasher.update(view[:n])
        out.write(view[:n])


def unreadable(path: Path, exc: OSError) -> UserError:
    """The error for a caller's file that cannot be read."""
    return UserError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions")
