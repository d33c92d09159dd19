"""The reproduce use case: re-execute a sealed run from its manifest alone, then judge the result.

1. The run reference is resolved and its manifest loaded. A run still going, a lost run, a
   missing manifest or code that was never captured is ``NOT_REPRODUCIBLE``, with the reason.
2. The recorded code is restored in a sandbox (a detached worktree at the recorded commit, the
   patch applied, untracked files written back) and the recorded inputs are put in place. A run,
   patch, file or input this store lacks is first fetched from the default remote, if one is
   configured (:mod:`keel.ops.remote`).
3. The plan is built from the manifest — never from today's keel.yaml: the parameters with their
   recorded sources, the seed, the recorded argv or entrypoint, the working folder, and inputs,
   outputs, metrics and env allow-list from the recorded experiment definition.
4. The allow-listed variables get their recorded values (ones recorded as ``<redacted>`` keep
   today's value); ``PYTHONHASHSEED`` is the user's recorded value, or derived from the seed
   again. ``--env recorded`` runs in a rebuilt virtual environment (:mod:`keel.ops.rebuild_env`).
5. The plan executes as a new sealed run with ``run.reproduces`` set. Just before it is sealed,
   the verdict, the differences, the environment difference and the time taken are written to
   its ``reproduction`` slot (:mod:`keel.compare.verdict`).
6. The sandbox is removed (unless ``keep``).

(A little over 300 lines: every step shares the plumbing that turns a failure into a
NOT_REPRODUCIBLE reason, which splitting would spread over modules.)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.canonical import JsonValue, loads
from keel.base.digest import Digest
from keel.base.suggest import did_you_mean
from keel.compare.verdict import Verdict, environment_changes, judge, not_reproducible
from keel.errors import (
    CorruptObject,
    ExecutionError,
    KeelError,
    RunRefError,
    StoreError,
    UserError,
)
from keel.execute.executor import OutputCallback, _ignore_output
from keel.model.manifest import Manifest
from keel.model.run import RunStatus
from keel.ops.rebuild_env import rebuild_env
from keel.ops.refs import resolve_ref
from keel.ops.replay import Sandbox, recorded_environ, recorded_plan, restore_inputs
from keel.ops.workspace import Workspace

if TYPE_CHECKING:
    from keel.compare.noise import NoiseProfile
    from keel.ops.run import EventCallback, RunOutcome

log = logging.getLogger(__name__)

TAG = "reproduction"
_RUN_ID = re.compile(r"^[0-9a-z]{2,32}$")


class EnvMode(StrEnum):
    """Which Python environment the reproduction runs in."""

    CURRENT = "current"
    RECORDED = "recorded"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReproduceRequest:
    """What to reproduce, how strictly, and in which environment."""

    ref: str
    tolerances: Mapping[str, float] = field(default_factory=dict)
    env: EnvMode = EnvMode.CURRENT
    keep: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Reproduction:
    """The outcome of a reproduce: the verdict and the record kept in the reproduction's manifest.

    ``outcome`` is the sealed reproduction (None when it could not run); ``sandbox`` is the kept
    folder (``keep``).
    """

    run_id: str
    verdict: Verdict
    record: dict[str, JsonValue]
    outcome: RunOutcome | None = None
    sandbox: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 reproduced (exactly or within tolerance), 1 diverged, 2 not reproducible."""
        return self.verdict.exit_code

    def to_json(self) -> dict[str, JsonValue]:
        """The record plus the reproduction's id and seal, the kept folder and the exit code."""
        m = self.outcome.manifest if self.outcome else None
        return {
            **self.record,
            "run": self.run_id,
            "reproduction": m.run.id if m else None,
            "digest": str(self.outcome.digest) if self.outcome else None,
            "sandbox": str(self.sandbox) if self.sandbox else None,
            "exit_code": self.exit_code,
        }


class _NotReproducible(Exception):
    """The run cannot be re-executed; the message is the reason."""


def _no_event(kind: str, data: Mapping[str, JsonValue]) -> None:
    """The default progress callback: do nothing."""


