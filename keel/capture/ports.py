"""Ports that capture needs from later stages; ``keel.ops`` plugs in the object store."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from keel.base.digest import Digest


class BlobSink(Protocol):
    """Where captured bytes go. Implementations must be idempotent for equal content."""

    def put_bytes(self, data: bytes) -> Digest:
        """Store ``data``; return its digest."""
        ...

    def put_file(self, path: Path) -> Digest:
        """Store a file's content, streamed; return its digest."""
        ...
