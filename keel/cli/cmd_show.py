"""`keel show`."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.context import Ctx, console, echo_json


@click.command("show")
@click.argument("run", default="@latest")
@click.option("--tail", type=int, default=20, show_default=True, help="Lines of stdout to show.")
@click.option("--json", "as_json", is_flag=True, help="The whole manifest as JSON, with its seal.")
@click.pass_obj
def show_cmd(ctx: Ctx, run: str, tail: int, as_json: bool) -> None:
    """Show one run in full: params with sources, code, environment, data, metrics, logs.

    RUN is a run id, a unique prefix of one, EXPERIMENT@latest or @latest (the default).

    \b
    Examples:
      keel show @latest
      keel show 06g0q9y --json
    """
    from keel.ops.listing import show_run
    from keel.report.show import render_manifest

    view = show_run(ctx.workspace(), run, tail=tail)
    if as_json:
        echo_json(
            {
                "digest": view.digest,
                "status": view.summary.status.value,
                "manifest": view.manifest.to_json(),
                "noise": _noise_json(view.noise),
            }
        )
        return
    console().print(
        render_manifest(view.manifest, digest=view.digest, log_tail=view.log_tail, noise=view.noise)
    )


def _noise_json(noise: tuple[Any, str] | None) -> dict[str, Any] | None:
    """The experiment's noise profile and its digest, or None."""
    if noise is None:
        return None
    profile, digest = noise
    return {"digest": digest, "profile": profile.to_json()}