def parse_tolerances(values: Sequence[str]) -> dict[str, float]:
    """``["loss=0.01", ...]`` → ``{"loss": 0.01}``.

    Raises:
        keel.errors.UserError: not ``NAME=ABS`` with ABS a number ≥ 0.
    """
    out: dict[str, float] = {}
    for item in values:
        name, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not sep or not name.strip() or not value >= 0 or value == float("inf"):
            raise UserError(f"--tolerance {item!r}: expected NAME=ABS with ABS a number ≥ 0, "
                            "e.g. --tolerance accuracy=0.01")  # fmt: skip
        out[name.strip()] = value
    return out


def reproduce(
    ws: Workspace,
    request: ReproduceRequest,
    *,
    on_output: OutputCallback = _ignore_output,
    on_event: EventCallback = _no_event,
) -> Reproduction:
    """Re-execute the run ``request.ref`` names and judge the result (see the module docstring).

    Raises:
        keel.errors.RunRefError: unknown or ambiguous run reference.
        keel.errors.UserError: a tolerance names no metric of the run.
    """
    started = time.monotonic()
    run_id, status, seal = _locate_or_fetch(ws, request.ref)
    try:
        raw = _raw_manifest(ws, run_id, status, seal)
        _fetch_missing(ws, raw, run_id, on_event)
    except _NotReproducible as exc:
        return _failed(run_id, str(exc), request=request, started=started)
    # NOTE: the checkout (one file write per file, in git) starts first; validating the manifest
    # and loading the execution machinery overlap with it (about 0.3 s saved here).
    with ThreadPoolExecutor(max_workers=1) as pool:
        restoring = pool.submit(_restore_code, ws, raw, run_id, on_event)
        try:
            original = _validated(raw, run_id)
            _check_tolerances(original, request.tolerances)
            sandbox = _with_inputs(ws, original, restoring.result())
            outcome = _replay(ws, original, sandbox, request=request, seal=str(seal),
                              started=started, on_output=on_output, on_event=on_event)  # fmt: skip
        except _NotReproducible as exc:
            kept = _done(restoring) if request.keep else None
            return _failed(run_id, str(exc), request=request, started=started, seal=seal,
                           sandbox=kept)  # fmt: skip
        finally:
            if not request.keep and (done := _done(restoring)) is not None:
                done.remove()
    record = outcome.manifest.reproduction or {}
    return Reproduction(
        run_id=run_id,
        verdict=Verdict(str(record.get("verdict"))),
        record=record,
        outcome=outcome,
        sandbox=sandbox.path if request.keep else None,
    )


def _done(restoring: Future[Sandbox]) -> Sandbox | None:
    """The restored sandbox once the checkout has ended, or None when it failed."""
    return None if restoring.exception() is not None else restoring.result()


def _replay(
    ws: Workspace,
    original: Manifest,
    sandbox: Sandbox,
    *,
    request: ReproduceRequest,
    seal: str,
    started: float,
    on_output: OutputCallback,
    on_event: EventCallback,
) -> RunOutcome:
    """Execute the recorded plan in ``sandbox``; the verdict is recorded just before sealing."""
    from keel.ops.run import ExecOptions, execute_plan  # loaded while the checkout runs

    python = _python(ws, original, request.env, on_event)
    with _reason("the recorded run cannot be replayed"):
        plan = recorded_plan(original, sandbox, launcher=python is not None)
    options = ExecOptions(
        environ=recorded_environ(ws.environ, original,
                                 venv=python.parent.parent if python else None),
        python=str(python) if python else None,
        reproduces=original.run.id,
        amend=partial(_amend, original=original, seal=seal, tolerances=request.tolerances,
                      noise=_noise(ws, original), env=request.env, started=started),
    )  # fmt: skip
    with _reason("the reproduction could not start"):
        return execute_plan(ws, replace(plan, tags=(*plan.tags, TAG)), options=options,
                            on_output=on_output, on_event=on_event)  # fmt: skip


