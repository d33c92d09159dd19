"""Pipelines: experiments linked by what they read and write, run and cached stage by stage.

`keel status` (:func:`pipeline_status`) says, for every stage, whether `keel repro` would run
it and exactly why; `keel repro` (:func:`keel.ops.pipeline_run.repro`) runs what is needed in
topological order. A stage is up to date when its cache key (:mod:`keel.ops.stagekey`)
matches one of its earlier *successful* runs; its outputs are then restored from the store
if they are missing or differ.

What makes `keel status` fast on 10,000 stages: the pipeline itself comes from a cache keyed by
keel.yaml's bytes (:mod:`keel.ops.pipeline_cache`), so keel.yaml is neither parsed nor
resolved; file digests come from stat caches (one ``stat`` per unchanged file); the
environment is a fingerprint; and every stage's last results sit in one state file
(:mod:`keel.ops.pipeline_state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue
from keel.capture.codehash import MISSING
from keel.ops.pipeline_cache import Pipeline, StageDef, load_pipeline
from keel.ops.pipeline_explain import explain
from keel.ops.pipeline_state import Latest, StageState
from keel.ops.stagekey import PENDING, Components, EnvProbe, KeyContext, manifest_json

if TYPE_CHECKING:
    from keel.ops.workspace import Workspace


class Action(StrEnum):
    """What `keel repro` would do with a stage."""

    UP_TO_DATE = "up-to-date"
    RESTORE = "restore"
    RUN = "run"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageStatus:
    """One stage's verdict: the action, why, and the cached run it matches (if any).

    ``outputs`` are the digests its outputs will have once the action is done (known for
    up-to-date and restored stages); downstream stages are judged against them.
    """

    name: str
    action: Action
    reasons: tuple[str, ...] = ()
    run: str | None = None
    key: str | None = None
    restore: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    outputs: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        """The `keel status --json` form of one stage."""
        return {
            "name": self.name,
            "action": self.action.value,
            "reasons": list(self.reasons),
            "run": self.run,
            "key": self.key,
            "restore": list(self.restore),
            "upstream": list(self.upstream),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineStatus:
    """Every selected stage's verdict, in topological order."""

    stages: tuple[StageStatus, ...]

    @property
    def up_to_date(self) -> bool:
        """True when `keel repro` would neither run nor restore anything."""
        return all(s.action is Action.UP_TO_DATE for s in self.stages)

    def to_json(self) -> dict[str, JsonValue]:
        """The `keel status --json` document."""
        counts = {a.value: sum(s.action is a for s in self.stages) for a in Action}
        return {
            "up_to_date": self.up_to_date,
            "counts": dict(counts),
            "stages": [s.to_json() for s in self.stages],
        }


def status_document(
    ws: Workspace, targets: Sequence[str] = (), *, force: bool = False
) -> dict[str, JsonValue]:
    """:func:`pipeline_status` as its JSON document, answered from the status memo
    (:mod:`keel.ops.pipeline_memo`) when nothing it depends on changed.

    Raises:
        keel.errors.ValidationError: keel.yaml is invalid, outputs overlap, or a cycle.
        keel.errors.UserError: an unknown target.
    """
    from keel.ops.pipeline_memo import StatusMemo

    memo = StatusMemo(ws, targets, force=force)
    doc = memo.load()
    if doc is None:
        status, ctx = _status(ws, targets, force=force)
        doc = status.to_json()
        memo.save(doc, ctx)
    return doc


def pipeline_status(
    ws: Workspace, targets: Sequence[str] = (), *, force: bool = False
) -> PipelineStatus:
    """What `keel repro TARGETS` would do and why, without running anything.

    Raises:
        keel.errors.ValidationError: keel.yaml is invalid, outputs overlap, or a cycle.
        keel.errors.UserError: an unknown target.
    """
    return _status(ws, targets, force=force)[0]


def _status(
    ws: Workspace, targets: Sequence[str], *, force: bool
) -> tuple[PipelineStatus, KeyContext]:
    pipeline = load_pipeline(ws)
    selection = pipeline.graph.select(targets)
    state = StageState.load(ws)
    ctx = KeyContext(ws, EnvProbe(ws, state.env_digest))
    judge = Judge(ws, pipeline=pipeline, state=state, ctx=ctx)
    verdicts: dict[str, StageStatus] = {}
    for name in selection:
        stage = pipeline.stages[name]
        if force:
            verdicts[name] = _to_run(stage, ["forced (--force)"])
            continue
        verdicts[name] = judge.verdict(stage, expected_inputs(pipeline, stage, verdicts=verdicts))
    ctx.save()
    return PipelineStatus(stages=tuple(verdicts[n] for n in selection)), ctx


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """A stage's inputs as its upstream stages will leave them (see :func:`expected_inputs`)."""

    known: dict[str, str] = field(default_factory=dict)
    waiting: tuple[str, ...] = ()  # reasons: "upstream X will run"


def expected_inputs(
    pipeline: Pipeline, stage: StageDef, *, verdicts: Mapping[str, StageStatus]
) -> Expected:
    """Digests of the stage's inputs as its upstream stages will leave them.

    An input an upstream stage will restore is known (the restored output's digest); one it
    will rewrite, or that overlaps what it restores, is ``pending``.
    """
    if all(_settled(verdicts.get(up)) for up in stage.upstream):
        return _NOTHING_EXPECTED
    known: dict[str, str] = {}
    waiting: list[str] = []
    for up in stage.upstream:
        verdict = verdicts.get(up)
        if verdict is None or verdict.action is Action.UP_TO_DATE:
            continue
        producer = pipeline.stages[up]
        pending = False
        for path in stage.inputs:
            for out in producer.outputs:
                if path == out and verdict.action is Action.RESTORE and out in verdict.outputs:
                    known[path] = verdict.outputs[out]
                elif path == out or path.startswith(out + "/") or out.startswith(path + "/"):
                    known[path] = PENDING
                    pending = True
        if verdict.action is Action.RUN:
            for path, ref in stage.datasets:
                if ref.partition("@")[0] in producer.registers:
                    known[path] = PENDING
                    pending = True
        if pending:
            verb = "run" if verdict.action is Action.RUN else "restore its outputs first"
            waiting.append(f"upstream {up} will {verb}")
    return Expected(known=known, waiting=tuple(waiting))


