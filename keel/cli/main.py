"""Entry point of the `keel` command: the click group, global options and error reporting.

Commands live in sibling modules and import the library lazily, so `keel --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import ClassVar

import click

from keel import __version__
from keel.cli.context import Ctx
from keel.errors import KeelError, UserError, ValidationError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _LazyGroup(click.Group):
    """A group whose commands are imported only when invoked or listed in help."""

    _commands: ClassVar[dict[str, tuple[str, str]]] = {
        "init": ("keel.cli.cmd_init", "init_cmd"),
        "run": ("keel.cli.cmd_run", "run_cmd"),
        "sweep": ("keel.cli.cmd_sweep", "sweep_group"),
        "ls": ("keel.cli.cmd_ls", "ls_cmd"),
        "show": ("keel.cli.cmd_show", "show_cmd"),
        "params": ("keel.cli.cmd_params", "params_cmd"),
        "verify": ("keel.cli.cmd_store", "verify_cmd"),
        "reindex": ("keel.cli.cmd_store", "reindex_cmd"),
        "migrate": ("keel.cli.cmd_store", "migrate_cmd"),
        "diff": ("keel.cli.cmd_diff", "diff_cmd"),
        "why": ("keel.cli.cmd_why", "why_cmd"),
        "reproduce": ("keel.cli.cmd_reproduce", "reproduce_cmd"),
        "determinism": ("keel.cli.cmd_reproduce", "determinism_cmd"),
        "lock": ("keel.cli.cmd_lock", "lock_cmd"),
        "check": ("keel.cli.cmd_lock", "check_cmd"),
        "baseline": ("keel.cli.cmd_baseline", "baseline_group"),
        "gate": ("keel.cli.cmd_baseline", "gate_cmd"),
        "push": ("keel.cli.cmd_remote", "push_cmd"),
        "pull": ("keel.cli.cmd_remote", "pull_cmd"),
        "gc": ("keel.cli.cmd_remote", "gc_cmd"),
        "data": ("keel.cli.cmd_data", "data_group"),
        "lineage": ("keel.cli.cmd_data", "lineage_cmd"),
        "repro": ("keel.cli.cmd_pipeline", "repro_cmd"),
        "status": ("keel.cli.cmd_pipeline", "status_cmd"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self._commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._commands.get(cmd_name)
        if target is None:
            return None
        import importlib

        command: click.Command = getattr(importlib.import_module(target[0]), target[1])
        return command


@click.group(cls=_LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "-C",
    "--project",
    "project",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project folder (default: the one containing keel.yaml at or above here).",
)
@click.option("--profile", envvar="KEEL_PROFILE", help="Profile from keel.yaml (default: dev).")
@click.version_option(__version__, prog_name="keel")
@click.pass_context
def cli(ctx: click.Context, project: Path | None, profile: str | None) -> None:
    """keel runs experiments so every result can be reproduced, explained and defended.

    \b
    Quick tour:
      keel init                 scaffold keel.yaml and an example experiment
      keel run estimate         run an experiment and seal what produced it
      keel ls                   list runs;  keel show @latest  one run in full
      keel params               the parameter catalog
      keel verify               re-hash every stored object

    Errors print one line; set KEEL_DEBUG=1 for a traceback.
    """
    ctx.obj = Ctx(project=project, profile=profile)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and turn keel errors into one-line messages and stable exit codes."""
    try:
        cli.main(args=argv, prog_name="keel", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except UserError as exc:
        if os.environ.get("KEEL_DEBUG"):
            traceback.print_exc()
        _print_user_error(exc)
        sys.exit(exc.code)
    except KeelError as exc:
        traceback.print_exc()
        click.echo(f"keel bug ({type(exc).__name__}): {exc}", err=True)
        sys.exit(exc.code)
    except BrokenPipeError:
        sys.exit(0)


def _print_user_error(exc: UserError) -> None:
    if isinstance(exc, ValidationError) and len(exc.problems) > 1:
        click.secho(f"error: {len(exc.problems)} problems:", fg="red", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        return
    click.echo(click.style("error: ", fg="red") + str(exc), err=True)


if __name__ == "__main__":
    main()
