"""`keel ls` and `keel show` use cases: query the (synced) index, load manifests and log tails."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue
from keel.base.digest import Digest
from keel.model.manifest import Manifest
from keel.model.run import RunStatus, RunSummary
from keel.ops.refs import resolve_ref
from keel.ops.sync import load_manifest, sync_index
from keel.ops.workspace import Workspace

if TYPE_CHECKING:
    from keel.compare.noise import NoiseProfile

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 20


def list_runs(
    ws: Workspace,
    *,
    experiment: str | None = None,
    status: str | None = None,
    params: Mapping[str, str] | None = None,
    tags: Sequence[str] = (),
    sort_metric: str | None = None,
    descending: bool = True,
    limit: int | None = 50,
) -> list[RunSummary]:
    """Runs matching the filters; ``params`` values are compared as the index stores them."""
    from keel.store.meta.base import RunQuery

    sync_index(ws)
    query = RunQuery(
        experiment=experiment,
        status=RunStatus(status) if status else None,
        params=_parse_values(params or {}),
        tags=tuple(tags),
        sort_metric=sort_metric,
        descending=descending,
        limit=limit,
    )
    return ws.index().query(query)


def _parse_values(raw: Mapping[str, str]) -> dict[str, JsonValue]:
    import json

    out: dict[str, JsonValue] = {}
    for key, text in raw.items():
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """One run as `keel show` presents it, with its experiment's noise profile and its digest."""

    summary: RunSummary
    manifest: Manifest
    digest: str
    log_tail: str
    noise: tuple[NoiseProfile, str] | None = None


def show_run(ws: Workspace, ref: str, *, tail: int = LOG_TAIL_LINES) -> RunView:
    """Resolve ``ref`` and load its manifest (the start record while it is still running)."""
    summary = resolve_ref(ws, ref)
    digest_text = summary.manifest or str(ws.objects.get_ref(f"active/{summary.id}") or "")
    if not digest_text:
        digest_text = str(ws.objects.get_ref(f"runs/{summary.id}"))
    digest = Digest.parse(digest_text)
    manifest = load_manifest(ws, digest)
    return RunView(
        summary=summary,
        manifest=manifest,
        digest=str(digest),
        log_tail=_tail(ws, manifest, tail),
        noise=_noise(ws, manifest.run.experiment),
    )


def _noise(ws: Workspace, experiment: str) -> tuple[NoiseProfile, str] | None:
    """The experiment's noise profile, if measured; an unreadable one is logged, not fatal."""
    from keel.errors import KeelError
    from keel.ops.determinism import load_noise_profile

    try:
        found = load_noise_profile(ws, experiment)
    except KeelError as exc:
        log.warning("noise profile of %s not shown: %s", experiment, exc)
        return None
    return (found[0], str(found[1])) if found else None


def _tail(ws: Workspace, manifest: Manifest, lines: int) -> str:
    rec = manifest.logs.get("stdout")
    if rec is None or lines <= 0:
        return ""
    data = ws.objects.get_bytes(Digest.parse(rec.digest))
    text = data[-64 * 1024 :].decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
