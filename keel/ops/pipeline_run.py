"""`keel repro`: run a pipeline's stages in topological order, reusing every cached result.

Each stage, once everything it depends on is done, gets its cache key from the tree as it is
then (inputs hashed before it runs). A key that matches an earlier successful run is a hit:
the stage does not run, and its outputs are restored from the store if they are missing or
differ. Otherwise the stage runs as a normal sealed run in the task pool (``local``, ``pool``
or ``dask``), independent stages side by side. A stage that fails stops what depends on it
("skipped: upstream X failed"); independent branches go on.

Only this process decides and records: workers only run stages. The stage state is written
after each stage (at most once a second, and at the end, also when interrupted).
"""

from __future__ import annotations

import functools
import heapq
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue
from keel.errors import ExecutionError, KeelError, UserError
from keel.execute.pool import TaskPool, open_pool
from keel.ops.pipeline import Judge, restore_reason
from keel.ops.pipeline_cache import Pipeline, StageDef, load_pipeline
from keel.ops.pipeline_exec import (
    StageRun,
    StageTask,
    restore_outputs,
    run_stage,
    run_stage_in,
    stderr_tail,
)
from keel.ops.pipeline_state import Hit, StageState, output_digests, run_usable
from keel.ops.stagekey import Components, EnvProbe, KeyContext

if TYPE_CHECKING:
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
EventCallback = Callable[[str, Mapping[str, JsonValue]], None]
FLUSH_EVERY_S = 1.0


def _no_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """The default progress callback: do nothing."""


class Outcome(StrEnum):
    """What `keel repro` did with a stage."""

    UP_TO_DATE = "up-to-date"
    RESTORED = "restored"
    RAN = "ran"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageResult:
    """One stage's outcome, why, and the run that holds its result."""

    name: str
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    run: str | None = None
    restored: tuple[str, ...] = ()
    error: str | None = None
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        """The `keel repro --json` form of one stage."""
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "reasons": list(self.reasons),
            "run": self.run,
            "restored": list(self.restored),
            "error": self.error,
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ReproResult:
    """Every selected stage's outcome, in topological order."""

    stages: tuple[StageResult, ...]

    @property
    def ok(self) -> bool:
        """True when no stage failed or was skipped."""
        return not any(s.outcome in (Outcome.FAILED, Outcome.SKIPPED) for s in self.stages)

    def to_json(self) -> dict[str, JsonValue]:
        """The `keel repro --json` document."""
        counts = {o.value: sum(s.outcome is o for s in self.stages) for o in Outcome}
        return {"ok": self.ok, "counts": dict(counts),
                "stages": [s.to_json() for s in self.stages]}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ReproOptions:
    """Where and how: ``--executor``, ``--jobs``, ``--scheduler`` and ``--force``."""

    executor: str = "local"
    jobs: int | None = None
    scheduler: str | None = None
    force: bool = False


def repro(
    ws: Workspace,
    targets: Sequence[str] = (),
    *,
    options: ReproOptions | None = None,
    on_event: EventCallback = _no_event,
) -> ReproResult:
    """Bring ``targets`` (default: every stage) and everything upstream of them up to date.

    Events: ``("start", {name, reasons})`` when a stage is handed to the pool, and
    ``("stage", StageResult.to_json())`` when one is done.

    Raises:
        keel.errors.ValidationError: keel.yaml is invalid, outputs overlap, or a cycle.
        keel.errors.UserError: an unknown target or executor (before anything runs).
    """
    options = options or ReproOptions()
    pipeline = load_pipeline(ws)
    selection = pipeline.graph.select(targets)
    with open_pool(options.executor, jobs=options.jobs, scheduler=options.scheduler) as pool:
        state = StageState.load(ws)
        ctx = KeyContext(ws, EnvProbe(ws, state.env_digest))
        runner = _Runner(ws, pool)
        scheduler = _Scheduler(
            Judge(ws, pipeline=pipeline, state=state, ctx=ctx),
            selection=selection,
            runner=runner,
            force=options.force,
            on_event=on_event,
        )
        try:
            scheduler.run()
        finally:
            runner.close()
            state.flush()
            ctx.save()
    return ReproResult(stages=tuple(scheduler.results[n] for n in selection))


