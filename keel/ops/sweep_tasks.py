"""Hand a sweep's trials to a task pool, collect their results, and stop cleanly on Ctrl-C.

The first Ctrl-C (SIGINT or SIGTERM) does not raise: it marks the sweep interrupted and
creates the sandbox's stop file, so that workers cancel trials not yet started and stop the
running ones (which are sealed ``killed``); the orchestrator then stops handing out trials.
A second Ctrl-C raises KeyboardInterrupt as usual.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from keel.base.canonical import JsonValue
from keel.errors import UserError
from keel.execute.pool import Done, TaskPool
from keel.model.sweeprecord import PlannedTrial, SweepRecord
from keel.ops.sweep_sandbox import FrozenTree
from keel.ops.sweep_trial import ERROR, TrialContext, TrialResult, TrialTask, run_trial
from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
EventCallback = Callable[[str, Mapping[str, JsonValue]], None]
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """Whether the sweep was interrupted; setting it creates the stop file."""

    def __init__(self, stop_file: Path) -> None:
        self.stop_file = stop_file
        self.is_set = False

    def set(self) -> None:
        """Mark the sweep interrupted and tell every worker (idempotent)."""
        if not self.is_set:
            self.is_set = True
            try:
                self.stop_file.touch()
            except OSError as exc:  # the sandbox is gone: nothing is left to stop
                log.debug("cannot create %s: %s", self.stop_file, exc)


@contextmanager
def interrupts(stop_file: Path) -> Iterator[Interrupt]:
    """Catch the first Ctrl-C as an :class:`Interrupt` while the block runs (main thread only)."""
    interrupt = Interrupt(stop_file)
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if interrupt.is_set:
            raise KeyboardInterrupt
        interrupt.set()

    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield interrupt
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def trial_context(
    ws: Workspace, record: SweepRecord, pool: TaskPool, tree: FrozenTree
) -> TrialContext:
    """What every trial of this run of the sweep shares."""
    subdir = tree.project_root.relative_to(tree.root).as_posix() or "."
    return TrialContext(
        sweep_id=record.id,
        store_root=str(ws.store_root),
        project_root=str(ws.root),
        spec_file=str(ws.facts.spec_file),
        project=record.project,
        spec_digest=record.spec_digest,
        profile=record.profile,
        environ=dict(ws.environ),
        sandbox=str(tree.root),
        subdir=subdir,
        code=tree.code,
        executor=pool.name,
        parallelism=pool.parallelism,
        flags=record.flags,
    )


def trial_task(ctx: TrialContext, record: SweepRecord, planned: PlannedTrial) -> TrialTask:
    """The task that runs ``planned``."""
    trial = planned.trial
    part = record.partition if trial.fold is not None else None
    info: dict[str, JsonValue] = {
        "id": record.id, "trial": trial.index, "key": trial.key, "config": trial.config,
        "replicate": trial.replicate, "seed_derivation": record.seed_derivation,
    }  # fmt: skip
    if part is not None:
        info.update(fold=trial.fold, folds=part.k, partition=part.digest)
    indices = part.indices if part is not None else None
    return TrialTask(context=ctx, index=trial.index, key=trial.key, plan=planned.plan, info=info,
                     fold=trial.fold, indices=indices)  # fmt: skip


def run_tasks(
    pool: TaskPool,
    tasks: Sequence[TrialTask],
    interrupt: Interrupt,
    on_event: EventCallback,
    *,
    done_before: int = 0,
    total: int | None = None,
) -> list[TrialResult]:
    """Run ``tasks`` on ``pool``; results in finishing order; stops early when interrupted."""
    results: list[TrialResult] = []
    if not tasks:
        return results
    finished = _guarded(pool, pool.run(run_trial, tasks), tasks[0].context.sweep_id)
    try:
        for done in finished:
            task = tasks[done.index]
            result = done.result if done.error is None else _errored(task, done.error)
            assert result is not None
            results.append(result)
            event = {**result.to_json(), "done": done_before + len(results),
                     "total": total if total is not None else len(tasks)}  # fmt: skip
            on_event("trial", event)
            if result.stopped:
                interrupt.set()
            if interrupt.is_set:
                break
    finally:
        finished.close()
    return results


def _guarded(pool: TaskPool, done: Iterator[Done[TrialResult]], sweep_id: str
             ) -> Generator[Done[TrialResult], None, None]:  # fmt: skip
    """The pool's results; a pool that breaks (a worker killed, a lost scheduler) is one error
    that says how to finish the sweep."""
    try:
        yield from done
    except Exception as exc:
        raise UserError(
            f"the {pool.name} executor stopped working ({type(exc).__name__}: {exc}); the "
            f"trials sealed so far are kept: finish with `keel sweep --resume {sweep_id}`"
        ) from exc
    finally:
        done.close()  # type: ignore[attr-defined]


def _errored(task: TrialTask, error: BaseException) -> TrialResult:
    log.warning("trial %d of sweep %s failed in keel: %r", task.index, task.context.sweep_id,
                error)  # fmt: skip
    return TrialResult(index=task.index, key=task.key, status=ERROR,
                       error=f"{type(error).__name__}: {error}")  # fmt: skip
