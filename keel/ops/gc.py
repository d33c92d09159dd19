"""`keel gc`: delete stored objects nothing references, once they are old enough.

An object is kept when any of these reaches it (:mod:`keel.ops.reachability`): a ref — sealed
runs, running jobs (``active/``), runs the index has not ingested (``pending/``), dataset
versions, baselines, noise profiles, anything else under ``refs/`` — or a digest written in the
project's ``keel.lock``. An unreferenced object is kept too while it is younger than the grace
period (by its file's modification time): a run or ``keel data add`` in progress writes its
objects before the ref that names them.

It fails closed. A listing that fails, a ref that does not hold a digest or names a missing
object, a record that does not parse, or any object that no longer matches its digest stops it
before anything is deleted. Deleting is opt-in (``delete=True``); the default is a dry run.

NOTE: an object that already exists is not rewritten when a new run stores the same bytes, so
its time does not change. A run that starts after the walk, reuses such an old unreferenced
object and seals before the deletion could lose it; refs are listed again just before
deleting, and any change aborts, which leaves only that narrow window.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from keel.base.atomic import fsync_dir
from keel.base.digest import Digest
from keel.errors import CorruptObject, StoreUnavailable, UserError
from keel.ops.reachability import Graph, digests_in, reachable
from keel.ops.workspace import Workspace

DEFAULT_GRACE = timedelta(hours=24)
LOCK_FILE = "keel.lock"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True, kw_only=True)
class GcReport:
    """What gc found: the objects that go (or would go) and what was kept, with sizes."""

    doomed: tuple[tuple[Digest, int], ...]
    deleted: bool
    referenced: int
    young: int
    young_bytes: int
    grace: timedelta

    @property
    def doomed_bytes(self) -> int:
        """Bytes freed (or that would be)."""
        return sum(size for _, size in self.doomed)


def parse_grace(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` (a bare number is seconds).

    Raises:
        keel.errors.UserError: not a non-negative number with one of those units.
    """
    match = _DURATION.match(text)
    if not match:
        raise UserError(
            f"--grace {text!r}: expected a duration such as 30m, 24h or 7d (units s, m, h, d, w)"
        )
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _no_progress(done: int, total: int) -> None:
    """Default progress callback: nothing."""


def gc(
    ws: Workspace,
    *,
    grace: timedelta = DEFAULT_GRACE,
    delete: bool = False,
    on_progress: Callable[[int, int], None] = _no_progress,
) -> GcReport:
    """Find (and with ``delete``, remove) unreferenced objects older than ``grace``.

    Raises:
        keel.errors.CorruptObject: a ref, record or object is unreadable; nothing was deleted.
        keel.errors.StoreUnavailable: the store (or keel.lock) cannot be listed or read;
            nothing was deleted.
    """
    with _nothing_deleted():
        refs = dict(ws.objects.list_refs(""))
        graph = _walk(ws, refs)
        cutoff = ws.clock.now().timestamp() - grace.total_seconds()
        doomed: list[tuple[Digest, int]] = []
        young = young_bytes = 0
        for digest in ws.objects.iter_digests():
            if digest in graph.nodes:
                continue
            stat = _stat(ws, digest)
            if stat.st_mtime > cutoff:
                young += 1
                young_bytes += stat.st_size
            else:
                doomed.append((digest, stat.st_size))
    if delete and doomed:
        if dict(ws.objects.list_refs("")) != refs:
            raise StoreUnavailable(
                "refs changed while gc was looking (a run or data command is writing); "
                "nothing was deleted: run `keel gc` again when it is done"
            )
        _delete(ws, [d for d, _ in doomed], on_progress)
    return GcReport(
        doomed=tuple(doomed),
        deleted=delete,
        referenced=len(graph.nodes),
        young=young,
        young_bytes=young_bytes,
        grace=grace,
    )


@contextlib.contextmanager
def _nothing_deleted() -> Iterator[None]:
    """Say, in any error raised while looking, that nothing was deleted."""
    try:
        yield
    except (CorruptObject, StoreUnavailable) as exc:
        if "nothing was deleted" in str(exc):
            raise
        raise type(exc)(f"{exc}; gc deleted nothing") from exc


def _walk(ws: Workspace, refs: dict[str, Digest]) -> Graph:
    """Everything refs and keel.lock reach; a ref's record must be there and be JSON."""
    graph = reachable(ws.objects, [*refs.values(), *_lock_digests(ws.root)])
    for name, digest in refs.items():
        node = graph.nodes.get(digest)
        if node is None:
            raise CorruptObject(
                f"ref {name!r} names {digest}, which is not in the store; nothing was deleted: "
                "fetch it (`keel pull`) or remove the ref, then run `keel gc` again"
            )
        if not node.json:
            raise CorruptObject(
                f"ref {name!r} names {digest}, which is not a readable record; nothing was "
                "deleted: run `keel verify`"
            )
    return graph


def _lock_digests(root: Path) -> tuple[Digest, ...]:
    path = root / LOCK_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot read {path}: {exc.strerror or exc}; nothing was deleted "
            "(gc needs the digests keel.lock pins)"
        ) from exc
    return digests_in(text)


def _stat(ws: Workspace, digest: Digest) -> os.stat_result:
    path = ws.objects.object_path(digest)
    try:
        return os.stat(path)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot read {path}: {exc.strerror or exc}; nothing was deleted"
        ) from exc


def _delete(ws: Workspace, digests: list[Digest], on_progress: Callable[[int, int], None]) -> None:
    folders: set[Path] = set()
    for n, digest in enumerate(digests, 1):
        path = ws.objects.object_path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot delete {path}: {exc.strerror or exc}; {n - 1} of {len(digests)} "
                "objects were deleted (all unreferenced); fix the cause and run `keel gc` again"
            ) from exc
        folders.add(path.parent)
        on_progress(n, len(digests))
    for folder in folders:
        fsync_dir(folder)
