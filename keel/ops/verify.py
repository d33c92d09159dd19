"""Re-hash every stored object and check that every ref points at an intact object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keel.ops.workspace import Workspace


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """What `keel verify` found. Truthy when everything is intact."""

    checked: int
    corrupt: tuple[str, ...]
    dangling_refs: tuple[tuple[str, str], ...]

    def __bool__(self) -> bool:
        return not self.corrupt and not self.dangling_refs


def _no_progress(done: int, total: int) -> None:
    """Default progress callback: nothing."""


def verify_store(
    ws: Workspace, *, on_progress: Callable[[int, int], None] = _no_progress
) -> VerifyReport:
    """Re-hash every object (streamed) and check refs; nothing is modified."""
    digests = sorted(ws.objects.iter_digests())
    corrupt: list[str] = []
    for n, digest in enumerate(digests, 1):
        if not ws.objects.verify(digest):
            corrupt.append(str(digest))
        on_progress(n, len(digests))
    dangling: list[tuple[str, str]] = []
    present = set(digests)
    for prefix in ("runs/", "active/", "pending/"):
        for name, digest in ws.objects.list_refs(prefix):
            if digest not in present:
                dangling.append((name, str(digest)))
    return VerifyReport(checked=len(digests), corrupt=tuple(corrupt), dangling_refs=tuple(dangling))