class _Runner:
    """Hands stage tasks to the pool: inline for ``local``, else from a helper thread each."""

    def __init__(self, ws: Workspace, pool: TaskPool) -> None:
        self.ws = ws
        self.pool = pool
        self._threads = (
            ThreadPoolExecutor(max_workers=pool.parallelism) if pool.name != "local" else None
        )

    def submit(self, task: StageTask) -> Future[StageRun]:
        """Start ``task``; the local pool has finished it when this returns."""
        if self._threads is not None:
            return self._threads.submit(self._remote, task)
        done: Future[StageRun] = Future()
        try:
            done.set_result(run_stage_in(self.ws, task))
        except Exception as exc:  # isolate one stage's failure; the others go on
            done.set_exception(exc)
        return done

    def _remote(self, task: StageTask) -> StageRun:
        # NOTE: a fresh callable per call: stages are handed over one per `run` call, from
        # several threads, so nothing may tie a task's name to the callable alone.
        call = functools.partial(run_stage)
        for done in self.pool.run(call, [task]):
            if done.error is not None:
                raise done.error
            if done.result is not None:
                return done.result
        raise ExecutionError(f"the {self.pool.name} pool returned no result for a stage")

    def close(self) -> None:
        """Wait for the stages still running, then release the helper threads."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Started:
    name: str
    components: Components
    reasons: tuple[str, ...]


class _Scheduler:
    """Starts each stage once its upstream is done; records what each one did."""

    def __init__(
        self,
        judge: Judge,
        *,
        selection: Sequence[str],
        runner: _Runner,
        force: bool,
        on_event: EventCallback,
    ) -> None:
        self.judge = judge
        self.pipeline: Pipeline = judge.pipeline
        self.state: StageState = judge.state
        self.runner = runner
        self.force = force
        self.on_event = on_event
        self.results: dict[str, StageResult] = {}
        chosen = set(selection)
        self.position = {name: i for i, name in enumerate(selection)}
        self.upstream = {n: [u for u in self.pipeline.stages[n].upstream if u in chosen]
                         for n in selection}  # fmt: skip
        self.waiting = {n: len(ups) for n, ups in self.upstream.items()}
        self.downstream: dict[str, list[str]] = {}
        for name, ups in self.upstream.items():
            for up in ups:
                self.downstream.setdefault(up, []).append(name)
        self.ready = [(self.position[n], n) for n, count in self.waiting.items() if count == 0]
        heapq.heapify(self.ready)
        self.running: dict[Future[StageRun], _Started] = {}
        self._flushed = time.monotonic()

    def run(self) -> None:
        """Start what is ready, wait for a stage to finish, repeat until all are done."""
        while self.ready or self.running:
            while self.ready:
                self._start(heapq.heappop(self.ready)[1])
            if self.running:
                finished, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
                for future in finished:
                    self._finish(self.running.pop(future), future)

    def _complete(self, result: StageResult) -> None:
        self.results[result.name] = result
        self.on_event("stage", result.to_json())
        for down in self.downstream.get(result.name, ()):
            self.waiting[down] -= 1
            if self.waiting[down] == 0:
                heapq.heappush(self.ready, (self.position[down], down))
        if self.state.dirty and time.monotonic() - self._flushed > FLUSH_EVERY_S:
            self.state.flush()
            self._flushed = time.monotonic()

    def _start(self, name: str) -> None:
        stage = self.pipeline.stages[name]
        broken = [u for u in self.upstream[name] if self.results[u].outcome in _BROKEN]
        if broken:
            verb = "failed" if self.results[broken[0]].outcome is Outcome.FAILED else "was skipped"
            self._complete(StageResult(name=name, outcome=Outcome.SKIPPED,
                                       reasons=(f"upstream {broken[0]} {verb}",)))  # fmt: skip
            return
        components = self.judge.ctx.components(stage)
        extra: list[str] = []
        hit = None if self.force else self.state.hit(name, components.key)
        if hit is not None:
            problem = self._use_hit(stage, components=components, hit=hit)
            if problem is None:
                return
            extra.append(problem)
        reasons = ["forced (--force)"] if self.force else self.judge.reasons(stage, components)
        self._submit(stage, components=components, reasons=(*extra, *reasons))

    def _use_hit(self, stage: StageDef, *, components: Components, hit: Hit) -> str | None:
        """Finish a stage from its cached run; a reason to run it when that is impossible."""
        restore = self.judge.outputs_to_restore(hit.outputs)
        try:
            restore_outputs(self.judge.ws, run_id=hit.run, paths=[p for p, _ in restore])
            if restore:
                self.judge.ctx.forget()
        except KeelError as exc:
            log.warning("outputs of run %s not restored", hit.run, exc_info=True)
            return f"the outputs of cached run {hit.run} cannot be restored ({exc})"
        reason = self.judge.up_to_date_reason(stage.name, run=hit.run, key=hit.key)
        latest = self.state.latest(stage.name)
        if latest is None or latest.key != hit.key:
            self.state.record_success(
                stage.name, components=components, run=hit.run, outputs=hit.outputs
            )
        reasons = [restore_reason(p, what, run=hit.run, done=True) for p, what in restore]
        self._complete(StageResult(
            name=stage.name, outcome=Outcome.RESTORED if restore else Outcome.UP_TO_DATE,
            reasons=tuple(reasons) or (reason,), run=hit.run, restored=tuple(p for p, _ in restore),
        ))  # fmt: skip
        return None

    def _submit(self, stage: StageDef, *, components: Components, reasons: tuple[str, ...]) -> None:
        from keel.ops.run import RunRequest, resolve_plan

        ws = self.judge.ws
        try:
            plan = resolve_plan(ws, RunRequest(experiment=stage.name))
        except UserError as exc:
            self._fail(stage.name, reasons, error=str(exc).replace("\n", "; "))
            return
        facet: dict[str, JsonValue] = {
            "name": stage.name,
            "key": components.key,
            "components": components.to_json(),
            "config": self.judge.configs().get(stage.name),
            "env_fingerprint": self.judge.ctx.env.fingerprint,
            "pipeline": self.pipeline.key,
        }
        task = StageTask(facts=ws.facts, profile=ws.profile, environ=dict(ws.environ), plan=plan,
                         stage=facet, pool=self.runner.pool.name,
                         parallelism=self.runner.pool.parallelism)  # fmt: skip
        self.on_event("start", {"name": stage.name, "reasons": list(reasons)})
        future = self.runner.submit(task)
        started = _Started(name=stage.name, components=components, reasons=reasons)
        if future.done():  # the local pool ran it already
            self._finish(started, future)
        else:
            self.running[future] = started

    def _finish(self, started: _Started, future: Future[StageRun]) -> None:
        name = started.name
        try:
            done = future.result()
        except Exception as exc:  # isolate one stage's failure; the others go on
            if not isinstance(exc, UserError):
                log.warning("stage %s could not run", name, exc_info=True)
            error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self._fail(name, started.reasons, error=error)
            return
        self.judge.ctx.forget()  # the stage wrote to the tree
        manifest = done.manifest
        run = manifest.get("run")
        status = run.get("status") if isinstance(run, dict) else None
        flags = manifest.get("flags")
        flag_list = tuple(map(str, flags)) if isinstance(flags, list) else ()
        if status != "succeeded":
            self.state.record_failure(name, key=started.components.key, run=done.run_id)
            error = self._failure(done, run)
            self._fail(name, started.reasons, error=error, run=done.run_id, flags=flag_list)
            return
        code_now = self.judge.ctx.code_of(self.pipeline.stages[name])
        if code_now != started.components.code:
            flag_list += ("not cached: its code changed while it ran",)
        elif not run_usable(manifest, started.components):
            flag_list += ("not cached: an input changed while it ran",)
        else:
            self.state.record_success(name, components=started.components, run=done.run_id,
                                      outputs=output_digests(manifest))  # fmt: skip
            self.state.remember_env(self.judge.ctx.env.fingerprint, started.components.env)
        self._complete(StageResult(name=name, outcome=Outcome.RAN, reasons=started.reasons,
                                   run=done.run_id, flags=flag_list))  # fmt: skip

    def _fail(
        self,
        name: str,
        reasons: tuple[str, ...],
        *,
        error: str,
        run: str | None = None,
        flags: tuple[str, ...] = (),
    ) -> None:
        self._complete(StageResult(name=name, outcome=Outcome.FAILED, reasons=reasons,
                                   run=run, flags=flags, error=error))  # fmt: skip

    def _failure(self, done: StageRun, run: JsonValue) -> str:
        info = run if isinstance(run, dict) else {}
        text = f"run {done.run_id} {info.get('status')}"
        if info.get("exit_code") is not None:
            text += f" with exit code {info.get('exit_code')}"
        tail = stderr_tail(self.judge.ws, done.manifest)
        return f"{text}: {tail}" if tail else text


_BROKEN = (Outcome.FAILED, Outcome.SKIPPED)
