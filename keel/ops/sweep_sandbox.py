"""A sweep's frozen code, materialised once, and each trial's own hard-link copy of it.

The code facet captured when the sweep started is restored once per sweep (and once per resume)
as a git worktree (:class:`keel.ops.replay.Sandbox`), and the inputs recorded then are put in
it. Each trial then gets a folder of hard links to that tree (``os.link`` per file, a copy
across file systems), so parallel trials never write over each other's outputs and a trial
never sees the user's working tree. Trial folders live in ``<sandbox>/.keel/trials/``: git
leaves ``.keel/`` out of its untracked listing, so the fingerprint of the code seen from a
trial folder is the sandbox's own, computed once.

NOTE: a hard link shares its file with the sandbox. A trial that rewrites a file in place
(rather than replacing it) changes it for every trial; the manifest then flags the input or
the code as changed during the run, and the next sandbox (a resume) starts clean again.

A project that is not in a git repository is copied instead (without ``.keel`` and ``.git``)
and its sweep carries the flag :data:`~keel.model.sweeprecord.COPIED_FLAG`; a resume then
refuses to run when the copy's digest differs from the one recorded at the start.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from keel.base.canonical import JsonValue
from keel.capture.data import hash_path
from keel.capture.git import code_fingerprint
from keel.errors import UserError
from keel.model.manifest import InputRecord
from keel.ops.replay import Sandbox, restore_inputs, sandbox_parent
from keel.ops.workspace import Workspace

SKIP = frozenset({".git", ".keel"})
TRIALS = Path(".keel") / "trials"
STOP = Path(".keel") / "stop"


@dataclass(frozen=True, slots=True, kw_only=True)
class FrozenTree:
    """A materialised sweep: where its tree is, where trials go, and the code they record.

    ``code`` is the sweep's code facet with its ``fingerprint`` replaced by the sandbox's, so
    that the seal's "code changed during run" check compares a trial with the frozen tree.
    """

    root: Path
    project_root: Path
    code: dict[str, JsonValue]
    tree_digest: str | None = None

    @property
    def trials_dir(self) -> Path:
        """Where trial folders are made."""
        return self.root / TRIALS

    @property
    def stop_file(self) -> Path:
        """Created when the sweep is interrupted: workers stop their trials when they see it."""
        return self.root / STOP


def materialise(
    ws: Workspace,
    code: Mapping[str, JsonValue],
    inputs: Iterable[InputRecord],
    *,
    need_bytes: int = 0,
) -> tuple[Sandbox, FrozenTree]:
    """Restore the frozen code (or copy the project) and the recorded inputs, once.

    Raises:
        keel.errors.UserError: the code cannot be restored (repository or commit gone, patch
            does not apply) or an input recorded by digest only has changed.
        keel.errors.ObjectNotFound: a stored input or code object is missing.
    """
    if code.get("captured"):
        sandbox = Sandbox.restore(ws, code, label="sweep", need_bytes=need_bytes)
    else:
        sandbox = _copy_project(ws, need_bytes=need_bytes)
    try:
        restore_inputs(ws, inputs, sandbox)
        (sandbox.path / TRIALS).mkdir(parents=True, exist_ok=True)
        frozen = dict(code)
        digest = None
        if code.get("captured"):
            frozen["fingerprint"] = code_fingerprint(sandbox.project_root)
        else:
            digest = _tree_digest(sandbox.path)
        tree = FrozenTree(
            root=sandbox.path, project_root=sandbox.project_root, code=frozen, tree_digest=digest
        )
    except BaseException:
        sandbox.remove()
        raise
    return sandbox, tree


def _copy_project(ws: Workspace, *, need_bytes: int) -> Sandbox:
    parent = sandbox_parent(ws.environ, need_bytes=need_bytes)
    path = Path(tempfile.mkdtemp(prefix="keel-sweep-", dir=parent)).resolve()
    sandbox = Sandbox(path=path, code={"captured": False}, repo=path)
    store = ws.store_root

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in SKIP}
        return skipped | {n for n in names if Path(folder, n) == store}

    try:
        shutil.copytree(ws.root, path, symlinks=True, ignore=ignore, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        sandbox.remove()
        raise UserError(f"cannot copy the project {ws.root} for the sweep: {exc}") from exc
    return sandbox


def _tree_digest(root: Path) -> str:
    """The digest of the copied tree, without keel's own folder."""
    entries = sorted(e for e in os.listdir(root) if e not in SKIP)
    parts = [f"{name}\0{hash_path(root / name).get('digest')}" for name in entries]
    from keel.base.digest import hash_bytes

    return str(hash_bytes("\n".join(parts).encode("utf-8", "surrogateescape")))


@dataclass(frozen=True, slots=True)
class _Listing:
    dirs: tuple[str, ...]
    files: tuple[str, ...]
    links: tuple[tuple[str, str], ...]


_LISTINGS: dict[str, _Listing] = {}  # per worker process: a sandbox never changes shape


def _listing(root: Path) -> _Listing:
    key = str(root)
    found = _LISTINGS.get(key)
    if found is None:
        found = _LISTINGS[key] = _walk(root)
    return found


def _walk(root: Path) -> _Listing:
    dirs: list[str] = []
    files: list[str] = []
    links: list[tuple[str, str]] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in entries:
                if entry.name in SKIP:
                    continue
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    links.append((path, os.readlink(entry.path)))
                elif entry.is_dir():
                    dirs.append(path)
                    stack.append(path)
                else:
                    files.append(path)
    return _Listing(dirs=tuple(sorted(dirs)), files=tuple(files), links=tuple(links))


def link_tree(source: Path, dest: Path) -> None:
    """Make ``dest`` a copy of ``source`` out of hard links (copies across file systems).

    ``.git`` and ``.keel`` are left out at every level.
    """
    listing = _listing(source)
    dest.mkdir(parents=True)
    for rel in listing.dirs:
        (dest / rel).mkdir()
    cross_device = False
    for rel in listing.files:
        if cross_device:
            shutil.copy2(source / rel, dest / rel)
            continue
        try:
            os.link(source / rel, dest / rel)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            cross_device = exc.errno == errno.EXDEV
            shutil.copy2(source / rel, dest / rel)
    for rel, target in listing.links:
        os.symlink(target, dest / rel)
