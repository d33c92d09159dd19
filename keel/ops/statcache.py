"""Input digests reused while a file's stat is unchanged, so `keel check` rarely re-reads data.

An entry maps a file's absolute path to ``(size, mtime_ns, inode, device, ctime_ns, digest)``;
the digest is reused only when all five stat fields still match. The cache is one JSON file in
the project's ``.keel/cache/`` — disposable: deleting it only costs a re-hash.

Limits, and how they are covered:

- A rewrite that keeps size and mtime (``touch -r``, or within the filesystem's timestamp
  granularity) would be missed by mtime alone. The ctime cannot be set by the user and changes
  on every write, so it is compared too.
- Timestamps are only as fine as the filesystem keeps them (2 s on FAT, 1 s on some network
  filesystems). A file changed less than ``RACY_NS`` ago is therefore hashed but not remembered,
  so a second write within the same tick cannot hide behind a cached digest.
- A file that changes while it is hashed is not remembered either (its stat is taken before
  and after).
- The cache trusts the clock and the filesystem: a tool that rewrites content and then restores
  size, mtime *and* ctime (which needs changing the system clock) would not be noticed. Delete
  ``.keel/cache/stat.json``, or run `keel run`, which always hashes inputs in full.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue
from keel.base.digest import Digest, hash_bytes, hash_file
from keel.capture.data import store_path
from keel.errors import UserError

log = logging.getLogger(__name__)

CACHE_FILE = "stat.json"
RACY_NS = 2_000_000_000
MAX_ENTRIES = 100_000
_VERSION = 1

_Signature = tuple[int, int, int, int, int]


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)


class StatCache:
    """Digests of files by path, valid while the file's stat signature is unchanged."""

    def __init__(
        self,
        path: Path,
        entries: dict[str, list[JsonValue]],
        *,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self._entries = entries
        self._used: set[str] = set()
        self._records: dict[str, dict[str, JsonValue]] = {}  # digest_path answers, this process
        self._changed = False
        self._now_ns = now_ns
        self.hits = 0
        self.misses = 0

    @classmethod
    def open(cls, cache_dir: Path, *, now_ns: Callable[[], int] = time.time_ns) -> StatCache:
        """The cache kept in ``cache_dir`` (empty when missing or unreadable)."""
        path = cache_dir / CACHE_FILE
        try:
            data = json.loads(path.read_bytes())
            entries = data["entries"] if data.get("version") == _VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {}, now_ns=now_ns)

    def digest(self, path: Path) -> tuple[Digest, int]:
        """The digest and size of the file at ``path``, from the cache when its stat matches."""
        key = os.path.abspath(path)
        self._used.add(key)
        before = os.stat(path)
        entry = self._entries.get(key)
        cached = _cached_digest(entry, before)
        if cached is not None:
            self.hits += 1
            return cached, before.st_size
        self.misses += 1
        digest, size = hash_file(path)
        after = os.stat(path)
        recent = self._now_ns() - max(after.st_mtime_ns, after.st_ctime_ns) < RACY_NS
        if _signature(before) == _signature(after) and not recent:
            self._entries[key] = [*_signature(after), str(digest)]
            self._changed = True
        elif entry is not None:
            del self._entries[key]
            self._changed = True
        return digest, size

    def save(self) -> None:
        """Write the cache if it changed (atomically; a failure only costs time later)."""
        if not self._changed:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:  # keep what this process used, then whatever fits
            kept = {k: entries[k] for k in self._used if k in entries}
            for key, value in entries.items():
                if len(kept) >= MAX_ENTRIES:
                    break
                kept.setdefault(key, value)
            entries = kept
        data = json.dumps({"version": _VERSION, "entries": entries}, sort_keys=True)
        try:
            atomic_write_bytes(self.path, data.encode(), durable=False)
            self._changed = False
        except OSError as exc:
            log.debug("stat cache not written to %s: %s", self.path, exc)


def _cached_digest(entry: object, st: os.stat_result) -> Digest | None:
    """The entry's digest if it is well formed and its signature matches ``st``."""
    if not isinstance(entry, list) or len(entry) != 6 or entry[:5] != list(_signature(st)):
        return None
    try:
        return Digest.parse(str(entry[5]))
    except UserError:  # a damaged cache entry is a miss, never an error
        return None


class _CachedDigests:
    """A BlobSink that stores nothing: file digests come from the stat cache."""

    def __init__(self, cache: StatCache) -> None:
        self._cache = cache

    def put_bytes(self, data: bytes) -> Digest:
        """The digest of ``data`` (nothing is stored)."""
        return hash_bytes(data)

    def put_file(self, path: Path) -> Digest:
        """The file's digest, from the stat cache when its stat is unchanged."""
        return self._cache.digest(path)[0]


def digest_path(path: Path, cache: StatCache) -> dict[str, JsonValue]:
    """What :func:`keel.capture.data.hash_path` returns for ``path``, reusing cached digests.

    A path is walked once per cache object: experiments sharing an input share its answer.
    """
    key = os.path.abspath(path)
    found = cache._records.get(key)
    if found is None:
        found = store_path(path, _CachedDigests(cache))
        found.pop("stored", None)
        cache._records[key] = found
    return dict(found)


def cached_sink(cache: StatCache) -> _CachedDigests:
    """A BlobSink for capture facets that only need digests (nothing is stored)."""
    return _CachedDigests(cache)
