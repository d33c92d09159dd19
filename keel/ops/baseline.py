"""Baselines: the audited run each experiment's new results are compared with, and the gate.

Setting a baseline stores a record object — canonical JSON of the experiment, run id, manifest
digest, who (the OS user), when, why and the digest of the previous record — and points the ref
``baselines/<experiment>`` at it. Records are never edited, so the history is a chain from the
newest record back through ``previous``, and any edit to an old record breaks the chain's digests.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass, replace

from keel.base.canonical import JsonValue, canonical_json, loads
from keel.base.clock import iso
from keel.base.digest import Digest
from keel.base.suggest import closest
from keel.base.user import os_user
from keel.compare.gate import GateResult, gate
from keel.errors import CorruptObject, UserError
from keel.model.manifest import Manifest
from keel.model.run import RunStatus, RunSummary
from keel.ops.refs import resolve_ref
from keel.ops.sync import load_manifest
from keel.ops.workspace import Workspace

REF_PREFIX = "baselines/"
RECORD_KIND = "keel.baseline"
SET_HINT = "set one with `keel baseline set RUN --why TEXT`"


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineRecord:
    """One baseline decision; ``digest`` is the stored record's own digest."""

    experiment: str
    run: str
    manifest: str
    who: str
    when: str
    why: str
    previous: str | None
    digest: str

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form (the stored fields plus ``digest``)."""
        return {**_stored(self), "digest": self.digest}


def _stored(rec: BaselineRecord) -> dict[str, JsonValue]:
    return {
        "kind": RECORD_KIND,
        "experiment": rec.experiment,
        "run": rec.run,
        "manifest": rec.manifest,
        "who": rec.who,
        "when": rec.when,
        "why": rec.why,
        "previous": rec.previous,
    }


def set_baseline(ws: Workspace, ref: str, *, why: str) -> BaselineRecord:
    """Make the run ``ref`` names its experiment's baseline, recording who, when and why.

    Raises:
        keel.errors.UserError: ``why`` is empty, the run did not succeed, or it already is the
            baseline.
        keel.errors.RunRefError: ``ref`` names no run.
    """
    reason = why.strip()
    if not reason:
        raise UserError(
            "--why is empty: say why this run becomes the baseline (it is recorded with your "
            "name and the time)"
        )
    run = resolve_ref(ws, ref)
    _check_eligible(run)
    assert run.manifest is not None
    with _locked(ws, run.experiment):
        current = current_baseline(ws, run.experiment)
        if current is not None and current.run == run.id:
            raise UserError(f"run {run.id} already is the baseline of {run.experiment}")
        draft = BaselineRecord(
            experiment=run.experiment,
            run=run.id,
            manifest=run.manifest,
            who=os_user(ws.environ),
            when=iso(ws.clock.now()),
            why=reason,
            previous=current.digest if current is not None else None,
            digest="",
        )
        digest = ws.objects.put_bytes(canonical_json(_stored(draft)))
        ws.objects.set_ref(REF_PREFIX + run.experiment, digest)
    return replace(draft, digest=str(digest))


def _check_eligible(run: RunSummary) -> None:
    if run.status is RunStatus.SUCCEEDED and run.manifest is not None:
        return
    state = "is still running" if not run.status.finished else f"{run.status.value}"
    raise UserError(
        f"run {run.id} {state}: only a succeeded run can become a baseline; "
        f"pick one with `keel ls -e {run.experiment} --status succeeded`"
    )


@contextlib.contextmanager
def _locked(ws: Workspace, experiment: str) -> Iterator[None]:
    """Serialise baseline updates of one experiment, so no history record is lost."""
    folder = ws.store_root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"baseline-{experiment}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def current_baseline(ws: Workspace, experiment: str) -> BaselineRecord | None:
    """The experiment's baseline record, or None when none was set."""
    digest = ws.objects.get_ref(REF_PREFIX + experiment)
    return None if digest is None else _read_record(ws, digest)


def baseline_experiments(ws: Workspace) -> list[str]:
    """The experiments that have a baseline, sorted."""
    return [name.removeprefix(REF_PREFIX) for name, _ in ws.objects.list_refs(REF_PREFIX)]


def baseline_history(ws: Workspace, experiment: str) -> list[BaselineRecord]:
    """Every baseline record of ``experiment``, newest first.

    Raises:
        keel.errors.UserError: the experiment has no baseline (with a hint).
    """
    record = current_baseline(ws, experiment)
    if record is None:
        raise no_baseline(ws, experiment)
    history = [record]
    while history[-1].previous is not None:
        history.append(_read_record(ws, Digest.parse(str(history[-1].previous))))
    return history


def no_baseline(ws: Workspace, experiment: str) -> UserError:
    """The error for an experiment without a baseline, naming a close one if there is one."""
    near = closest(experiment, baseline_experiments(ws))
    hint = f" (did you mean '{near}'?)" if near and near != experiment else ""
    return UserError(f"experiment '{experiment}' has no baseline{hint}: {SET_HINT}")


def _read_record(ws: Workspace, digest: Digest) -> BaselineRecord:
    data = loads(ws.objects.get_bytes(digest))
    if not isinstance(data, dict) or data.get("kind") != RECORD_KIND:
        raise CorruptObject(f"object {digest} is not a baseline record; run `keel verify`")
    previous = data.get("previous")
    return BaselineRecord(
        experiment=str(data.get("experiment")),
        run=str(data.get("run")),
        manifest=str(data.get("manifest")),
        who=str(data.get("who")),
        when=str(data.get("when")),
        why=str(data.get("why")),
        previous=previous if isinstance(previous, str) else None,
        digest=str(digest),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOutcome:
    """The gate's verdict on a run against its reference (normally the baseline)."""

    run: RunSummary
    reference: RunSummary
    result: GateResult

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "run": self.run.id,
            "experiment": self.run.experiment,
            "against": self.reference.id,
            "exit_code": self.result.exit_code,
            **self.result.to_json(),
        }


def gate_run(ws: Workspace, ref: str, *, against: str = "@baseline") -> GateOutcome:
    """Gate the run ``ref`` names against ``against`` (default: its experiment's baseline).

    Raises:
        keel.errors.RunRefError: either reference names no run, or no baseline is set (the
            message says how to set one).
        keel.errors.UserError: a run is still going.
    """
    run = resolve_ref(ws, ref)
    if not run.status.finished or run.manifest is None:
        raise UserError(f"run {run.id} is still running: gate it when it has finished")
    reference = resolve_ref(ws, against, baseline_of=run.experiment)
    if reference.manifest is None:
        raise UserError(f"run {reference.id} is still running: it cannot be a reference yet")
    result = gate(
        run=_manifest(ws, run.manifest).metrics,
        baseline=_manifest(ws, reference.manifest).metrics,
    )
    return GateOutcome(run=run, reference=reference, result=result)


def _manifest(ws: Workspace, digest: str) -> Manifest:
    return load_manifest(ws, Digest.parse(digest))
