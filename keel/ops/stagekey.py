"""A pipeline stage's cache key: its resolved config, code, input digests and environment.

- **config**: the digest of the stage's resolved configuration
  (:func:`keel.ops.pipeline_cache.resolved_config`), never keel.yaml's bytes;
- **code**: ``{path: digest}`` of the files its command names, the modules it runs, what they
  import from the project (transitively) and its ``deps`` (:mod:`keel.capture.codehash`:
  Python by syntax tree, so comments and layout do not count);
- **inputs**: ``{path: digest}`` of its declared inputs, taken before it runs (a dataset
  input is the digest of the version it would use);
- **env**: the digest of the interpreter's implementation, version, machine and installed
  packages. The environment fingerprint (cheap: a few ``stat`` calls) stands for it: a
  fingerprint seen before gives the digest recorded with it, and only a new one reads the
  package list (itself cached per fingerprint by the environment facet).

The key is the digest of the four. :func:`explain` turns two sets of components into the
reasons a user reads ("param c: 1.0 → 0.5", "code train.py changed", ...).
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue, loads
from keel.capture.codehash import MISSING, CodeHasher
from keel.capture.data import store_path
from keel.capture.environment import capture_environment, environment_fingerprint
from keel.errors import KeelError
from keel.ops.pipeline_cache import key_digest
from keel.ops.statcache import RACY_NS, StatCache, cached_sink

if TYPE_CHECKING:
    from keel.ops.pipeline_cache import StageDef
    from keel.ops.workspace import Workspace

KEY_VERSION = 1
PATHS_FILE = "pipeline-paths.json"
PENDING = "pending"  # an input an upstream stage will rewrite before this one runs


class Components(NamedTuple):
    """What a stage's key is made of (see the module docstring).

    A NamedTuple for speed, like :class:`~keel.ops.pipeline_cache.StageDef`.
    """

    config: str
    params: dict[str, JsonValue]
    code: dict[str, str]
    inputs: dict[str, str]
    env: str

    @property
    def key(self) -> str:
        """The cache key: the digest of every component."""
        # Paths and digests hold no NUL, so NUL-separated text with counts is unambiguous (and
        # much cheaper than JSON on 10,000 stages).
        parts = [str(KEY_VERSION), self.config, str(len(self.code))]
        for name, digest in sorted(self.code.items()):
            parts += (name, digest)
        parts.append(str(len(self.inputs)))
        for name, digest in sorted(self.inputs.items()):
            parts += (name, digest)
        parts.append(self.env)
        return key_digest("\0".join(parts).encode())

    @property
    def complete(self) -> bool:
        """False while an input awaits an upstream stage."""
        return PENDING not in self.inputs.values()

    def to_json(self) -> dict[str, JsonValue]:
        """The form kept in the stage state and the manifest's ``stage`` facet."""
        return {"config": self.config, "params": self.params, "code": dict(self.code),
                "inputs": dict(self.inputs), "env": self.env}  # fmt: skip

    @classmethod
    def from_json(cls, data: JsonValue) -> Components | None:
        """Inverse of :meth:`to_json`; None when malformed."""
        if not isinstance(data, dict):
            return None
        params, code, inputs = data.get("params"), data.get("code"), data.get("inputs")
        if not (isinstance(params, dict) and isinstance(code, dict) and isinstance(inputs, dict)):
            return None
        return cls(
            config=str(data.get("config")),
            params=params,
            code={str(k): str(v) for k, v in code.items()},
            inputs={str(k): str(v) for k, v in inputs.items()},
            env=str(data.get("env")),
        )


class EnvProbe:
    """The environment component, read once per command."""

    def __init__(self, ws: Workspace, known: Callable[[str], str | None]) -> None:
        self._ws = ws
        self._known = known
        self.fingerprint = environment_fingerprint(None, ws.environ)
        self._digest: str | None = None
        self._facts: dict[str, JsonValue] | None = None

    def digest(self) -> str:
        """The environment digest (from the fingerprint when it was seen before)."""
        if self._digest is None:
            self._digest = self._known(self.fingerprint) or env_digest(self.facts())
        return self._digest

    def facts(self) -> dict[str, JsonValue]:
        """The environment facet (python and packages) as a run would record it now."""
        if self._facts is None:
            self._facts = capture_environment(
                project_root=self._ws.root, environ=self._ws.environ, cache_dir=self._ws.cache_dir
            )
        return self._facts


def env_digest(facet: Mapping[str, JsonValue]) -> str:
    """The digest of an environment facet's interpreter and packages."""
    python = facet.get("python")
    python = python if isinstance(python, dict) else {}
    basis = {
        "python": {k: python.get(k) for k in ("implementation", "version", "machine")},
        "packages": facet.get("packages"),
    }
    return key_digest(json.dumps(basis, sort_keys=True).encode())