_NOTHING_EXPECTED = Expected()


def _settled(verdict: StageStatus | None) -> bool:
    return verdict is None or verdict.action is Action.UP_TO_DATE


class Judge:
    """Decides stages' verdicts against the stage state (one per command)."""

    def __init__(
        self, ws: Workspace, *, pipeline: Pipeline, state: StageState, ctx: KeyContext
    ) -> None:
        self.ws = ws
        self.pipeline = pipeline
        self.state = state
        self.ctx = ctx
        self._manifests: dict[str, dict[str, JsonValue] | None] = {}
        self._configs: dict[str, JsonValue] | None = None

    def verdict(self, stage: StageDef, expected: Expected | None = None) -> StageStatus:
        """The stage's verdict, its inputs as ``expected`` says (else as they are now)."""
        expected = expected or _NOTHING_EXPECTED
        components = self.ctx.components(stage, known=expected.known)
        if not components.complete:
            reasons = [*expected.waiting, *self.reasons(stage, components)]
            return _to_run(stage, reasons)
        key = components.key
        hit = self.state.hit(stage.name, key)
        if hit is None:
            return _to_run(stage, self.reasons(stage, components), key=key)
        restore = self.outputs_to_restore(hit.outputs)
        reasons = [restore_reason(path, what, run=hit.run, done=False) for path, what in restore]
        return StageStatus(
            name=stage.name,
            action=Action.RESTORE if restore else Action.UP_TO_DATE,
            reasons=tuple(reasons) or (self.up_to_date_reason(stage.name, run=hit.run, key=key),),
            run=hit.run,
            key=key,
            restore=tuple(p for p, _ in restore),
            upstream=stage.upstream,
            outputs=hit.outputs,
        )

    def outputs_to_restore(self, outputs: Mapping[str, str]) -> list[tuple[str, str]]:
        """``(path, "missing" or "differs")`` for each cached output not in place now."""
        found: list[tuple[str, str]] = []
        for path, digest in outputs.items():
            if digest == MISSING:
                continue
            now = self.ctx.input_digest(path)
            if now != digest:
                found.append((path, "missing" if now == MISSING else "differs"))
        return found

    def up_to_date_reason(self, name: str, *, run: str, key: str) -> str:
        """``up to date``, naming the earlier run when the key is not the latest one."""
        latest = self.state.latest_key(name)
        if latest is not None and latest != key:
            return f"up to date (matches earlier run {run})"
        return "up to date"

    def reasons(self, stage: StageDef, components: Components) -> list[str]:
        """Why the stage would run, compared with its latest success."""
        latest = self.state.latest(stage.name)
        recorded = latest.components if latest is not None else None
        reasons = explain(components, recorded, sources=_Sources(self, stage.name, latest=latest))
        failed = self.state.failed(stage.name)
        if failed is not None and components.complete and failed[0] == components.key:
            reasons.append(f"its last run {failed[1]} failed")
        return reasons

    def manifest(self, run: str) -> dict[str, JsonValue] | None:
        """A run's manifest as JSON (read once)."""
        if run not in self._manifests:
            self._manifests[run] = manifest_json(self.ws, run)
        return self._manifests[run]

    def configs(self) -> dict[str, JsonValue]:
        """Every stage's resolved config now (read once)."""
        if self._configs is None:
            self._configs = self.pipeline.configs()
        return self._configs


def restore_reason(path: str, what: str, *, run: str, done: bool) -> str:
    """Why an output is (or will be) restored from the cached run ``run``."""
    if what == "missing":
        return (
            f"output {path} missing: restored from run {run}"
            if done
            else (f"output {path} missing (will be restored)")
        )
    if done:
        return f"output {path} differed from run {run}'s: replaced by the recorded one"
    return f"output {path} differs from run {run}'s (will be restored)"


def _to_run(stage: StageDef, reasons: Sequence[str], *, key: str | None = None) -> StageStatus:
    return StageStatus(
        name=stage.name,
        action=Action.RUN,
        reasons=tuple(dict.fromkeys(reasons)),
        key=key,
        upstream=stage.upstream,
    )


class _Sources:
    """Details behind a stage's digests, read only when an explanation needs them."""

    def __init__(self, judge: Judge, name: str, *, latest: Latest | None) -> None:
        self._judge = judge
        self._name = name
        self._latest = latest

    def _recorded(self, part: str) -> Mapping[str, JsonValue] | None:
        manifest = self._judge.manifest(self._latest.run) if self._latest else None
        if manifest is None:
            return None
        if part == "config":
            facet = manifest.get("stage")
            found = facet.get("config") if isinstance(facet, dict) else None
        else:
            found = manifest.get(part)
        return found if isinstance(found, dict) else None

    def current_config(self) -> Mapping[str, JsonValue] | None:
        found = self._judge.configs().get(self._name)
        return found if isinstance(found, dict) else None

    def recorded_config(self) -> Mapping[str, JsonValue] | None:
        return self._recorded("config")

    def current_env(self) -> Mapping[str, JsonValue] | None:
        return self._judge.ctx.env.facts()

    def recorded_env(self) -> Mapping[str, JsonValue] | None:
        return self._recorded("environment")