def _failed(
    run_id: str,
    reason: str,
    *,
    request: ReproduceRequest,
    started: float,
    seal: Digest | None = None,
    sandbox: Sandbox | None = None,
) -> Reproduction:
    """NOT_REPRODUCIBLE, with the same record keys as a run that executed (nothing is sealed)."""
    judgement = not_reproducible(reason)
    record: dict[str, JsonValue] = {
        "of": run_id,
        "original_seal": str(seal) if seal else None,
        **judgement.to_json(),
        "environment_changes": [],
        "tolerances": dict(request.tolerances),
        "env_mode": request.env.value,
        "noise_profile": None,
        "time_to_reproduce_s": round(time.monotonic() - started, 3),
        "run_s": None,
        "overhead_s": None,
    }
    return Reproduction(
        run_id=run_id,
        verdict=judgement.verdict,
        record=record,
        sandbox=sandbox.path if sandbox else None,
    )


@contextmanager
def _reason(what: str) -> Iterator[None]:
    """Turn the errors that stop a reproduction into NOT_REPRODUCIBLE, saying ``what`` failed."""
    try:
        yield
    except (UserError, StoreError, ExecutionError) as exc:
        raise _NotReproducible(f"{what}: {exc}") from exc


def _locate(ws: Workspace, ref: str) -> tuple[str, RunStatus | None, Digest | None]:
    """The run's id, its status when the index was asked, and its seal (None while running).

    A run id or a unique id prefix of a sealed run is found from the store's refs alone, so
    the usual reproduce never loads the metadata index; anything else goes through it.
    """
    ref = ref.strip()
    starting: str | None = None
    if _RUN_ID.match(ref):
        ids = {name.partition("/")[2] for folder in ("runs/", "active/")
               for name, _ in ws.objects.list_refs(folder + ref)}  # fmt: skip
        if len(ids) == 1:
            starting = ids.pop()
            seal = ws.objects.get_ref(f"runs/{starting}")
            if seal is not None:
                return starting, None, seal
    try:
        summary = resolve_ref(ws, ref)
    except RunRefError:
        if starting is None:
            raise
        return starting, RunStatus.RUNNING, None  # so new that the index has not seen it yet
    return summary.id, summary.status, Digest.parse(summary.manifest) if summary.manifest else None


def _locate_or_fetch(ws: Workspace, ref: str) -> tuple[str, RunStatus | None, Digest | None]:
    """:func:`_locate`, fetching the run from the default remote when it is not here."""
    try:
        return _locate(ws, ref)
    except RunRefError as exc:
        from keel.ops.remote import pull_run

        try:
            fetched = pull_run(ws, ref.strip())
        except KeelError as failure:
            raise RunRefError(f"{exc}; the remote could not be asked: {failure}") from failure
        if not fetched:
            raise
    return _locate(ws, ref)


def _fetch_missing(
    ws: Workspace, raw: Mapping[str, JsonValue], run_id: str, on_event: EventCallback
) -> None:
    """Fetch the recorded code changes and stored inputs this store lacks from the default
    remote (nothing is contacted when none is configured or nothing is missing)."""
    from keel.ops.reachability import DIGEST
    from keel.ops.remote import fetch_missing

    code, inputs = raw.get("code"), raw.get("inputs")
    named: list[JsonValue] = [code.get("diff")] if isinstance(code, dict) else []
    untracked = code.get("untracked") if isinstance(code, dict) else None
    for entry in [*(untracked if isinstance(untracked, list) else ()),
                  *(inputs if isinstance(inputs, list) else ())]:  # fmt: skip
        if isinstance(entry, dict) and entry.get("stored", True):
            named.append(entry.get("digest"))
    roots = [Digest.parse(d) for d in named if isinstance(d, str) and DIGEST.fullmatch(d)]
    with _reason(f"cannot fetch what run {run_id} needs from the remote"):
        report = fetch_missing(ws, roots)
    if report is not None:
        on_event("fetched", {"remote": report.remote.name, "objects": report.moved})


def _raw_manifest(
    ws: Workspace, run_id: str, status: RunStatus | None, seal: Digest | None
) -> dict[str, JsonValue]:
    """The sealed manifest as JSON, once it is clear there is something to re-execute."""
    if seal is None:
        state = status.value if status else "running"
        raise _NotReproducible(
            f"run {run_id} is still {state}; wait until it ends "
            "(see `keel ls --status running`), then reproduce it"
        )
    with _reason(f"the manifest of run {run_id} cannot be read"):
        raw = loads(ws.objects.get_bytes(seal))
        if not isinstance(raw, dict):
            raise CorruptObject(f"object {seal} is not a manifest")
    run, code = raw.get("run"), raw.get("code")
    if isinstance(run, dict) and run.get("status") == RunStatus.LOST.value:
        raise _NotReproducible(
            f"run {run_id} was lost (keel stopped before it ended), so there is no result "
            "to compare with"
        )
    if not isinstance(code, dict) or not code.get("captured"):
        reason = code.get("reason") if isinstance(code, dict) else "no code section"
        raise _NotReproducible(
            f"the code of run {run_id} was not captured ({reason}), so there is nothing to "
            "re-execute; keep the project in git to make runs reproducible"
        )
    return raw


