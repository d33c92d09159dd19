"""Dataset use cases: add, list, show, check out and compare versions; dataset inputs of runs.

A version's content goes into the object store file by file (streamed); its record and then its
ref ``datasets/<name>/<version>`` are written last, so a version is either complete or absent.

Working copies (a checkout, a run's input, the folder a version was added from) are compared
with versions cheaply: a whole-copy *signature* (every file's path, size, mtime, inode, device
and ctime) remembers the digest last found for an unchanged copy, so the usual answer costs one
``stat`` per file; when it changed, keel's per-file stat cache (:mod:`keel.ops.statcache`)
re-reads only the files whose stat changed. Like that cache, a signature is never remembered
while any file is younger than ``RACY_NS`` (coarse filesystem timestamps).

Materialised files are hard links to the store's read-only objects when the filesystem allows it
and the user cannot write through a read-only file (not root); otherwise read-only copies. The
store is never modified.

NOTE: past 500 lines: working-copy scanning (signatures, hashing), the version store and
materialisation share private helpers. The run side of datasets is :mod:`keel.ops.lineage`.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import queue
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue, canonical_json, loads
from keel.base.clock import iso
from keel.base.digest import CHUNK, Digest, Hasher, hash_bytes, hash_stream
from keel.base.suggest import did_you_mean
from keel.errors import UserError
from keel.model.dataset import (
    REF_PREFIX,
    DatasetLineage,
    DatasetRef,
    DatasetStatus,
    DatasetVersion,
    TreeChanges,
    TreeEntry,
    name_problem,
    newest_first,
    tree_entries,
    version_ref_name,
)
from keel.ops.statcache import RACY_NS, StatCache

if TYPE_CHECKING:
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)

SIGNATURES_FILE = "signatures.json"
MAX_SIGNATURES = 2_000
_SIGNATURES_VERSION = 1
ProgressCallback = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    """The default progress callback: do nothing."""


# -- caches -------------------------------------------------------------------------------------


class DataCache:
    """Digests of working copies, reused while nothing about them changed.

    ``files`` is keel's per-file stat cache; the signatures map a working copy's absolute path
    to ``[signature, digest]``. Both live in ``folder`` and are disposable.
    """

    def __init__(self, folder: Path, *, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.folder = folder
        self.now_ns = now_ns
        self.rehashed = 0
        self._files: StatCache | None = None
        self._path = folder / SIGNATURES_FILE
        self._signatures = _read_signatures(self._path)
        self._changed = False

    @property
    def files(self) -> StatCache:
        """The per-file stat cache, read on first use (an unchanged copy never needs it)."""
        if self._files is None:
            self._files = StatCache.open(self.folder, now_ns=self.now_ns)
        return self._files

    @classmethod
    def open(cls, ws: Workspace) -> DataCache:
        """The workspace's cache, in ``.keel/cache/data``, reading "now" from its clock."""
        clock = ws.clock
        return cls(ws.cache_dir / "data", now_ns=lambda: int(clock.now().timestamp() * 1e9))

    @property
    def reads(self) -> int:
        """Files whose content was read (not answered from a cache) by this object."""
        return (self._files.misses if self._files else 0) + self.rehashed

    def known(self, scan: _Scan) -> str | None:
        """The digest remembered for ``scan``'s copy, if its signature is unchanged."""
        entry = self._signatures.get(str(scan.root))
        if not isinstance(entry, list) or len(entry) != 2 or entry[0] != scan.signature:
            return None
        try:
            return str(Digest.parse(str(entry[1])))
        except UserError:  # a damaged entry is a miss, never an error
            return None

    def remember(self, scan: _Scan, digest: str) -> None:
        """Remember ``digest`` for the copy while its signature stays ``scan.signature``."""
        key = str(scan.root)
        self._signatures.pop(key, None)
        if not scan.racy:
            self._signatures[key] = [scan.signature, digest]
        self._changed = True

    def save(self) -> None:
        """Write both caches if they changed (a failure only costs time later)."""
        if self._files is not None:
            self._files.save()
        if not self._changed:
            return
        kept = dict(list(self._signatures.items())[-MAX_SIGNATURES:])
        data = json.dumps({"version": _SIGNATURES_VERSION, "entries": kept})  # oldest first
        try:
            atomic_write_bytes(self._path, data.encode(), durable=False)
            self._changed = False
        except OSError as exc:
            log.debug("dataset signatures not written to %s: %s", self._path, exc)


