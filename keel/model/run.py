"""Run statuses, run ids and the summary row the metadata index keeps per run."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import StrEnum

from keel.base.canonical import JsonValue

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


class RunStatus(StrEnum):
    """Lifecycle of a run. ``lost`` is a run whose keel process died without recording an end."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"

    @property
    def finished(self) -> bool:
        """True for every terminal status."""
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.KILLED, RunStatus.LOST)


def new_run_id(now: float | None = None) -> str:
    """A short, time-sortable run id: 7 chars of seconds since 2020 + 7 random chars.

    35 random bits make two ids of the same second collide once in ~6,000 years at 100 runs a
    second; the run refuses to start on a collision anyway (its ``active/`` ref is create-only).
    """
    seconds = int((time.time() if now is None else now) - 1_577_836_800)
    head = _b32(max(seconds, 0), 7)
    tail = _b32(int.from_bytes(os.urandom(5), "big") >> 5, 7)  # 35 random bits
    return head + tail


def hostname() -> str:
    """This machine's host name, as recorded in manifests (``uname -n``)."""
    return os.uname().nodename


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """What the metadata index holds for one run (derived from its manifest or start record)."""

    id: str
    project: str
    experiment: str
    status: RunStatus
    created_at: str
    ended_at: str | None
    duration_s: float | None
    manifest: str | None  # manifest digest; None while running
    profile: str
    why: str | None
    host: str
    user: str
    pid: int | None
    git_commit: str | None
    git_dirty: bool | None
    params: dict[str, JsonValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
