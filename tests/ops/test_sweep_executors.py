"""One deterministic sweep on all three executors: bit-identical outputs, the same table.

The pool is real (two forkserver worker processes) and so is the Dask cluster (a
LocalCluster of two worker processes on 127.0.0.1, random ports, no dashboard).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.execute.pool import open_pool
from keel.model.sweeprecord import SweepTable
from keel.ops.sweep import SweepOutcome, SweepRequest, start_sweep
from keel.ops.sweep_table import sweep_table
from keel.ops.workspace import Workspace
from tests.ops.test_sweep import make_sweep_project, manifests, open_ws


def _run(ws: Workspace, executor: str) -> SweepOutcome:
    request = SweepRequest(name="train", axes=("lr=0.5,1",), seeds=2)
    with open_pool(executor, jobs=2) as pool:
        return start_sweep(ws, request, pool=pool)


def _comparable(table: SweepTable) -> dict[str, object]:
    data = table.to_json()
    for volatile in ("id", "created_at"):
        data.pop(volatile)
    for row in data["rows"]:  # type: ignore[union-attr]
        row.pop("runs")  # type: ignore[union-attr]
    return data


def test_local_pool_and_dask_give_bit_identical_outputs_and_the_same_table(
    tmp_path: Path,
) -> None:
    pytest.importorskip("distributed")
    ws = open_ws(make_sweep_project(tmp_path / "proj"))
    outcomes = {kind: _run(ws, kind) for kind in ("local", "pool", "dask")}
    outputs = {}
    for kind, outcome in outcomes.items():
        assert outcome.ok, (kind, outcome.statuses, outcome.errors)
        runs = manifests(ws, outcome)
        outputs[kind] = {t.trial.key: tuple(o.digest for o in runs[t.trial.index].outputs)
                         for t in outcome.trials}  # fmt: skip
        executors = {m.run.executor.name for m in runs.values()}
        assert executors == {kind}
        parallelism = {m.run.executor.parallelism for m in runs.values()}
        assert parallelism == ({1} if kind == "local" else {2})
        assert all(m.run.executor.worker for m in runs.values())
    assert outputs["local"] == outputs["pool"] == outputs["dask"]
    assert len(outputs["local"]) == 4
    workers = {m.run.executor.worker for m in manifests(ws, outcomes["dask"]).values()}
    assert all(w and w.startswith("tcp://127.0.0.1:") for w in workers)
    tables = [_comparable(sweep_table(ws, o.record)) for o in outcomes.values()]
    assert tables[0] == tables[1] == tables[2]
