"""Bring the metadata index up to date with the object store.

Runs write refs, not rows: ``pending/<id>`` marks a run the index has not seen in its latest
state. ``sync_index`` ingests those (cheap: one small file listing when nothing is pending),
and detects *lost* runs: an ``active/<id>`` run on this host whose keel process is gone is
sealed with status ``lost`` from its start record, so it never shows as running forever.

Many processes sync at once (parallel trials, each listing runs), so every step is safe to
repeat or to race: rows are upserted idempotently; a pending ref is deleted only once the row
that makes it unnecessary is committed, and deleting one that another process deleted first is
fine; a run is sealed ``lost`` only when its process is gone (``runs/<id>`` is create-only,
so a run that sealed itself meanwhile keeps its own seal); and a row written as still running
is checked against ``runs/`` after the write (see :func:`sync_index`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from keel.base.canonical import canonical_json, loads
from keel.base.clock import iso
from keel.base.digest import Digest
from keel.errors import CorruptObject, ObjectNotFound
from keel.model.manifest import Manifest
from keel.model.run import RunStatus, RunSummary, hostname
from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
SYNC_LOCK = "sync.lock"  # in the store folder; an empty file, only ever flock()ed


def load_manifest(ws: Workspace, digest: Digest) -> Manifest:
    """Read and validate a stored manifest (verified by digest on read)."""
    data = loads(ws.objects.get_bytes(digest))
    if not isinstance(data, dict):
        raise CorruptObject(f"object {digest} is not a manifest")
    return Manifest.from_json(data)


def summarize(manifest: Manifest, digest: str | None) -> RunSummary:
    """The index row for a manifest (``digest`` None for a run still going)."""
    run = manifest.run
    commit = manifest.code.get("commit")
    dirty = manifest.code.get("dirty")
    return RunSummary(
        id=run.id,
        project=run.project,
        experiment=run.experiment,
        status=run.status,
        created_at=run.created_at,
        ended_at=run.ended_at,
        duration_s=run.duration_s,
        manifest=digest,
        profile=run.profile,
        why=run.why,
        host=run.host,
        user=run.user,
        pid=run.pid,
        git_commit=commit if isinstance(commit, str) else None,
        git_dirty=dirty if isinstance(dirty, bool) else None,
        params={k: v.value for k, v in manifest.config.params.items()},
        metrics={k: m.value for k, m in manifest.metrics.items()},
        tags=tuple(run.tags),
    )


def sync_index(ws: Workspace) -> int:
    """Ingest pending runs and detect lost ones; returns how many rows were written."""
    seen = {name for name, _digest in ws.objects.list_refs("pending/")}
    if not seen:
        return 0
    with _one_sync_at_a_time(ws.store_root):
        # Listed again under the lock: a sync that held it before us has done most of the
        # work. What was pending when we were called is what this call must ingest; runs
        # that turned up while we waited are left to the next read, so that syncs queued on
        # the lock do not each take on more work (one convoy of many processes otherwise).
        pending = [(n, d) for n, d in ws.objects.list_refs("pending/") if n in seen]
        return _sync(ws, pending)


@contextlib.contextmanager
def _one_sync_at_a_time(store_root: Path) -> Iterator[None]:
    """Hold the store's sync lock, so that syncs of one store take turns.

    Only an optimisation: syncs racing each other stay correct (see the module docstring), but
    each would read and decode the same manifests. Where the lock cannot be taken (a read-only
    store, no ``fcntl``) syncs simply do not take turns.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(store_root / SYNC_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.debug("syncing without the lock: %s", exc)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, or the process ends
        yield
    finally:
        os.close(fd)


def _sync(ws: Workspace, pending: list[tuple[str, Digest]]) -> int:
    written = _ingest(ws, _not_yet_indexed(ws, pending))
    # NOTE: between our reading a run's start record and our write landing, the run may have
    # sealed and another process may have ingested the seal and deleted the pending ref; our
    # "running" row would then hide the seal for good. So every run written as running is
    # looked up again *after* the write: a seal made before then is written over it here, and
    # a seal made later leaves a pending ref behind it for the next sync.
    sealed_since: list[tuple[str, Digest]] = []
    for summary in written:
        if summary.manifest is None:
            digest = ws.objects.get_ref(f"runs/{summary.id}")
            if digest is not None:
                sealed_since.append((f"pending/{summary.id}", digest))
    return len(written) + len(_ingest(ws, sealed_since))


def _not_yet_indexed(ws: Workspace, pending: list[tuple[str, Digest]]) -> list[tuple[str, Digest]]:
    """``pending`` less the refs of sealed runs the index has already (those refs are deleted).

    When processes sync at once, most of what one finds pending another has just ingested; a
    look-up of their ids costs far less than reading and decoding their manifests again.
    """
    sealed: dict[str, str] = {}
    for name, _ in pending:
        run_id = name.removeprefix("pending/")
        digest = ws.objects.get_ref(f"runs/{run_id}")
        if digest is not None:
            sealed[run_id] = str(digest)
    if not sealed:
        return pending
    indexed = ws.index().ids_with_manifest(sealed)
    redundant = {f"pending/{i}" for i, digest in sealed.items() if indexed.get(i) == digest}
    for name in sorted(redundant):
        ws.objects.delete_ref(name)
    return [(name, digest) for name, digest in pending if name not in redundant]


def _ingest(ws: Workspace, pending: list[tuple[str, Digest]]) -> list[RunSummary]:
    """Write the rows for ``pending`` refs, then delete the refs of finished runs."""
    summaries: list[RunSummary] = []
    done: list[str] = []
    for name, digest in pending:
        summary = _pending_summary(ws, name.removeprefix("pending/"), digest)
        if summary is None:
            continue
        summaries.append(summary)
        if summary.status.finished:
            done.append(name)
    if summaries:
        ws.index().upsert(summaries)
    for name in done:  # only now that the rows are committed
        ws.objects.delete_ref(name)
    return summaries


def _pending_summary(ws: Workspace, run_id: str, digest: Digest) -> RunSummary | None:
    sealed = ws.objects.get_ref(f"runs/{run_id}")
    try:
        if sealed is not None:
            return summarize(load_manifest(ws, sealed), str(sealed))
        manifest = load_manifest(ws, digest)
    except (ObjectNotFound, CorruptObject) as exc:
        log.warning("run %s cannot be indexed: %s", run_id, exc)
        return None
    if _is_lost(manifest):
        lost = seal_lost(ws, manifest)
        return summarize(lost, str(ws.objects.get_ref(f"runs/{run_id}")))
    return summarize(manifest, None)


def _is_lost(manifest: Manifest) -> bool:
    run = manifest.run
    if run.status is not RunStatus.RUNNING or run.host != hostname() or run.pid is None:
        return False
    import psutil

    return not bool(psutil.pid_exists(run.pid)) or _started_after(run.pid, run.created_at)


def _started_after(pid: int, created_at: str) -> bool:
    """True when ``pid`` now belongs to a process younger than the run (the pid was reused)."""
    import psutil

    from keel.base.clock import parse_iso

    try:
        started = float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:  # ended since pid_exists (a zombie included)
        return True
    except psutil.Error:  # alive but not ours to inspect: never seal a live run lost
        return False
    return started > parse_iso(created_at).timestamp() + 1.0


def seal_lost(ws: Workspace, start: Manifest) -> Manifest:
    """Seal a run whose keel process died: status ``lost``, from what was captured before it."""
    run = replace(start.run, status=RunStatus.LOST, ended_at=iso(ws.clock.now()))
    flag = "keel process ended without recording the run's end"
    lost = replace(start, run=run, flags=(*start.flags, flag))
    digest = ws.objects.put_bytes(canonical_json(lost.to_json()))
    if not ws.objects.set_ref(f"runs/{run.id}", digest, create_only=True):
        existing = ws.objects.get_ref(f"runs/{run.id}")
        assert existing is not None
        return load_manifest(ws, existing)
    ws.objects.delete_ref(f"active/{run.id}")
    return lost


def reindex(ws: Workspace) -> int:
    """Rebuild the index from the object store alone; returns the number of runs indexed."""
    summaries: list[RunSummary] = []
    for _name, digest in ws.objects.list_refs("runs/"):
        summaries.append(summarize(load_manifest(ws, digest), str(digest)))
    sealed = {s.id for s in summaries}
    for name, digest in ws.objects.list_refs("active/"):
        run_id = name.removeprefix("active/")
        if run_id not in sealed:
            manifest = load_manifest(ws, digest)
            if _is_lost(manifest):
                manifest = seal_lost(ws, manifest)
                summaries.append(summarize(manifest, str(ws.objects.get_ref(f"runs/{run_id}"))))
            else:
                summaries.append(summarize(manifest, None))
    index = ws.index()
    index.clear()
    index.upsert(summaries)
    for name, _ in list(ws.objects.list_refs("pending/")):
        if name.removeprefix("pending/") in sealed:
            ws.objects.delete_ref(name)
    return len(summaries)
