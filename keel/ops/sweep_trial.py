"""One sweep trial, as a task pool runs it: a picklable payload in, a small result out.

:func:`run_trial` is a top-level function so that any pool (this process, local worker
processes, Dask workers) can run it. It makes the trial's folder (hard links to the frozen
tree), writes its fold file, runs the frozen plan with :func:`keel.ops.run.execute_plan` and
points the trial's ref at the run: at its start record as soon as the run starts (so a worker
that dies leaves a run that later reads as lost) and at its seal when it ends.

Per worker process, the workspace (keyed by its arguments), the sandbox listing and the fold
lists are built once. Trials never open the metadata index: the run's ``pending/`` ref is
ingested on the next read, as for `keel run`.

When the sweep is interrupted, the orchestrator creates the sandbox's stop file: a trial not
yet started then returns ``cancelled`` without running, and a running one stops its command
(SIGINT to the command's process group), which seals it ``killed``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from keel.base.canonical import JsonValue, loads
from keel.base.digest import Digest
from keel.errors import UserError
from keel.execute.local import GRACE_S
from keel.execute.pool import current_worker
from keel.model.manifest import ExecutorInfo, Manifest
from keel.model.plan import RunPlan
from keel.model.run import RunStatus
from keel.model.sweeprecord import trial_ref
from keel.ops.run import ExecOptions, execute_plan
from keel.ops.sweep_sandbox import STOP, TRIALS, link_tree
from keel.ops.workspace import STORE_ENV, Workspace
from keel.resolve.plancache import _plan_from_json
from keel.resolve.sweep import fold_indices
from keel.spec.facts import ProjectFacts

CANCELLED = "cancelled"
ERROR = "error"
FOLD_FILE = Path(".keel") / "fold.json"
FOLD_FILE_ENV = "KEEL_FOLD_FILE"
_POLL_S = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialContext:
    """What every trial of one sweep run shares (sent with each task; a few KB)."""

    sweep_id: str
    store_root: str
    project_root: str
    spec_file: str
    project: str
    spec_digest: str
    profile: str
    environ: dict[str, str]
    sandbox: str
    subdir: str
    code: dict[str, JsonValue]
    executor: str
    parallelism: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialTask:
    """One trial to run: its frozen plan, what its manifest records about the sweep, its fold.

    ``indices`` is the digest of the stored per-fold test-index lists.
    """

    context: TrialContext
    index: int
    key: str
    plan: dict[str, JsonValue]
    info: dict[str, JsonValue]
    fold: int | None = None
    indices: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialResult:
    """How a trial ended: ``status`` is a run status, ``cancelled`` (never started) or
    ``error`` (keel failed around the run; ``error`` says why). ``stopped``: ended by an
    interrupt of the sweep."""

    index: int
    key: str
    status: str
    run_id: str | None = None
    digest: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    stopped: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The result as JSON (progress events, `keel sweep --json`)."""
        return {
            "index": self.index,
            "key": self.key,
            "status": self.status,
            "run": self.run_id,
            "digest": self.digest,
            "metrics": dict(self.metrics),
            "error": self.error,
        }