def _read_signatures(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_bytes())
        entries = data["entries"] if data.get("version") == _SIGNATURES_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return entries if isinstance(entries, dict) else {}


# -- scanning and hashing -----------------------------------------------------------------------

_Row = tuple[str, int, int, int, int, int]  # POSIX path in the copy, size, mtime, ino, dev, ctime


@dataclass(frozen=True, slots=True)
class _Scan:
    """One walk of a working copy: its files with their stats, and their signature."""

    root: Path
    kind: Literal["file", "dir", "missing"]
    files: tuple[_Row, ...]
    signature: str
    racy: bool

    def path(self, rel: str) -> str:
        """The absolute path of the file ``rel`` of the copy."""
        return f"{self.root}/{rel}" if rel else str(self.root)


def _scan(path: Path, now_ns: Callable[[], int]) -> _Scan:
    """Walk ``path`` (a file, or a folder's regular files; symlinks inside are skipped).

    Raises:
        keel.errors.UserError: ``path`` is neither a file nor a folder, or cannot be read.
    """
    root = path.absolute()
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return _Scan(root, "missing", (), "", False)
    except OSError as exc:
        raise _unreadable(root, exc) from exc
    if stat.S_ISREG(st.st_mode):
        rows = [("", st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)]
        kind: Literal["file", "dir"] = "file"
    elif stat.S_ISDIR(st.st_mode):
        rows, kind = _walk(root), "dir"
    else:
        raise UserError(f"{root} is not a regular file or a folder; give a file or a folder")
    newest = max(max((r[2] for r in rows), default=0), max((r[5] for r in rows), default=0))
    # marshal: the fastest stable serialisation of the rows (a new Python may change it,
    # which costs one re-check).
    signature = hash_bytes(marshal.dumps((kind, rows))).hexdigest
    return _Scan(root, kind, tuple(rows), signature, now_ns() - newest < RACY_NS)


