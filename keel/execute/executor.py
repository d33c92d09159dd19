"""The Executor port: start a prepared command, stream its output, report how it ended."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from keel.model.run import RunStatus

OutputCallback = Callable[[str, bytes], None]
"""Called with ("stdout" | "stderr", chunk) as the child writes; must not raise."""


def _ignore_output(stream: str, chunk: bytes) -> None:
    """The default output callback: drop the chunk (the library never prints)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecRequest:
    """What to run, where, with which environment, and where its logs go."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    stdout_path: Path
    stderr_path: Path
    timeout_s: float | None = None
    on_output: OutputCallback = _ignore_output


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    """How the run ended. ``signal`` names the signal that ended it, if any."""

    status: RunStatus
    exit_code: int | None
    signal: str | None
    started_at: datetime
    ended_at: datetime
    duration_s: float
    pid: int | None
    reason: str | None = None


class Executor(Protocol):
    """Runs one prepared command to completion.

    Contract: ``execute`` returns (never raises) for anything the child does — a non-zero exit
    is FAILED, a stop by signal, timeout or the user's Ctrl-C is KILLED; both log files exist
    afterwards with everything the child wrote. It raises ``keel.errors.ExecutionError`` only
    when the command cannot be started at all.
    """

    name: str
    parallelism: int

    def execute(self, request: ExecRequest) -> ExecResult:
        """Run ``request`` and wait for it to end."""
        ...