def run_trial(task: TrialTask) -> TrialResult:
    """Run one trial in its own folder and point its ref at the run (see the module docs)."""
    ctx = task.context
    sandbox = Path(ctx.sandbox)
    if (sandbox / STOP).exists():
        return TrialResult(index=task.index, key=task.key, status=CANCELLED)
    ws = _workspace(ctx)
    folder = sandbox / TRIALS / str(task.index)
    shutil.rmtree(folder, ignore_errors=True)  # left by a worker that died
    try:
        link_tree(sandbox, folder)
        plan = _trial_plan(ws, task, folder)
        options = ExecOptions(
            code=ctx.code,
            executor=ExecutorInfo(
                name=ctx.executor, parallelism=ctx.parallelism, worker=current_worker()
            ),
            sweep=task.info,
            amend=_flagged(ctx.flags),
        )
        with _WATCHER.watching(sandbox / STOP) as fired:
            outcome = execute_plan(ws, plan, options=options)
        ws.objects.set_ref(trial_ref(ctx.sweep_id, task.key), outcome.digest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _result(task, outcome.manifest, str(outcome.digest), fired())


def _result(task: TrialTask, m: Manifest, digest: str, fired: bool) -> TrialResult:
    stopped = m.run.status is RunStatus.KILLED and (
        fired or any(f.startswith("run killed: stopped by SIG") for f in m.flags)
    )
    return TrialResult(
        index=task.index,
        key=task.key,
        status=m.run.status.value,
        run_id=m.run.id,
        digest=digest,
        metrics={name: rec.value for name, rec in m.metrics.items()},
        stopped=stopped,
    )


def _flagged(flags: tuple[str, ...]) -> Callable[[Manifest], Manifest]:
    def amend(manifest: Manifest) -> Manifest:
        return replace(manifest, flags=(*manifest.flags, *flags)) if flags else manifest

    return amend


_WORKSPACES: dict[tuple[object, ...], Workspace] = {}  # per worker process, keyed by arguments
_FOLDS: dict[str, list[list[int]]] = {}  # per worker process: test lists by digest


def _workspace(ctx: TrialContext) -> Workspace:
    """The workspace trials of this sweep seal into, built once per process.

    It is built from the sweep's facts, not from keel.yaml, which a trial never reads; its
    folder is the user's project, so the environment cache there is shared.
    """
    key = (ctx.project_root, ctx.spec_file, ctx.store_root, ctx.profile, ctx.project,
           ctx.spec_digest, tuple(sorted(ctx.environ.items())))  # fmt: skip
    ws = _WORKSPACES.get(key)
    if ws is None:
        facts = ProjectFacts(
            name=ctx.project,
            spec_file=Path(ctx.spec_file),
            digest=ctx.spec_digest,
            profiles=(ctx.profile,),
            stores={ctx.profile: (ctx.store_root, None)},
        )
        environ = {**ctx.environ, STORE_ENV: ctx.store_root}
        ws = _WORKSPACES[key] = Workspace(facts=facts, profile=ctx.profile, environ=environ)
    return ws


def _trial_plan(ws: Workspace, task: TrialTask, folder: Path) -> RunPlan:
    """The frozen plan, moved into the trial's folder (and given its fold file)."""
    data = dict(task.plan)
    old = str(data["project_root"])
    root = folder / task.context.subdir if task.context.subdir != "." else folder
    for name in ("cwd", "spec_file"):
        data[name] = str(root / os.path.relpath(str(data[name]), old))
    data["project_root"] = str(root)
    plan = _plan_from_json(data)
    _unshare(root, [*plan.outputs, *([plan.metrics_file] if plan.metrics_file else [])])
    if task.fold is None or task.indices is None:
        return plan
    path = root / FOLD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    test_lists = _fold_lists(ws, task.indices)
    train, test = fold_indices(test_lists, task.fold)
    body = {"fold": task.fold, "k": len(test_lists), "train": train, "test": test}
    path.write_text(json.dumps(body, separators=(",", ":")), "utf-8")
    return replace(plan, extra_env={**plan.extra_env, FOLD_FILE_ENV: str(path)})


def _unshare(root: Path, paths: list[str]) -> None:
    """Give the trial its own copy of each declared output that the frozen tree already has,
    so that writing it in place cannot change the file every trial links to."""
    for rel in paths:
        target = root / rel
        if target.is_symlink() or not target.exists():
            continue
        files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()
                                                   and not p.is_symlink()]  # fmt: skip
        for path in files:
            if path.stat().st_nlink > 1:
                copy = path.with_name(path.name + ".keel-copy")
                shutil.copy2(path, copy)
                os.replace(copy, path)


def _fold_lists(ws: Workspace, digest: str) -> list[list[int]]:
    found = _FOLDS.get(digest)
    if found is None:
        data = loads(ws.objects.get_bytes(Digest.parse(digest)))
        if not isinstance(data, list):
            raise UserError(f"fold partition {digest} is not a list of index lists")
        found = _FOLDS[digest] = [
            [i for i in part if isinstance(i, int)] for part in data if isinstance(part, list)
        ]
    return found


class _Watcher:
    """Stops trials' commands once their sweep's stop file appears (one thread per process).

    A trial registers its stop file for as long as it runs. Every ``_POLL_S`` the thread
    checks the registered files; once one exists, the commands of this process's trials —
    children that lead their own session (see LocalExecutor) — get SIGINT (again at each poll,
    in case one started after the file appeared), then SIGKILL once ``GRACE_S`` has passed.
    The thread is started on first use and lives as long as the worker process.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._watched: dict[Path, int] = {}
        self._fired: dict[Path, float] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, stop: Path) -> Iterator[Callable[[], bool]]:
        """Watch ``stop`` while the block runs; yields "has it fired for this trial?"."""
        with self._lock:
            self._watched[stop] = self._watched.get(stop, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="keel-stop", daemon=True)
                self._thread.start()
            self._lock.notify()
        fired = False

        def check() -> bool:
            return fired

        try:
            yield check
        finally:
            with self._lock:
                fired = stop in self._fired
                self._watched[stop] -= 1
                if not self._watched[stop]:
                    del self._watched[stop]
                    self._fired.pop(stop, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._watched:
                    self._lock.wait()
                due = [stop for stop in self._watched if stop in self._fired or stop.exists()]
                waited = max((self._fired.get(stop, 0.0) for stop in due), default=0.0)
                for stop in due:
                    self._fired[stop] = self._fired.get(stop, 0.0) + _POLL_S
            if due:
                _interrupt_children(signal.SIGKILL if waited >= GRACE_S else signal.SIGINT)
            time.sleep(_POLL_S)


_WATCHER = _Watcher()


def _interrupt_children(sig: signal.Signals) -> None:
    import psutil

    for child in psutil.Process().children():
        try:
            if os.getsid(child.pid) == child.pid:
                os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            continue
