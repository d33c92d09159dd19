"""Bring the metadata index up to date with the object store.

Runs write refs, not rows: ``pending/<id>`` marks a run the index has not seen in its latest
state. ``sync_index`` ingests those (cheap: one small file listing when nothing is pending),
and detects *lost* runs: an ``active/<id>`` run on this host whose keel process is gone is
sealed with status ``lost`` from its start record, so it never shows as running forever.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from keel.base.canonical import canonical_json, loads
from keel.base.clock import iso
from keel.base.digest import Digest
from keel.errors import CorruptObject, ObjectNotFound
from keel.model.manifest import Manifest
from keel.model.run import RunStatus, RunSummary, hostname
from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)


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
    summaries: list[RunSummary] = []
    done: list[str] = []
    for name, digest in list(ws.objects.list_refs("pending/")):
        run_id = name.removeprefix("pending/")
        summary = _pending_summary(ws, run_id, digest)
        if summary is None:
            continue
        summaries.append(summary)
        if summary.status.finished:
            done.append(name)
    if summaries:
        ws.index().upsert(summaries)
    for name in done:
        ws.objects.delete_ref(name)
    return len(summaries)


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
    except psutil.Error:
        return True
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
