"""Helpers shared by the benchmark scripts: a clean environment, timed commands, summaries.

A script run as ``python bench/x.py`` has ``bench/`` on its import path, so each imports this
module as ``_timing``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def keel_env(**extra: str) -> dict[str, str]:
    """This environment without KEEL_* settings (a personal profile or store cannot leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(extra)
    return env


def timed(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[float, str]:
    """Wall time in ms and stdout of one command; exits 2 with its stderr when it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), cwd=cwd, env=dict(env) if env is not None else keel_env(),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        sys.stderr.write(f"`{' '.join(argv)}` exited {done.returncode}:\n{done.stderr}")
        sys.exit(2)
    return elapsed, done.stdout


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90, min and max of the samples (in the samples' unit, here ms)."""
    ordered = sorted(samples)
    decile = statistics.quantiles(ordered, n=10) if len(ordered) > 1 else ordered * 9
    return {
        "median_ms": statistics.median(ordered),
        "p10_ms": decile[0],
        "p90_ms": decile[-1],
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
    }


def find_keel(given: Path | None = None) -> str:
    """The keel executable: ``given``, else the one installed next to this Python.

    Exits 2 with advice when there is none.
    """
    candidate = given if given is not None else Path(sys.executable).parent / "keel"
    found = shutil.which(str(candidate))
    if found is None:
        sys.exit(
            f"keel executable not found at {candidate}: install keel into this Python "
            "(pip install -e .) or pass --keel PATH"
        )
    return found


class BenchError(Exception):
    """A setup step or a timed command failed; the message says which and why."""


def run_in_temp_folder(
    args: argparse.Namespace, bench: Callable[[argparse.Namespace, Path], bool], *, prefix: str
) -> int:
    """Run ``bench(args, folder)`` in a new temporary folder; the process exit code.

    The folder is deleted afterwards unless ``args.keep``. Exit 2 on a BenchError, 1 when
    ``args.check`` is set and ``bench`` says a target was missed, else 0.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        met = bench(args, root)
    except BenchError as exc:
        hint = "" if args.keep else "\n(run again with --keep to inspect the project)"
        print(f"\nerror: {exc}{hint}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"project kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if args.check and not met else 0
