"""Seed facts: the root seed, the derived PYTHONHASHSEED, and what the run seeded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from keel.base.canonical import JsonValue

HASHSEED_DERIVATION = "PYTHONHASHSEED = root seed mod 2**32 (unless set by the user)"


def pythonhashseed(seed: int, environ: Mapping[str, str]) -> tuple[str, str]:
    """The PYTHONHASHSEED to give the child and its source: ``"user"`` or ``"derived"``."""
    user = environ.get("PYTHONHASHSEED")
    if user is not None and user != "":
        return user, "user"
    return str(seed % 2**32), "derived"


def read_seeded(path: Path) -> tuple[dict[str, JsonValue], ...]:
    """Records written by ``keel.seed_everything()`` during the run (JSON lines)."""
    if not path.exists():
        return ()
    records: list[dict[str, JsonValue]] = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            records.append(json.loads(line))
    return tuple(records)
