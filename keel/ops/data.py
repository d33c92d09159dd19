"""Dataset use cases: add, list, show and check out versions, and the status of a working copy.

A version's content goes into the object store file by file (streamed); its record and then its
ref ``datasets/<name>/<version>`` are written last, so a version is either complete or absent.

Scanning and hashing working copies, and remembering their digests, is
:mod:`keel.ops.workingcopy`; version records, refs and materialising a version on disk are
:mod:`keel.ops.datastore`. The run side of datasets is :mod:`keel.ops.lineage`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.clock import iso
from keel.base.digest import Digest
from keel.base.suggest import did_you_mean
from keel.base.user import os_user
from keel.errors import UserError
from keel.model.dataset import (
    REF_PREFIX,
    DatasetLineage,
    DatasetRef,
    DatasetStatus,
    DatasetVersion,
    TreeChanges,
    name_problem,
    newest_first,
)

# NOTE: the ``name as name`` imports re-export what moved to keel.ops.datastore and
# keel.ops.workingcopy: code elsewhere still imports those names from keel.ops.data.
from keel.ops.datastore import (
    AddOutcome,
    existing_version,
    load_version,
    source_text,
    version_id,
)
from keel.ops.datastore import materialise as materialise
from keel.ops.datastore import publish_version as publish_version
from keel.ops.datastore import version_files as version_files
from keel.ops.workingcopy import DataCache as DataCache
from keel.ops.workingcopy import copy_content, file_digests, remember_if_steady, scan_copy
from keel.ops.workingcopy import hash_file_pipelined as hash_file_pipelined
from keel.ops.workingcopy import working_digest as working_digest

if TYPE_CHECKING:
    from keel.model.dataset import TreeEntry
    from keel.ops.workingcopy import Scan
    from keel.ops.workspace import Workspace

ProgressCallback = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    """The default progress callback: do nothing."""


# -- finding versions ---------------------------------------------------------------------------


def dataset_names(ws: Workspace) -> list[str]:
    """Every dataset with at least one version, sorted."""
    names = {name.split("/")[1] for name, _ in ws.objects.list_refs(REF_PREFIX)}
    return sorted(names)


def dataset_versions(ws: Workspace, name: str) -> list[DatasetVersion]:
    """The versions of ``name``, newest first (empty when there is no such dataset).

    Raises:
        keel.errors.UserError: ``name`` is not a valid dataset name.
    """
    problem = name_problem(name)
    if problem is not None:
        raise UserError(problem)
    prefix = f"{REF_PREFIX}{name}/"
    return newest_first(load_version(ws, d) for _, d in ws.objects.list_refs(prefix))


def get_version(ws: Workspace, ref: str) -> DatasetVersion:
    """The version ``NAME`` (latest), ``NAME@latest`` or ``NAME@VERSION`` names.

    Raises:
        keel.errors.UserError: a bad reference, an unknown dataset (with the closest names) or
            an unknown version (listing the versions there are).
    """
    parsed = DatasetRef.parse(ref)
    return _pick(ws, parsed, dataset_versions(ws, parsed.name))


def _pick(ws: Workspace, parsed: DatasetRef, versions: list[DatasetVersion]) -> DatasetVersion:
    if not versions:
        names = dataset_names(ws)
        hint = did_you_mean(parsed.name, names) if names else "there are no datasets yet"
        raise UserError(f"no dataset named '{parsed.name}'; {hint}; add one with "
                        f"`keel data add {parsed.name} PATH`")  # fmt: skip
    if parsed.version is None:
        return versions[0]
    for version in versions:
        if version.version == parsed.version:
            return version
    raise UserError(f"dataset '{parsed.name}' has no version {parsed.version}; "
                    f"its versions are {_listing(versions)}")  # fmt: skip


def _listing(versions: list[DatasetVersion], limit: int = 10) -> str:
    shown = [f"{v.version} ({v.created_at[:19]})" for v in versions[:limit]]
    more = f" and {len(versions) - limit} older" if len(versions) > limit else ""
    return ", ".join(shown) + " (newest first)" + more


def check_version(
    ws: Workspace,
    *,
    name: str,
    path: Path,
    contract_file: Path | None,
    breaking: str | None,
) -> tuple[str | None, str | None]:
    """Check a new version of ``name`` against its contract; return (contract, profile) digests.

    Raises:
        keel.errors.ValidationError: the data violates the contract (nothing is stored).
        keel.errors.UserError: ``--contract`` was given but contracts are not available.
    """
    from keel.ops.datacheck import validate_version as validate

    versions = dataset_versions(ws, name)
    return validate(ws, name=name, path=path, contract_file=contract_file,
                    previous=versions[0] if versions else None, breaking=breaking)  # fmt: skip


# -- add ----------------------------------------------------------------------------------------


def add_dataset(
    ws: Workspace,
    *,
    name: str,
    path: Path,
    contract_file: Path | None = None,
    why: str | None = None,
    breaking: str | None = None,
    cache: DataCache | None = None,
    on_progress: ProgressCallback = _no_progress,
) -> AddOutcome:
    """Snapshot the file or folder at ``path`` as a version of ``name``.

    Identical content gives the existing version and stores nothing. New content is checked
    against the dataset's contract before anything is stored.

    Raises:
        keel.errors.UserError: a bad name, a missing or unreadable path, an empty folder, or
            (ValidationError) a contract violation.
    """
    problem = name_problem(name)
    if problem is not None:
        raise UserError(problem)
    cache = cache or DataCache.open(ws)
    try:
        scan = scan_copy(path, cache.now_ns)
        if scan.kind == "missing":
            raise UserError(f"{path} does not exist; give the file or folder to add")
        if scan.kind == "dir" and not scan.files:
            raise UserError(f"folder {path} has no files to version")
        known = cache.known(scan)
        if known is not None and (found := existing_version(ws, name, version_id(known), known)):
            return AddOutcome(version=found, created=False)
        files = file_digests(scan, cache, rehash=False)
        digest, tree = copy_content(scan, files)
        remember_if_steady(scan, cache, digest)
        existing = existing_version(ws, name, version_id(digest), digest)
        if existing is not None:
            return AddOutcome(version=existing, created=False)
        contract, profile = check_version(
            ws, name=name, path=scan.root, contract_file=contract_file, breaking=breaking
        )
        _store_files(ws, scan, files, on_progress)
        if tree is not None:
            ws.objects.put_bytes(tree)
        record = DatasetVersion(
            name=name, version=version_id(digest), digest=digest, kind=scan.kind,
            size=sum(f.size for f in files.values()), files=len(files),
            created_at=iso(ws.clock.now()), who=os_user(ws.environ), why=why,
            source_path=source_text(ws, scan.root), lineage=DatasetLineage(),
            contract=contract, profile=profile, breaking=breaking,
        )  # fmt: skip
        return publish_version(ws, record)
    finally:
        cache.save()


def _store_files(
    ws: Workspace, scan: Scan, files: Mapping[str, TreeEntry], on_progress: ProgressCallback
) -> None:
    """Put every file the store lacks (streamed), checking it is still what was hashed."""
    total = len(scan.files)
    for done, (rel, *_) in enumerate(scan.files, start=1):
        expected = Digest.parse(files[rel].digest)
        if not ws.objects.has(expected):
            absolute = scan.path(rel)
            if ws.objects.put_file(Path(absolute)) != expected:
                raise UserError(f"{absolute} changed while it was added; add it again")
        on_progress(done, total)


# -- checkout -----------------------------------------------------------------------------------


def checkout_dataset(
    ws: Workspace, ref: str, dest: Path, *, force: bool = False, copy: bool = False
) -> DatasetVersion:
    """Materialise a version at ``dest`` (built beside it, then renamed into place).

    Files are read-only links to the store, or read-only copies; ``copy`` makes independent,
    writable copies.

    Raises:
        keel.errors.UserError: unknown version, ``dest`` exists without ``force``, or ``dest``
            holds the project or its store.
    """
    version = get_version(ws, ref)
    target = dest.absolute()
    if os.path.lexists(target) and not force:
        raise UserError(f"{dest} already exists; remove it, or pass --force to replace it")
    materialise(ws, version, target, writable=copy)
    return version


# -- status -------------------------------------------------------------------------------------


def dataset_status(
    ws: Workspace,
    ref: str,
    path: Path | None = None,
    *,
    rehash: bool = False,
    cache: DataCache | None = None,
) -> DatasetStatus:
    """Whether the working copy at ``path`` (default: where the version came from) is ``ref``.

    Raises:
        keel.errors.UserError: unknown dataset or version, an unreadable working copy, or no
            ``path`` for a version that records none.
    """
    parsed = DatasetRef.parse(ref)
    versions = dataset_versions(ws, parsed.name)
    expected = _pick(ws, parsed, versions)
    latest = versions[0].version == expected.version
    if path is None:
        if expected.source_path is None:
            raise UserError(f"{expected.ref} records no source path; give the PATH to compare")
        path = ws.root / expected.source_path
    cache = cache or DataCache.open(ws)
    try:
        scan = scan_copy(path, cache.now_ns)
        shown = source_text(ws, path)
        if scan.kind == "missing":
            return DatasetStatus(expected=expected, latest=latest, path=shown, state="missing")
        if not rehash and cache.known(scan) == expected.digest:
            return DatasetStatus(expected=expected, latest=latest, path=shown, state="unchanged",
                                 digest=expected.digest)  # fmt: skip
        files = file_digests(scan, cache, rehash=rehash)
        digest, _ = copy_content(scan, files)
        remember_if_steady(scan, cache, digest)
        changes = _changes(ws, expected, scan, files)
        same = digest == expected.digest
        return DatasetStatus(
            expected=expected, latest=latest, path=shown,
            state="unchanged" if same else "changed", changes=changes, digest=digest,
            matches=None if same else version_holding(ws, expected.name, digest),
            reads=cache.reads,
        )  # fmt: skip
    finally:
        cache.save()


def _changes(
    ws: Workspace, expected: DatasetVersion, scan: Scan, files: Mapping[str, TreeEntry]
) -> TreeChanges:
    old = {rel: e.digest for rel, e in version_files(ws, expected).items()}
    if scan.kind == "file":
        name = next(iter(old)) if expected.kind == "file" else scan.root.name
        return TreeChanges.between(old, {name: files[""].digest})
    return TreeChanges.between(old, {rel: e.digest for rel, e in files.items()})


def version_holding(ws: Workspace, name: str, digest: str) -> str | None:
    """The version of ``name`` whose content is ``digest``, if stored."""
    found = existing_version(ws, name, version_id(digest), digest)
    return found.version if found else None
