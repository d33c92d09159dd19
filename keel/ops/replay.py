"""Replay a recorded run's conditions: its code in a sandbox, its inputs, its plan, its variables.

A sandbox is a detached git worktree of the project's repository at the recorded commit, with the
recorded uncommitted diff applied and the recorded untracked files written back
(:func:`keel.capture.git.restore_code`), in a fresh temporary folder. Declared inputs are then put
in place: from the object store (:func:`restore_inputs`), or copied from the user's project
(:func:`copy_inputs`). The user's working tree, HEAD and index are never written.

Removing a sandbox runs ``git worktree remove``; when that fails the folder is deleted and
``git worktree prune`` drops the registration.

:func:`recorded_plan` rebuilds the run's plan from its manifest alone — never from today's
keel.yaml — and :func:`recorded_environ` gives today's variables with the allow-listed ones as
they were recorded.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from keel.base.canonical import JsonValue
from keel.base.digest import Digest
from keel.capture.data import hash_path, restore_path
from keel.capture.environment import REDACTED, allowed_env
from keel.capture.git import discard_restored_code, restore_code
from keel.errors import KeelError, StoreError, UserError
from keel.model.manifest import InputRecord, Manifest
from keel.model.params import Layer, ResolvedParam
from keel.model.plan import InputSpec, MetricSpec, RunPlan
from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)


class Sandbox:
    """A temporary folder holding one recorded code state; ``project_root`` is where to run."""

    def __init__(self, *, path: Path, code: Mapping[str, JsonValue], repo: Path) -> None:
        self.path = path
        self.code = dict(code)
        self.repo = repo
        subdir = str(code.get("project_subdir") or ".")
        self.project_root = path.joinpath(*PurePosixPath(subdir).parts)

    @classmethod
    def restore(
        cls, ws: Workspace, code: Mapping[str, JsonValue], *, label: str, need_bytes: int = 0
    ) -> Sandbox:
        """Materialise ``code`` (a manifest's ``code`` section) in a new temporary folder.

        Raises:
            keel.errors.UserError: code not captured, repository or commit missing, patch
                does not apply.
            keel.errors.ObjectNotFound: the patch or an untracked file is not in the store.
        """
        parent = sandbox_parent(ws.environ, need_bytes=need_bytes)
        try:
            return cls._restore_in(ws, code, label=label, parent=parent)
        except (OSError, KeelError):
            if parent is None or parent.as_posix() != SHM:
                raise
            log.info("sandbox in %s failed; retrying in the temporary folder", parent)
            return cls._restore_in(ws, code, label=label, parent=None)

    @classmethod
    def _restore_in(
        cls, ws: Workspace, code: Mapping[str, JsonValue], *, label: str, parent: Path | None
    ) -> Sandbox:
        path = Path(tempfile.mkdtemp(prefix=f"keel-{label}-", dir=parent)).resolve()
        sandbox = cls(path=path, code=code, repo=repository(ws, code))
        try:
            restore_code(code, path, lambda d: ws.objects.get_bytes(Digest.parse(d)),
                         repo=sandbox.repo)  # fmt: skip
        except BaseException:
            sandbox.remove()
            raise
        return sandbox

    def inside(self, rel: str) -> Path:
        """``project_root / rel``, refusing a path that leaves the sandbox.

        Raises:
            keel.errors.UserError: ``rel`` is absolute or climbs out of the sandbox.
        """
        target = Path(os.path.normpath(self.project_root / rel))
        if PurePosixPath(rel).is_absolute() or not target.is_relative_to(self.path):
            raise UserError(f"path {rel!r} lies outside the repository, so keel cannot put it "
                            "in an isolated copy; declare inputs inside the project")  # fmt: skip
        return target

    def remove(self) -> None:
        """Delete the folder and its worktree registration (never raises)."""
        try:
            discard_restored_code(self.code, self.path, repo=self.repo)
        except KeelError as exc:
            log.debug("git worktree remove failed for %s: %s", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            if self.code.get("commit") and (self.repo / ".git").exists():
                _git(self.repo, "worktree", "prune")
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


SHM = "/dev/shm"
SANDBOX_ENV = "KEEL_SANDBOX_DIR"
_HEADROOM = 1 << 30  # leave at least 1 GiB of the memory-backed folder free
_CODE_ALLOWANCE = 256 << 20  # what a checkout of the source tree is assumed to need


def sandbox_parent(environ: Mapping[str, str], *, need_bytes: int) -> Path | None:
    """Where to make sandboxes: ``KEEL_SANDBOX_DIR``; else ``/dev/shm`` when it has room; else
    the temporary folder (None).

    A checkout writes every file of the repository, and on many virtual disks creating small
    files dominates a reproduce (measured here: 5,000 files take 1.4 s on ext4, 0.05 s on
    tmpfs). The memory-backed folder is used only when it has ``need_bytes`` (the run's inputs
    and outputs, as recorded) plus an allowance for the code plus 1 GiB to spare, and never
    when the user chose a temporary folder with ``TMPDIR``.
    """
    if environ.get(SANDBOX_ENV):
        return Path(environ[SANDBOX_ENV])
    if environ.get("TMPDIR") or not os.path.isdir(SHM) or not os.access(SHM, os.W_OK):
        return None
    stats = os.statvfs(SHM)
    free = stats.f_bavail * stats.f_frsize
    return Path(SHM) if free >= need_bytes + _CODE_ALLOWANCE + _HEADROOM else None


def recorded_bytes(manifest: Manifest) -> int:
    """Twice the recorded size of a run's inputs and outputs: room for a re-run of it."""
    sizes = [r.size or 0 for r in (*manifest.inputs, *manifest.outputs)]
    return 2 * sum(sizes)


def repository(ws: Workspace, code: Mapping[str, JsonValue]) -> Path:
    """The repository to restore from: the one holding the workspace, else the recorded one.

    Worktrees share their repository's commits, so the user's current clone serves even when
    the run was made elsewhere (in another worktree, or a sandbox that is gone).
    """
    subdir = PurePosixPath(str(code.get("project_subdir") or "."))
    top = ws.root
    for _ in subdir.parts:
        top = top.parent
    if (top / ".git").exists():
        return top
    return Path(str(code.get("repo_root")))


def restore_inputs(ws: Workspace, inputs: Iterable[InputRecord], sandbox: Sandbox) -> None:
    """Put each recorded input in the sandbox as it was when the run started.

    Stored inputs come from the object store. An input recorded by digest only is copied from
    the user's project when its current digest is the recorded one.

    Raises:
        keel.errors.UserError: a digest-only input changed, or a path leaves the sandbox.
        keel.errors.ObjectNotFound: a stored input's object is missing (named by digest).
        keel.errors.CorruptObject: a stored object no longer matches its digest.
    """
    for rec in inputs:
        target = sandbox.inside(rec.path)
        _clear(target)
        if rec.kind == "missing":
            continue
        if rec.stored:
            record: dict[str, JsonValue] = {"kind": rec.kind, "digest": rec.digest, "stored": True}
            try:
                restore_path(record, target, lambda d: ws.objects.get_bytes(Digest.parse(d)),
                             lambda d, p: ws.objects.copy_to(Digest.parse(d), p))  # fmt: skip
            except StoreError as exc:
                raise type(exc)(f"input {rec.path}: {exc}") from exc
            continue
        source = ws.root / rec.path
        now = hash_path(source).get("digest")
        if now != rec.digest:
            raise UserError(
                f"input {rec.path} was recorded by digest only (store: false) and the file in "
                f"{ws.root} is no longer that version (recorded {rec.digest}, now {now}); put "
                "the recorded version back, or declare the input with store: true"
            )
        _copy(source, target)


def copy_inputs(source_root: Path, paths: Sequence[str], *, sandbox: Sandbox) -> None:
    """Copy the declared inputs as they are now in ``source_root`` into the sandbox."""
    for rel in paths:
        target = sandbox.inside(rel)
        _clear(target)
        source = source_root / rel
        if source.exists():
            _copy(source, target)


_SEED_SOURCES: dict[str, Literal["experiment", "cli", "default"]] = {
    "experiment": "experiment", "cli": "cli", "default": "default"
}  # fmt: skip


def recorded_plan(original: Manifest, sandbox: Sandbox, *, launcher: bool = False) -> RunPlan:
    """The plan ``original`` ran, with its project folder in ``sandbox``.

    With ``launcher``, an entrypoint experiment gets an explicit argv that starts keel's
    launcher with ``python`` from PATH (the interpreter chosen for the run) instead of keel's own.

    Raises:
        keel.errors.UserError: the manifest records a value keel cannot run from.
    """
    from keel.resolve.render import param_env  # loads the spec models: only when replaying

    cfg, exp, root = original.config, original.config.experiment, sandbox.project_root
    params = tuple(_param(name, pv.value, pv.source) for name, pv in cfg.params.items())
    argv = tuple(cfg.command) if cfg.command else None
    if argv is None and launcher and cfg.entrypoint:
        argv = ("python", "-m", "keel.execute.entry", cfg.entrypoint)
    seed_source = _SEED_SOURCES.get(original.seeds.source)
    if seed_source is None:
        raise UserError(f"the manifest records an unknown seed source {original.seeds.source!r}")
    timeout, metrics_file = exp.get("timeout"), exp.get("metrics_file")
    return RunPlan(
        project=original.run.project,
        project_root=root,
        spec_file=root / cfg.spec_file,
        spec_digest=cfg.spec_digest,
        experiment=original.run.experiment,
        experiment_def=dict(exp),
        profile=original.run.profile,
        profile_def=dict(cfg.profile),
        strict=False,  # the restored tree is as dirty as the run's was, by design
        params=params,
        seed=original.seeds.root,
        seed_source=seed_source,
        argv=argv,
        entrypoint=cfg.entrypoint,
        cwd=sandbox.inside(cfg.cwd),
        inputs=tuple(_input_spec(i) for i in original.inputs),
        outputs=tuple(o.path for o in original.outputs),
        metrics_file=metrics_file if isinstance(metrics_file, str) else None,
        metrics=_metric_specs(exp.get("metrics")),
        env_allow=_strings(exp.get("env")),
        why=f"reproduction of run {original.run.id}",
        tags=original.run.tags,
        timeout_s=float(timeout) if isinstance(timeout, int | float) else None,
        extra_env={**param_env({p.name: p.value for p in params}), **_profile_env(cfg.profile)},
    )


def _input_spec(rec: InputRecord) -> InputSpec:
    """A recorded input; a dataset input is pinned to the version the run used."""
    if rec.dataset is not None and rec.version is not None:
        return InputSpec(path=rec.path, store=True, dataset=f"{rec.dataset}@{rec.version}")
    return InputSpec(path=rec.path, store=rec.stored)


def _param(name: str, value: JsonValue, source: str) -> ResolvedParam:
    try:
        layer = Layer(source)
    except ValueError:
        raise UserError(f"parameter {name} has an unknown source {source!r}") from None
    return ResolvedParam(name=name, value=value, layer=layer)


def _metric_specs(value: JsonValue) -> tuple[MetricSpec, ...]:
    specs = []
    for name, decl in value.items() if isinstance(value, dict) else ():
        if isinstance(decl, dict) and decl.get("goal") in ("max", "min"):
            tolerance = decl.get("tolerance")
            specs.append(MetricSpec(name=name, goal="max" if decl["goal"] == "max" else "min",
                                    tolerance=float(tolerance) if isinstance(tolerance, int | float)
                                    else 0.0))  # fmt: skip
    return tuple(specs)


def _strings(value: JsonValue) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _profile_env(profile: Mapping[str, JsonValue]) -> dict[str, str]:
    env = profile.get("env")
    return {k: str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def recorded_environ(
    environ: Mapping[str, str], original: Manifest, *, venv: Path | None = None
) -> dict[str, str]:
    """``environ`` with the allow-listed variables as ``original`` recorded them.

    Allow-listed variables not set then are unset; ones recorded as ``<redacted>`` keep today's
    value. ``PYTHONHASHSEED`` is the user's recorded value, or left for keel to derive from the
    seed again, as it was. With ``venv``, ``VIRTUAL_ENV`` names it.
    """
    recorded = original.environment.get("env_vars")
    out = dict(environ)
    if original.environment.get("captured") and isinstance(recorded, dict):
        for name in allowed_env(environ, _strings(original.config.experiment.get("env"))):
            del out[name]
        for name, value in recorded.items():
            if value == REDACTED and name in environ:
                out[name] = environ[name]
            elif isinstance(value, str) and value != REDACTED:
                out[name] = value
    out.pop("PYTHONHASHSEED", None)
    if original.seeds.pythonhashseed_source == "user":
        out["PYTHONHASHSEED"] = original.seeds.pythonhashseed
    if venv is not None:
        out["VIRTUAL_ENV"] = str(venv)
    return out


def _clear(target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)


def _git(cwd: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, timeout=60,
                       check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("git %s failed in %s: %s", " ".join(args), cwd, exc)
