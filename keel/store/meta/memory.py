"""An in-process RunIndex for fast tests of the layers above; same contract as the SQL index."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

from keel.model.run import RunSummary
from keel.store.meta.base import RunQuery, matches, metric_sort_value, normalized


class MemoryRunIndex:
    """Run summaries in a dictionary of this instance."""

    def __init__(self) -> None:
        self._runs: dict[str, RunSummary] = {}
        self._lock = threading.Lock()

    def upsert(self, summaries: Sequence[RunSummary]) -> None:
        """Insert or replace runs; all of them become visible at once."""
        fresh = {s.id: normalized(s) for s in summaries}
        with self._lock:
            self._runs.update(fresh)

    def get(self, run_id: str) -> RunSummary | None:
        """The run with exactly this id, or None."""
        return self._runs.get(run_id)

    def find_prefix(self, prefix: str, limit: int = 20) -> list[RunSummary]:
        """Runs whose id starts with ``prefix``, in id order."""
        ids = sorted(i for i in self._snapshot() if i.startswith(prefix))
        return [self._runs[i] for i in ids[:limit]]

    def latest(self, experiment: str | None = None) -> RunSummary | None:
        """The most recently created run (of ``experiment``, when given)."""
        found = self.query(RunQuery(experiment=experiment, limit=1))
        return found[0] if found else None

    def query(self, q: RunQuery) -> list[RunSummary]:
        """Runs matching ``q``, ordered as :class:`RunQuery` describes."""
        found = [s for s in self._snapshot().values() if matches(s, q)]
        newest_first = q.descending or q.sort_metric is not None
        found.sort(key=lambda s: (s.created_at, s.id), reverse=newest_first)
        if q.sort_metric is not None:
            metric = q.sort_metric
            # Stable sorts: by value within the runs that have one, then those without last.
            found.sort(key=lambda s: metric_sort_value(s, metric) or 0.0, reverse=q.descending)
            found.sort(key=lambda s: metric_sort_value(s, metric) is None)
        return found if q.limit is None else found[: q.limit]

    def ids_with_manifest(self, ids: Collection[str] | None = None) -> dict[str, str | None]:
        """Every run id (or those of ``ids`` that are indexed) with its manifest digest."""
        runs = self._snapshot()
        wanted = runs if ids is None else [i for i in ids if i in runs]
        return {i: runs[i].manifest for i in wanted}

    def clear(self) -> None:
        """Remove every run."""
        with self._lock:
            self._runs.clear()

    def close(self) -> None:
        """Nothing to release."""

    def _snapshot(self) -> dict[str, RunSummary]:
        with self._lock:
            return dict(self._runs)