def _validated(raw: dict[str, JsonValue], run_id: str) -> Manifest:
    with _reason(f"the manifest of run {run_id} cannot be read"):
        return Manifest.from_json(raw)


def _check_tolerances(original: Manifest, tolerances: Mapping[str, float]) -> None:
    for name in tolerances:
        if name not in original.metrics:
            raise UserError(f"--tolerance {name}: run {original.run.id} has no metric '{name}'; "
                            + did_you_mean(name, original.metrics))  # fmt: skip


def _restore_code(
    ws: Workspace, raw: Mapping[str, JsonValue], run_id: str, on_event: EventCallback
) -> Sandbox:
    code = raw.get("code")
    assert isinstance(code, dict)  # checked by _raw_manifest
    commit = code.get("commit")
    on_event("restoring", {"commit": commit, "dirty": code.get("dirty")})
    with _reason(f"cannot restore the code of commit {commit}"):
        return Sandbox.restore(ws, code, label=f"reproduce-{run_id}", need_bytes=_raw_bytes(raw))


def _raw_bytes(raw: Mapping[str, JsonValue]) -> int:
    """Twice the recorded input and output sizes of a not yet validated manifest."""
    total = 0
    for section in ("inputs", "outputs"):
        records = raw.get(section)
        for rec in records if isinstance(records, list) else ():
            size = rec.get("size") if isinstance(rec, dict) else None
            total += size if isinstance(size, int) else 0
    return 2 * total


def _with_inputs(ws: Workspace, original: Manifest, sandbox: Sandbox) -> Sandbox:
    with _reason("cannot restore the recorded inputs"):
        restore_inputs(ws, original.inputs, sandbox)
    return sandbox


def _python(
    ws: Workspace, original: Manifest, mode: EnvMode, on_event: EventCallback
) -> Path | None:
    if mode is EnvMode.CURRENT:
        return None
    with _reason("cannot rebuild the recorded environment"):
        return rebuild_env(
            original.environment,
            cache_root=ws.cache_dir / "envs",
            environ=ws.environ,
            on_progress=lambda text: on_event("environment", {"message": text}),
        )


def _noise(ws: Workspace, original: Manifest) -> tuple[NoiseProfile, str] | None:
    from keel.ops.determinism import load_noise_profile

    try:
        found = load_noise_profile(ws, original.run.experiment)
    except KeelError as exc:
        log.warning("noise profile of %s not used: %s", original.run.experiment, exc)
        return None
    return (found[0], str(found[1])) if found else None


def _amend(
    manifest: Manifest,
    *,
    original: Manifest,
    seal: str,
    tolerances: Mapping[str, float],
    noise: tuple[NoiseProfile, str] | None,
    env: EnvMode,
    started: float,
) -> Manifest:
    """Judge the reproduction and record the result in its ``reproduction`` slot."""
    judgement = judge(original, manifest, tolerances, noise=noise[0] if noise else None)
    total = time.monotonic() - started
    run_s = manifest.run.duration_s or 0.0
    effective: dict[str, JsonValue] = {
        name: tolerances.get(name, rec.tolerance or 0.0) for name, rec in original.metrics.items()
    }
    record: dict[str, JsonValue] = {
        "of": original.run.id,
        "original_seal": seal,
        **judgement.to_json(),
        "environment_changes": environment_changes(original, manifest),
        "tolerances": effective,
        "env_mode": env.value,
        "noise_profile": noise[1] if noise else None,
        "time_to_reproduce_s": round(total, 3),
        "run_s": run_s,
        "overhead_s": round(max(total - run_s, 0.0), 3),
    }
    return replace(manifest, reproduction=record)
