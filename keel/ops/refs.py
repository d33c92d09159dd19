"""Run references: full id, unique prefix, ``EXPERIMENT@latest``, ``@latest``."""

from __future__ import annotations

from keel.errors import RunRefError
from keel.model.run import RunSummary
from keel.ops.sync import sync_index
from keel.ops.workspace import Workspace


def resolve_ref(ws: Workspace, ref: str) -> RunSummary:
    """The run ``ref`` names.

    Raises:
        keel.errors.RunRefError: no match (with a hint), or an ambiguous prefix (lists them).
    """
    sync_index(ws)
    index = ws.index()
    ref = ref.strip()
    if "@" in ref:
        experiment, _, tag = ref.partition("@")
        if tag != "latest":
            raise RunRefError(
                f"unknown run reference {ref!r}: use ID, ID-prefix, EXPERIMENT@latest or @latest"
            )
        found = index.latest(experiment or None)
        if found is None:
            where = f" of experiment '{experiment}'" if experiment else ""
            raise RunRefError(f"no runs{where} yet: start one with `keel run`")
        return found
    exact = index.get(ref)
    if exact is not None:
        return exact
    candidates = index.find_prefix(ref, limit=11) if len(ref) >= 2 else []
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise RunRefError(f"no run matches {ref!r}; list runs with `keel ls`")
    listed = ", ".join(f"{c.id} ({c.experiment}, {c.created_at[:19]})" for c in candidates[:10])
    raise RunRefError(f"run reference {ref!r} is ambiguous; it matches: {listed}")
