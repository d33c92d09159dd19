"""Per-invocation CLI state and helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from keel.ops.workspace import Workspace


@dataclass(slots=True)
class Ctx:
    """Global options given before the command."""

    project: Path | None
    profile: str | None

    def workspace(self) -> Workspace:
        """Open the project's workspace (raises ProjectNotFound with a hint)."""
        from keel.ops.workspace import Workspace

        return Workspace.open(self.project, profile=self.profile)


def console(*, stderr: bool = False) -> Console:
    """A rich console: colour on a terminal, plain text when piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output is read by people in files and pagers: do not squeeze it to 80 columns.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def echo_json(data: object) -> None:
    """Print JSON for machines (stable key order, UTF-8)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def stream_to(err: bool) -> object:
    """Binary stream for live child output."""
    return sys.stderr.buffer if err else sys.stdout.buffer