class KeyContext:
    """Computes stages' components against the project as it is now (one per command)."""

    def __init__(self, ws: Workspace, env: EnvProbe) -> None:
        self.ws = ws
        self.env = env
        self._files: StatCache | None = None
        self._paths = PathDigests(ws.root, cache_dir=ws.cache_dir, files=lambda: self.files)
        self.code = CodeHasher.open(ws.root, ws.cache_dir)
        self._versions: dict[str, str] = {}
        self._digests: dict[str, str] = {}
        self._closures: dict[tuple[object, ...], dict[str, str]] = {}

    def components(self, stage: StageDef, *, known: Mapping[str, str] | None = None) -> Components:
        """The stage's components now; ``known`` gives inputs' digests decided upstream."""
        known = known or {}
        inputs = {p: known[p] if p in known else self.input_digest(p) for p in stage.inputs}
        for path, ref in stage.datasets:
            inputs[path] = known[path] if path in known else self._dataset_digest(ref)
        return Components(
            config=stage.config,
            params=stage.params,
            code=self.code_of(stage),
            inputs=inputs,
            env=self.env.digest(),
        )

    @property
    def files(self) -> StatCache:
        """keel's per-file stat cache, read on first use (an unchanged tree never needs it)."""
        if self._files is None:
            self._files = StatCache.open(self.ws.cache_dir)
        return self._files

    def input_digest(self, rel: str) -> str:
        """The digest of a file or folder in the project (``"missing"`` when absent)."""
        found = self._digests.get(rel)
        if found is None:
            found = self._digests[rel] = self._paths.digest(rel)
        return found

    def observations(self) -> tuple[dict[str, list[int] | None], dict[str, str | None]] | None:
        """Every file's stat signature and import probe the answers so far depend on.

        None when they also depend on something a stat cannot vouch for (a folder's content,
        a dataset's versions): then nothing may be concluded from unchanged signatures.
        """
        if self._paths.folders or self._versions:
            return None
        return {**self.code.observed, **self._paths.observed}, self.code.kinds()

    def forget(self) -> None:
        """Drop what this object remembers of the tree (after a stage changed it)."""
        self._digests.clear()
        self._versions.clear()
        self._closures.clear()
        self.code.forget()

    def _dataset_digest(self, ref: str) -> str:
        if ref not in self._versions:
            from keel.ops.data import get_version

            try:
                self._versions[ref] = get_version(self.ws, ref).digest
            except KeelError:
                self._versions[ref] = MISSING
        return self._versions[ref]

    def code_of(self, stage: StageDef) -> dict[str, str]:
        """``{path: digest}`` of the stage's code (see the module docstring)."""
        root = self.ws.root
        cwd = (root / stage.cwd) if stage.cwd != "." else root
        memo = (stage.cwd, stage.candidates, stage.modules, stage.deps)
        found = self._closures.get(memo)
        if found is not None:
            return found
        entries: list[Path] = []
        script_dirs: list[Path] = []
        for text in stage.candidates:
            path = Path(cwd, text)
            if self.code.inside(path) and self.code.facts(path) is not None:
                entries.append(path)
                if path.suffix == ".py":
                    script_dirs.append(path.parent)
        roots = tuple(dict.fromkeys([*script_dirs, cwd, root]))
        for module in stage.modules:
            entries.extend(self.code.module_files(module, roots))
        declared: dict[str, str] = {}
        for dep in stage.deps:
            files = self.code.expand(dep)
            entries.extend(files)
            declared.update({self.code.rel(f): MISSING for f in files})
        found = {**declared, **self.code.closure(entries, roots)}
        self._closures[memo] = found
        return found

    def save(self) -> None:
        """Keep what was learnt about files for the next command."""
        self._paths.save()
        if self._files is not None:
            self._files.save()
        self.code.save()


class PathDigests:
    """Digests of the files stages read and write, by project path, answered by one ``stat``.

    A lean front of :class:`~keel.ops.statcache.StatCache` (which does the hashing, and is
    asked on every miss): entries are keyed by the path relative to the project and compared
    field by field, because `keel status` asks twice per stage and 10,000 stages must take
    well under a second. Same signature (size, mtime, inode, device, ctime) and same racy
    window as the stat cache; folders always go through it.
    """

    def __init__(self, root: Path, *, cache_dir: Path, files: Callable[[], StatCache]) -> None:
        self._root = str(root) + os.sep
        self._file = cache_dir / PATHS_FILE
        self._files = files
        self._changed = False
        self.observed: dict[str, list[int] | None] = {}  # path -> stat signature (see memo)
        self.folders = False  # a folder was digested (its files are not in ``observed``)
        try:
            data = json.loads(self._file.read_bytes())
            entries = data["entries"] if data.get("version") == 1 else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            entries = {}
        self._entries: dict[str, list[object]] = entries if isinstance(entries, dict) else {}

    def digest(self, rel: str) -> str:
        """The digest of the file or folder at ``rel`` (``"missing"`` when there is none)."""
        full = self._root + rel
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            self.observed[full] = None
            return MISSING
        if not stat.S_ISREG(st.st_mode):
            self.folders = True
            digest = store_path(Path(full), cached_sink(self._files())).get("digest")
            return str(digest) if digest is not None else MISSING
        self.observed[full] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]
        entry = self._entries.get(rel)
        if (
            entry is not None
            and len(entry) == 6
            and entry[1] == st.st_mtime_ns
            and entry[0] == st.st_size
            and entry[4] == st.st_ctime_ns
            and entry[2] == st.st_ino
            and entry[3] == st.st_dev
        ):
            return str(entry[5])
        found = str(self._files().digest(Path(full))[0])
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_NS:
            sig = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]
            self._entries[rel] = [*sig, found]
            self._changed = True
        return found

    def save(self) -> None:
        """Write the entries if they changed (a failure only costs time later)."""
        if not self._changed:
            return
        try:
            atomic_write_bytes(
                self._file,
                json.dumps({"version": 1, "entries": self._entries}).encode(),
                durable=False,
            )
            self._changed = False
        except OSError:
            pass


def manifest_json(ws: Workspace, run_id: str) -> dict[str, JsonValue] | None:
    """A sealed run's manifest as JSON, or None when it cannot be read."""
    try:
        digest = ws.objects.get_ref(f"runs/{run_id}")
        data = loads(ws.objects.get_bytes(digest)) if digest is not None else None
    except (KeelError, ValueError):
        return None
    return data if isinstance(data, dict) else None
