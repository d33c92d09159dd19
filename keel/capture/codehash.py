"""Code digests for cache keys: Python by syntax tree, other files by bytes, local imports followed.

A Python source's digest is the digest of ``ast.dump`` of its syntax tree without positions, so
an edit of comments, blank lines or layout leaves it unchanged while any change to what the
code does (a name, a constant, a docstring) changes it. A file that does not parse, and every
other file, is digested by its bytes.

:class:`CodeHasher` also lists each Python file's imports (anywhere in the file, also inside
functions and ``try`` blocks) and follows those that resolve to files inside the project, so
a stage's code is its entry files plus everything local they import, transitively.

Per-file answers (digest and imports) are cached in ``.keel/cache/code.json`` by the file's
path, size, mtime, inode, device and ctime, like :mod:`keel.ops.statcache` (and, like it, a
file younger than ``RACY_NS`` is not remembered). An unchanged file costs one ``stat``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from keel.base.atomic import atomic_write_bytes
from keel.base.digest import hash_bytes

log = logging.getLogger(__name__)

CACHE_FILE = "code.json"
RACY_NS = 2_000_000_000
MISSING = "missing"
_VERSION = 1
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".keel", ".hg", ".svn", "node_modules"})

Import = tuple[int, str, tuple[str, ...]]
"""``(level, module, names)``: ``import a.b`` is ``(0, "a.b", ())``; ``from ..m import x`` is
``(2, "m", ("x",))``."""


def python_digest(source: bytes) -> tuple[str, tuple[Import, ...]]:
    """The syntax-tree digest of a Python source and the imports it makes.

    A source that does not parse is digested by its bytes and imports nothing.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return str(hash_bytes(source)), ()
    dumped = ast.dump(tree, annotate_fields=True, include_attributes=False)
    return str(hash_bytes(dumped.encode())), _imports(tree)


def _imports(tree: ast.AST) -> tuple[Import, ...]:
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names if a.name != "*")
            found.append((node.level, node.module or "", names))
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class FileFacts:
    """A file's digest and, for Python, the imports it makes."""

    digest: str
    imports: tuple[Import, ...] = ()


_Signature = tuple[int, int, int, int, int]


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)