def _walk(root: Path) -> list[_Row]:
    """Regular files below ``root`` (not following symlinks) with their stats, sorted by path.

    One ``lstat`` per file and nothing else: this loop is the whole cost of an unchanged copy.
    """
    found: list[_Row] = []
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((f"{prefix}{entry.name}/", entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        s = entry.stat(follow_symlinks=False)
                        found.append((prefix + entry.name, s.st_size, s.st_mtime_ns, s.st_ino,
                                      s.st_dev, s.st_ctime_ns))  # fmt: skip
        except OSError as exc:
            raise _unreadable(Path(folder), exc) from exc
    found.sort()
    return found


def _unreadable(path: Path, exc: OSError) -> UserError:
    if isinstance(exc, FileNotFoundError):
        return UserError(f"{path} disappeared while keel read it; try again")
    return UserError(f"cannot read {path}: {exc.strerror or exc}; check its permissions")


def _file_digests(scan: _Scan, cache: DataCache, *, rehash: bool) -> dict[str, TreeEntry]:
    """Each file's digest and size: from the stat cache, or (``rehash``) read in full."""
    found: dict[str, TreeEntry] = {}
    for rel, *_ in scan.files:
        absolute = scan.path(rel)
        try:
            if rehash:
                digest, size = hash_file_pipelined(absolute)
                cache.rehashed += 1
            else:
                digest, size = cache.files.digest(Path(absolute))
        except OSError as exc:
            raise _unreadable(Path(absolute), exc) from exc
        found[rel] = TreeEntry(str(digest), size)
    return found


def _tree_bytes(files: Mapping[str, TreeEntry]) -> bytes:
    """The folder's tree object, exactly as :func:`keel.capture.data.store_path` writes it."""
    entries: list[JsonValue] = [
        {"path": rel, "digest": files[rel].digest, "size": files[rel].size} for rel in sorted(files)
    ]
    return canonical_json({"entries": entries})


def _content(scan: _Scan, files: Mapping[str, TreeEntry]) -> tuple[str, bytes | None]:
    """The copy's content digest, and the tree object a folder has."""
    if scan.kind == "file":
        return files[""].digest, None
    tree = _tree_bytes(files)
    return str(hash_bytes(tree)), tree


def _version_id(digest: str) -> str:
    return Digest.parse(digest).hexdigest[:12]


def _digest_of(scan: _Scan, cache: DataCache, *, rehash: bool = False) -> str:
    """The working copy's content digest: remembered by signature, else hashed file by file."""
    if not rehash:
        known = cache.known(scan)
        if known is not None:
            return known
    files = _file_digests(scan, cache, rehash=rehash)
    digest, _ = _content(scan, files)
    _remember_if_steady(scan, cache, digest)
    return digest


def working_digest(path: Path, cache: DataCache) -> str | None:
    """The content digest of the file or folder at ``path`` (None when missing), cached.

    Raises:
        keel.errors.UserError: ``path`` is not a file or folder, or cannot be read.
    """
    scan = _scan(path, cache.now_ns)
    return None if scan.kind == "missing" else _digest_of(scan, cache)


def _remember_if_steady(scan: _Scan, cache: DataCache, digest: str) -> None:
    """Remember the digest only if nothing changed while the files were read."""
    again = _scan(scan.root, cache.now_ns)
    if again.signature == scan.signature:
        cache.remember(again, digest)


_PIPE_DEPTH = 3
_PIPE_CHUNK = 4 * CHUNK  # 4 MiB: measured plateau of read+hash overlap on 2 cores
_DONE = object()


def hash_file_pipelined(path: str | os.PathLike[str]) -> tuple[Digest, int]:
    """Digest and size of a file; a second thread reads the next chunk while one is hashed.

    blake3 and ``readinto`` both release the GIL, so reading and hashing overlap (measured:
    2.5 GB/s for a plain loop, 3.8 GB/s overlapped). Memory is ``_PIPE_DEPTH`` chunks.
    """
    with open(path, "rb", buffering=0) as fh:
        if os.fstat(fh.fileno()).st_size < 2 * _PIPE_CHUNK:
            return hash_stream(fh)
        free: queue.Queue[bytearray] = queue.Queue()
        full: queue.Queue[object] = queue.Queue()
        for _ in range(_PIPE_DEPTH):
            free.put(bytearray(_PIPE_CHUNK))
        stop = threading.Event()

        def read() -> None:
            try:
                while not stop.is_set():
                    buf = free.get()
                    n = fh.readinto(buf)
                    full.put((buf, n))
                    if not n:
                        return
            except OSError as exc:
                full.put(exc)
            finally:
                full.put(_DONE)

        reader = threading.Thread(target=read, name="keel-hash-read", daemon=True)
        reader.start()
        try:
            return _consume(full, free)
        finally:
            stop.set()
            free.put(bytearray(0))  # wake the reader if it waits for a buffer
            reader.join()


def _consume(full: queue.Queue[object], free: queue.Queue[bytearray]) -> tuple[Digest, int]:
    hasher = Hasher()
    while True:
        item = full.get()
        if isinstance(item, OSError):
            raise item
        if not isinstance(item, tuple):
            raise OSError("the file could not be read to the end")
        buf, n = item
        if not n:
            return hasher.digest(), hasher.size
        hasher.update(memoryview(buf)[:n])
        free.put(buf)


# -- the version store --------------------------------------------------------------------------


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


def load_version(ws: Workspace, digest: Digest) -> DatasetVersion:
    """Read the version record stored under ``digest`` (verified on read)."""
    return DatasetVersion.from_json(loads(ws.objects.get_bytes(digest)))


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


def version_files(ws: Workspace, version: DatasetVersion) -> dict[str, TreeEntry]:
    """The files of a version by POSIX path (a file version has one, named after its source)."""
    if version.kind == "file":
        name = Path(version.source_path or version.name).name
        return {name: TreeEntry(version.digest, version.size)}
    digest = Digest.parse(version.digest)
    return tree_entries(loads(ws.objects.get_bytes(digest)), digest=version.digest)


def _existing(ws: Workspace, name: str, version: str, digest: str) -> DatasetVersion | None:
    """The stored version ``name@version`` if any; a different digest is an id collision."""
    found = ws.objects.get_ref(version_ref_name(name, version))
    if found is None:
        return None
    existing = load_version(ws, found)
    if existing.digest != digest:
        raise UserError(f"{name}@{version} already names other content ({existing.digest}); "
                        "this cannot happen by chance: run `keel verify`")  # fmt: skip
    return existing


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOutcome:
    """The version the content is; ``created`` is False when it already existed."""

    version: DatasetVersion
    created: bool


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


def publish_version(ws: Workspace, record: DatasetVersion) -> AddOutcome:
    """Store the record, then point its ref at it (create-only: the first writer wins)."""
    digest = ws.objects.put_bytes(canonical_json(record.to_json()))
    if ws.objects.set_ref(record.ref_name, digest, create_only=True):
        return AddOutcome(version=record, created=True)
    existing = _existing(ws, record.name, record.version, record.digest)
    assert existing is not None  # the ref exists: set_ref refused to replace it
    return AddOutcome(version=existing, created=False)


def who(environ: Mapping[str, str]) -> str:
    """The OS user recorded as a version's author."""
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if name := environ.get(var):
            return name
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def source_text(ws: Workspace, path: Path) -> str:
    """``path`` relative to the project (POSIX) when inside it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(ws.root).as_posix()
    except ValueError:
        return str(absolute)


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
        scan = _scan(path, cache.now_ns)
        if scan.kind == "missing":
            raise UserError(f"{path} does not exist; give the file or folder to add")
        if scan.kind == "dir" and not scan.files:
            raise UserError(f"folder {path} has no files to version")
        known = cache.known(scan)
        if known is not None and (found := _existing(ws, name, _version_id(known), known)):
            return AddOutcome(version=found, created=False)
        files = _file_digests(scan, cache, rehash=False)
        digest, tree = _content(scan, files)
        _remember_if_steady(scan, cache, digest)
        existing = _existing(ws, name, _version_id(digest), digest)
        if existing is not None:
            return AddOutcome(version=existing, created=False)
        contract, profile = check_version(
            ws, name=name, path=scan.root, contract_file=contract_file, breaking=breaking
        )
        _store_files(ws, scan, files, on_progress)
        if tree is not None:
            ws.objects.put_bytes(tree)
        record = DatasetVersion(
            name=name, version=_version_id(digest), digest=digest, kind=scan.kind,
            size=sum(f.size for f in files.values()), files=len(files),
            created_at=iso(ws.clock.now()), who=who(ws.environ), why=why,
            source_path=source_text(ws, scan.root), lineage=DatasetLineage(),
            contract=contract, profile=profile, breaking=breaking,
        )  # fmt: skip
        return publish_version(ws, record)
    finally:
        cache.save()


def _store_files(
    ws: Workspace, scan: _Scan, files: Mapping[str, TreeEntry], on_progress: ProgressCallback
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


def materialise(ws: Workspace, version: DatasetVersion, dest: Path, *, writable: bool) -> None:
    """Build ``version`` in a temporary sibling of ``dest``, then swap it into place.

    Raises:
        keel.errors.UserError: ``dest`` holds (or lies in) the project folder or the store, or
            cannot be written; an object of the version is missing from the store.
    """
    resolved, store = dest.resolve(), ws.store_root.resolve()
    if ws.root.resolve().is_relative_to(resolved):
        raise UserError(f"refusing to write {dest}: it holds the project")
    if store.is_relative_to(resolved) or resolved.is_relative_to(store):
        raise UserError(f"refusing to write {dest}: it is keel's store")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.keel-", dir=dest.parent))
    try:
        staged = work / "new"
        placer = _Placer(ws, version, writable=writable)
        if version.kind == "file":
            placer.place(version.digest, staged)
        else:
            staged.mkdir()
            for rel, entry in sorted(version_files(ws, version).items()):
                target = staged.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                placer.place(entry.digest, target)
        _swap(staged, dest, work / "old")
    except OSError as exc:
        raise UserError(f"cannot write {dest}: {exc.strerror or exc}; check that its folder "
                        "is writable") from exc  # fmt: skip
    finally:
        _remove_tree(work)


def _swap(staged: Path, dest: Path, old: Path) -> None:
    """Rename ``staged`` to ``dest``; an existing ``dest`` goes to ``old`` (back on failure)."""
    moved = os.path.lexists(dest)
    if moved:
        os.rename(dest, old)
    try:
        os.rename(staged, dest)
    except OSError:
        if moved:
            os.rename(old, dest)
        raise


class _Placer:
    """Puts store objects at paths: a hard link when safe, else a copy (read-only unless asked)."""

    def __init__(self, ws: Workspace, version: DatasetVersion, *, writable: bool) -> None:
        self._ws = ws
        self._version = version
        self._writable = writable
        self._link = not writable

    def place(self, digest: str, target: Path) -> None:
        source = self._ws.objects.object_path(Digest.parse(digest))
        if not os.path.exists(source):
            raise UserError(f"{self._version.ref}: object {digest} is not in the store; "
                            "`keel pull` it from a remote, or run `keel verify`")  # fmt: skip
        if self._link and self._try_link(source, target):
            return
        shutil.copyfile(source, target)
        os.chmod(target, 0o644 if self._writable else 0o444)

    def _try_link(self, source: Path, target: Path) -> bool:
        try:
            os.link(source, target)
        except OSError:  # another filesystem, or links not allowed: copy from now on
            self._link = False
            return False
        if os.access(target, os.W_OK):  # the user (root) could write through it: never link
            os.unlink(target)
            self._link = False
            return False
        return True


def _remove_tree(path: Path) -> None:
    def retry(func: Callable[..., object], name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        os.chmod(parent, stat.S_IRWXU)
        func(name)

    if path.exists():
        try:
            if sys.version_info >= (3, 12):
                shutil.rmtree(path, onexc=retry)
            else:
                shutil.rmtree(path, onerror=retry)
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)


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
        scan = _scan(path, cache.now_ns)
        shown = source_text(ws, path)
        if scan.kind == "missing":
            return DatasetStatus(expected=expected, latest=latest, path=shown, state="missing")
        if not rehash and cache.known(scan) == expected.digest:
            return DatasetStatus(expected=expected, latest=latest, path=shown, state="unchanged",
                                 digest=expected.digest)  # fmt: skip
        files = _file_digests(scan, cache, rehash=rehash)
        digest, _ = _content(scan, files)
        _remember_if_steady(scan, cache, digest)
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
    ws: Workspace, expected: DatasetVersion, scan: _Scan, files: Mapping[str, TreeEntry]
) -> TreeChanges:
    old = {rel: e.digest for rel, e in version_files(ws, expected).items()}
    if scan.kind == "file":
        name = next(iter(old)) if expected.kind == "file" else scan.root.name
        return TreeChanges.between(old, {name: files[""].digest})
    return TreeChanges.between(old, {rel: e.digest for rel, e in files.items()})


def version_holding(ws: Workspace, name: str, digest: str) -> str | None:
    """The version of ``name`` whose content is ``digest``, if stored."""
    found = _existing(ws, name, _version_id(digest), digest)
    return found.version if found else None
