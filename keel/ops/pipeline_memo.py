"""The last `keel status` answer, reused while nothing it looked at has changed.

A status answer is a function of keel.yaml (the pipeline's key), the targets, the stage state
file, the environment fingerprint and the files it looked at: each stage's inputs, outputs
and code, and every probe that resolved an import. The memo records all of them — a stat
signature per file (size, mtime, inode, device, ctime; or "absent") and what each import
probe found — with the answer, in ``.keel/cache/pipeline/status-<key>.json``. The next
status checks them (one ``stat`` each) and, when all hold, answers from the memo without
computing a single key: on 10,000 stages that is most of its time.

Not memoised: answers that depend on something a ``stat`` cannot vouch for (a folder
input's content, a dataset's versions), and any answer while a file it looked at is younger
than the stat caches' racy window (a change within the same timestamp tick could hide).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue
from keel.capture.codehash import probe_kind, signature
from keel.capture.environment import environment_fingerprint
from keel.ops.pipeline_cache import FOLDER, key_digest, pipeline_key
from keel.ops.pipeline_state import STATE_FILE
from keel.ops.statcache import RACY_NS

if TYPE_CHECKING:
    from keel.ops.stagekey import KeyContext
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
KEEP = 8  # memos kept (one per set of targets); older ones are removed when one is written
_VERSION = 1


class StatusMemo:
    """The memo of one status question (the workspace's pipeline and profile, the targets)."""

    def __init__(self, ws: Workspace, targets: Sequence[str], *, force: bool) -> None:
        self._ws = ws
        question = f"{pipeline_key(ws)}\0{ws.store_root}\0{force}\0" + "\0".join(targets)
        self.path = ws.cache_dir / FOLDER / f"status-{key_digest(question.encode())}.json"
        self._state = str(ws.store_root / STATE_FILE)
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """The environment fingerprint now (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = environment_fingerprint(None, self._ws.environ)
        return self._fingerprint

    def load(self) -> dict[str, JsonValue] | None:
        """The memorised answer, if everything it depends on is as it was."""
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return None
        files, kinds, doc = data.get("files"), data.get("kinds"), data.get("doc")
        if not (isinstance(files, dict) and isinstance(kinds, dict) and isinstance(doc, dict)):
            return None
        if data.get("state") != signature(self._state) or data.get("env") != self.fingerprint():
            return None
        for path, sig in files.items():
            if signature(path) != sig:
                return None
        for stem, kind in kinds.items():
            if probe_kind(Path(stem)) != kind:
                return None
        return doc

    def save(self, doc: dict[str, JsonValue], ctx: KeyContext) -> None:
        """Remember ``doc`` as the answer (unless it cannot be vouched for by stats)."""
        observed = ctx.observations()
        if observed is None:
            return
        files, kinds = observed
        state = signature(self._state)
        now = int(self._ws.clock.now().timestamp() * 1e9)
        stamps = [s for s in (*files.values(), state) if s is not None]
        if any(now - max(s[1], s[4]) < RACY_NS for s in stamps):
            return
        data = {"version": _VERSION, "state": state, "env": self.fingerprint(),
                "files": files, "kinds": kinds, "doc": doc}  # fmt: skip
        try:
            atomic_write_bytes(self.path, json.dumps(data).encode(), durable=False)
            _prune(self.path.parent)
        except OSError as exc:
            log.debug("status memo not written to %s: %s", self.path, exc)


def _prune(folder: Path) -> None:
    memos = [e for e in os.scandir(folder) if e.name.startswith("status-")]
    if len(memos) <= KEEP:
        return
    memos.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in memos[: len(memos) - KEEP]:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