class CodeHasher:
    """Digests of code files and the closure of their local imports, cached by stat.

    One object serves one command: per-file answers and per-file import resolutions are
    memoised, so many stages sharing a script pay for it once.
    """

    def __init__(
        self,
        root: Path,
        entries: dict[str, list[object]],
        *,
        cache_file: Path | None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = root
        self._entries = entries
        self._cache_file = cache_file
        self._now_ns = now_ns
        self._facts: dict[Path, FileFacts | None] = {}
        self._edges: dict[tuple[Path, tuple[Path, ...]], tuple[Path, ...]] = {}
        self._kinds: dict[Path, str | None] = {}
        self._changed = False
        self.parsed = 0
        self.observed: dict[str, list[int] | None] = {}  # path -> stat signature, this process

    @classmethod
    def open(
        cls, root: Path, cache_dir: Path | None, *, now_ns: Callable[[], int] = time.time_ns
    ) -> CodeHasher:
        """A hasher for the project at ``root`` using the cache in ``cache_dir`` (None: none)."""
        cache_file = cache_dir / CACHE_FILE if cache_dir is not None else None
        entries: dict[str, list[object]] = {}
        if cache_file is not None:
            try:
                data = json.loads(cache_file.read_bytes())
                if data.get("version") == _VERSION and isinstance(data.get("entries"), dict):
                    entries = data["entries"]
            except (OSError, ValueError, AttributeError):
                entries = {}
        return cls(root, entries, cache_file=cache_file, now_ns=now_ns)

    def forget(self) -> None:
        """Forget per-process answers (files may have changed since); the cache stays."""
        self._facts.clear()
        self._edges.clear()
        self._kinds.clear()
        self.observed.clear()

    # -- files ----------------------------------------------------------------------------------

    def facts(self, path: Path) -> FileFacts | None:
        """Digest and imports of the file at ``path`` (absolute), or None when it is no file."""
        if path in self._facts:
            return self._facts[path]
        try:
            st = os.stat(path)
        except OSError:
            st = None
        self.observed[str(path)] = None if st is None else list(_signature(st))
        found = None if st is None or not _is_regular(st) else self._read(path, st)
        self._facts[path] = found
        return found

    def _read(self, path: Path, st: os.stat_result) -> FileFacts | None:
        key = str(path)
        entry = self._entries.get(key)
        cached = _cached(entry, st)
        if cached is not None:
            return cached
        try:
            data = path.read_bytes()
        except OSError:
            return None
        self.parsed += 1
        if path.suffix == ".py":
            digest, imports = python_digest(data)
        else:
            digest, imports = str(hash_bytes(data)), ()
        after = os.stat(path)
        recent = self._now_ns() - max(after.st_mtime_ns, after.st_ctime_ns) < RACY_NS
        if _signature(after) == _signature(st) and not recent:
            self._entries[key] = [*_signature(st), digest, [[a, b, list(c)] for a, b, c in imports]]
            self._changed = True
        return FileFacts(digest, imports)

    def digest(self, path: Path) -> str:
        """The file's digest, or ``"missing"`` when there is no file at ``path``."""
        found = self.facts(path)
        return MISSING if found is None else found.digest

    # -- imports --------------------------------------------------------------------------------

    def module_files(self, name: str, roots: Sequence[Path]) -> tuple[Path, ...]:
        """The project files importing ``name`` (``a.b.c``) loads, searched in ``roots``.

        Each package's ``__init__.py`` on the way counts; the first root holding the top-level
        name wins, as on ``sys.path``. Empty when the module is not in the project.
        """
        parts = [p for p in name.split(".") if p]
        for root in roots:
            if parts and self._kind(root / parts[0]) is not None:
                return self._walk_parts(root, parts)
        return ()

    def _walk_parts(self, base: Path, parts: Sequence[str]) -> tuple[Path, ...]:
        files: list[Path] = []
        here = base
        for part in parts:
            here = here / part
            kind = self._kind(here)
            if kind == "module":
                files.append(here.with_suffix(".py"))
                break
            if kind != "package":
                break
            if self._kind(here / "__init__.py") == "file":
                files.append(here / "__init__.py")
        return tuple(files)

    def _kind(self, stem: Path) -> str | None:
        """``module`` (stem.py), ``package`` (a folder), ``file`` (exists as is), else None."""
        if stem not in self._kinds:
            self._kinds[stem] = probe_kind(stem)
        return self._kinds[stem]

    def kinds(self) -> dict[str, str | None]:
        """Every import-resolution probe made so far: path stem -> what was there."""
        return {str(k): v for k, v in self._kinds.items()}

    def _imported(self, path: Path, roots: tuple[Path, ...]) -> tuple[Path, ...]:
        """Project files that ``path``'s imports load (memoised per file and roots)."""
        memo = self._edges.get((path, roots))
        if memo is not None:
            return memo
        facts = self.facts(path)
        found: list[Path] = []
        for imported in facts.imports if facts else ():
            found.extend(self._import_files(path, imported, roots=roots))
        result = tuple(dict.fromkeys(f for f in found if f != path and self.inside(f)))
        self._edges[(path, roots)] = result
        return result

    def _import_files(self, path: Path, imported: Import, *, roots: tuple[Path, ...]) -> list[Path]:
        level, module, names = imported
        parts = [p for p in module.split(".") if p]
        if level > 0:
            base = path.parent
            for _ in range(level - 1):
                base = base.parent
            files = list(self._walk_parts(base, parts)) if parts else []
            package: Path | None = base.joinpath(*parts)
        else:
            files = list(self.module_files(module, roots))
            package = self._package_dir(module, roots)
        if package is not None and self._kind(package) == "package":
            for name in names:  # `from pkg import sub` may import the submodule pkg/sub.py
                files.extend(self._walk_parts(package, [name]))
        return files

    def _package_dir(self, module: str, roots: Sequence[Path]) -> Path | None:
        parts = [p for p in module.split(".") if p]
        for root in roots:
            if parts and self._kind(root / parts[0]) is not None:
                return root.joinpath(*parts)
        return None

    def inside(self, path: Path) -> bool:
        """True for a path in the project, outside keel's and VCS folders."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        return not any(part in _SKIP_DIRS for part in rel.parts)

    def closure(self, files: Iterable[Path], roots: Sequence[Path]) -> dict[str, str]:
        """``{path relative to the project: digest}`` of ``files`` and every local import.

        Missing entry files are listed as ``"missing"``; imports that resolve to no project
        file are ignored (they are installed packages, recorded by the environment facet).
        """
        key_roots = tuple(roots)
        seen: dict[Path, None] = {}
        stack = list(files)
        while stack:
            path = stack.pop()
            if path in seen:
                continue
            seen[path] = None
            if path.suffix == ".py":
                stack.extend(self._imported(path, key_roots))
        return {self.rel(p): self.digest(p) for p in seen}

    def rel(self, path: Path) -> str:
        """``path`` relative to the project root, in POSIX form."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def expand(self, rel: str) -> list[Path]:
        """The files a ``deps`` entry names: the file, or every file below the folder."""
        path = self.root / rel
        if not path.is_dir():
            return [path]
        found: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(path):
            # A folder's listing decides which files count: remember its stat too.
            self.observed[dirpath] = list(_signature(os.stat(dirpath)))
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            found.extend(Path(dirpath, name) for name in sorted(filenames)
                         if not name.endswith((".pyc", ".pyo")))  # fmt: skip
        return found

    def save(self) -> None:
        """Write the cache if it changed (atomically; a failure only costs time later)."""
        if not self._changed or self._cache_file is None:
            return
        data = json.dumps({"version": _VERSION, "entries": self._entries})
        try:
            atomic_write_bytes(self._cache_file, data.encode(), durable=False)
            self._changed = False
        except OSError as exc:
            log.debug("code digest cache not written to %s: %s", self._cache_file, exc)


def probe_kind(stem: Path) -> str | None:
    """``module`` (``stem.py`` is a file), ``package`` (a folder), ``file``, or None."""
    if stem.suffix != ".py" and os.path.isfile(str(stem) + ".py"):
        return "module"
    if os.path.isdir(stem):
        return "package"
    if os.path.isfile(stem):
        return "file"
    return None


def signature(path: str) -> list[int] | None:
    """The stat signature :class:`CodeHasher` compares (None when ``path`` is gone)."""
    try:
        return list(_signature(os.stat(path)))
    except OSError:
        return None


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def _cached(entry: object, st: os.stat_result) -> FileFacts | None:
    """The entry's answer if it is well formed and its signature matches ``st``."""
    if not isinstance(entry, list) or len(entry) != 7 or entry[:5] != list(_signature(st)):
        return None
    try:
        imports = tuple((int(a), str(b), tuple(map(str, c))) for a, b, c in entry[6])
        return FileFacts(str(entry[5]), imports)
    except (TypeError, ValueError):  # a damaged entry is a miss, never an error
        return None
