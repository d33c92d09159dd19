"""What each stage's successful runs were: one consolidated file in the store, kept by `repro`.

``<store>/stages/state.json`` maps each stage to its latest successful run (key, run id and
components, to explain what changed since) and to the last ``MAX_KEYS`` keys that succeeded
(key → run id and output digests), so going back to an earlier configuration is a hit. It also
maps environment fingerprints to environment digests (see :mod:`keel.ops.stagekey`).

`keel status` reads this file whole on every call, so it is laid out for that: the components
(needed only to explain a stage that would run) are kept as JSON *text* inside it, parsed on
demand — scanning a string costs a fraction of building its objects, 10,000 times over.

The file is a cache of facts every stage run's manifest carries (its ``stage`` facet): when it
is missing, it is rebuilt from the manifests. Updates are applied to a fresh read of the file
under an exclusive lock, then written atomically, so concurrent `keel repro`\\ s of different
stages do not lose each other's results.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue, loads
from keel.capture.codehash import MISSING
from keel.errors import KeelError
from keel.ops.pipeline_graph import norm
from keel.ops.stagekey import Components

if TYPE_CHECKING:
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
STATE_FILE = Path("stages") / "state.json"
MAX_KEYS = 16
MAX_ENVS = 16
_VERSION = 2

_Data = dict[str, JsonValue]
_Update = Callable[[_Data], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """A successful run of a stage with a given key, and the digests of its outputs."""

    key: str
    run: str
    outputs: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Latest:
    """A stage's latest successful run and the components it ran with."""

    key: str
    run: str
    components: Components | None


