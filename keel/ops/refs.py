"""Run references: full id, unique prefix, ``EXPERIMENT@latest``, ``@latest``,
``EXPERIMENT@baseline`` and ``@baseline``."""

from __future__ import annotations

from keel.errors import RunRefError
from keel.model.run import RunSummary
from keel.ops.sync import sync_index
from keel.ops.workspace import Workspace


def resolve_ref(ws: Workspace, ref: str, *, baseline_of: str | None = None) -> RunSummary:
    """The run ``ref`` names.

    ``baseline_of`` is the experiment a bare ``@baseline`` means (the gated run's, say);
    without it, ``@baseline`` needs exactly one experiment to have a baseline.

    Raises:
        keel.errors.RunRefError: no match (with a hint), or an ambiguous prefix (lists them).
    """
    sync_index(ws)
    index = ws.index()
    ref = ref.strip()
    if ref.endswith("@baseline"):
        return _baseline_run(ws, ref.removesuffix("@baseline") or baseline_of)
    if "@" in ref:
        experiment, _, tag = ref.partition("@")
        if tag != "latest":
            raise RunRefError(
                f"unknown run reference {ref!r}: use ID, ID-prefix, EXPERIMENT@latest, "
                "@latest, EXPERIMENT@baseline or @baseline"
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


def _baseline_run(ws: Workspace, experiment: str | None) -> RunSummary:
    """The baseline run of ``experiment`` (of the only experiment with one when None)."""
    from keel.ops.baseline import SET_HINT, baseline_experiments, current_baseline, no_baseline

    if experiment is None:
        having = baseline_experiments(ws)
        if len(having) != 1:
            listed = f"baselines are set for {', '.join(having)}" if having else "none is set"
            raise RunRefError(f"@baseline needs an experiment ({listed}): write EXPERIMENT@baseline"
                              + ("" if having else f"; {SET_HINT}"))  # fmt: skip
        experiment = having[0]
    record = current_baseline(ws, experiment)
    if record is None:
        raise RunRefError(str(no_baseline(ws, experiment)))
    found = ws.index().get(record.run)
    if found is None:
        raise RunRefError(
            f"baseline run {record.run} of {experiment} is not in the index; run `keel reindex`"
        )
    return found