class StageState:
    """The consolidated stage state of one store."""

    def __init__(self, path: Path, data: _Data) -> None:
        self.path = path
        self._data = data
        self._pending: list[_Update] = []

    @classmethod
    def load(cls, ws: Workspace) -> StageState:
        """The store's state (rebuilt from the run manifests when the file is missing)."""
        path = ws.store_root / STATE_FILE
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            state = cls(path, _empty())
            state._rebuild(ws)
            return state
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            log.warning("stage state %s is unreadable; it is rebuilt from the runs", path)
            state = cls(path, _empty())
            state._rebuild(ws)
            return state
        return cls(path, data)

    def _stage(self, name: str) -> dict[str, JsonValue]:
        stages = self._data.get("stages")
        entry = stages.get(name) if isinstance(stages, dict) else None
        return entry if isinstance(entry, dict) else {}

    def hit(self, name: str, key: str) -> Hit | None:
        """The successful run of ``name`` with ``key``, if there was one."""
        keys = self._stage(name).get("keys")
        entry = keys.get(key) if isinstance(keys, dict) else None
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
            return None
        return Hit(key=key, run=str(entry[0]), outputs=entry[1])  # type: ignore[arg-type]

    def latest(self, name: str) -> Latest | None:
        """The latest successful run of ``name``."""
        entry = self._stage(name)
        if "key" not in entry:
            return None
        try:
            components = Components.from_json(json.loads(str(entry.get("components"))))
        except ValueError:
            components = None
        return Latest(key=str(entry["key"]), run=str(entry.get("run")), components=components)

    def latest_key(self, name: str) -> str | None:
        """The key of the latest successful run of ``name`` (cheaper than :meth:`latest`)."""
        key = self._stage(name).get("key")
        return key if isinstance(key, str) else None

    def failed(self, name: str) -> tuple[str, str] | None:
        """``(key, run id)`` of the stage's last run when it failed after its last success."""
        entry = self._stage(name).get("failed")
        if isinstance(entry, list) and len(entry) == 2:
            return str(entry[0]), str(entry[1])
        return None

    def env_digest(self, fingerprint: str) -> str | None:
        """The environment digest recorded for a fingerprint."""
        envs = self._data.get("envs")
        found = envs.get(fingerprint) if isinstance(envs, dict) else None
        return found if isinstance(found, str) else None

    # -- updates --------------------------------------------------------------------------------

    def record_success(
        self, name: str, *, components: Components, run: str, outputs: Mapping[str, str]
    ) -> None:
        """Remember a successful run of ``name`` (applied now; written by :meth:`flush`)."""
        key = components.key
        text = json.dumps(components.to_json(), separators=(",", ":"), sort_keys=True)
        hit: JsonValue = [run, dict(outputs)]

        def update(data: _Data) -> None:
            entry = _entry(data, name)
            keys = entry.get("keys")
            keys = dict(keys) if isinstance(keys, dict) else {}
            keys.pop(key, None)
            keys[key] = hit  # newest last
            entry.update(
                key=key, run=run, components=text, keys=dict(list(keys.items())[-MAX_KEYS:])
            )
            entry.pop("failed", None)

        self._apply(update)

    def record_failure(self, name: str, *, key: str, run: str) -> None:
        """Remember that ``name`` failed with ``key``."""

        def update(data: _Data) -> None:
            _entry(data, name)["failed"] = [key, run]

        self._apply(update)

    def remember_env(self, fingerprint: str, digest: str) -> None:
        """Remember the environment digest of a fingerprint."""
        if self.env_digest(fingerprint) == digest:
            return

        def update(data: _Data) -> None:
            envs = data.get("envs")
            envs = dict(envs) if isinstance(envs, dict) else {}
            envs.pop(fingerprint, None)
            envs[fingerprint] = digest
            data["envs"] = dict(list(envs.items())[-MAX_ENVS:])

        self._apply(update)

    def _apply(self, update: _Update) -> None:
        update(self._data)
        self._pending.append(update)

    @property
    def dirty(self) -> bool:
        """True when updates wait to be written."""
        return bool(self._pending)

    def flush(self) -> None:
        """Apply the pending updates to the file as it is now, under a lock; write atomically."""
        if not self._pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_suffix(".lock")):
            try:
                data = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                data = None
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                data = self._data
            else:
                for update in self._pending:
                    update(data)
            atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":")).encode())
        self._data = data
        self._pending.clear()

    # -- rebuild --------------------------------------------------------------------------------

    def _rebuild(self, ws: Workspace) -> None:
        """Recover the state from the ``stage`` facets of the store's sealed manifests."""
        found: list[tuple[str, str, _Data]] = []
        for _, digest in ws.objects.list_refs("runs/"):
            try:
                manifest = loads(ws.objects.get_bytes(digest))
            except (KeelError, ValueError):
                continue
            if isinstance(manifest, dict) and isinstance(manifest.get("stage"), dict):
                run = manifest.get("run")
                created = run.get("created_at") if isinstance(run, dict) else None
                found.append((str(created), str(digest), manifest))
        for _, _, manifest in sorted(found, key=lambda f: (f[0], f[1])):
            self._replay(manifest)
        if found or self._pending:
            try:
                self.flush()
            except OSError as exc:
                log.debug("stage state not written to %s: %s", self.path, exc)

    def _replay(self, manifest: _Data) -> None:
        facet = manifest.get("stage")
        run = manifest.get("run")
        if not isinstance(facet, dict) or not isinstance(run, dict):
            return
        components = Components.from_json(facet.get("components"))
        name, run_id = str(facet.get("name")), str(run.get("id"))
        if components is None or facet.get("key") != components.key:
            return
        if run.get("status") == "succeeded" and run_usable(manifest, components):
            self.record_success(
                name, components=components, run=run_id, outputs=output_digests(manifest)
            )
            fingerprint = facet.get("env_fingerprint")
            if isinstance(fingerprint, str):
                self.remember_env(fingerprint, components.env)
        elif run.get("status") in ("failed", "killed"):
            self.record_failure(name, key=components.key, run=run_id)


def run_usable(manifest: Mapping[str, JsonValue], components: Components) -> bool:
    """A succeeded run counts for its key only if what it read is what the key says.

    Its inputs' digests before the run must be the key's, and no input may have changed while
    it ran. (Whether the stage's code changed while it ran is checked by the caller: the
    manifest's code facet also sees other stages' outputs appear in the tree.)
    """
    records = manifest.get("inputs")
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict):
            return False
        if record.get("changed_during_run"):
            return False
        expected = components.inputs.get(norm(str(record.get("path"))))
        got = record.get("digest") or MISSING
        if expected is not None and expected != got:
            return False
    return True


def output_digests(manifest: Mapping[str, JsonValue]) -> dict[str, str]:
    """``{path: digest}`` of a manifest's declared outputs (``"missing"`` when not produced)."""
    found: dict[str, str] = {}
    records = manifest.get("outputs")
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict):
            found[norm(str(record.get("path")))] = str(record.get("digest") or MISSING)
    return found


def _empty() -> _Data:
    return {"version": _VERSION, "stages": {}, "envs": {}}


def _entry(data: _Data, name: str) -> dict[str, JsonValue]:
    stages = data.get("stages")
    if not isinstance(stages, dict):
        stages = data["stages"] = {}
    entry = stages.get(name)
    if not isinstance(entry, dict):
        entry = stages[name] = {}
    return entry


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
