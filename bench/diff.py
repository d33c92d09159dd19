"""Measure how long ``keel diff A B`` takes to answer.

Builds a throwaway project in a temporary folder with ``keel init``, makes it a git
repository with one commit, runs the example experiment, commits an edit to its script, and
runs it again with one parameter overridden. The two runs then differ in code (one commit, one
file), config (one parameter), outputs and metrics: every part of the diff does real work,
git included.

Then times ``keel diff A B`` (the rendered report) and ``keel diff A B --json``, interleaved
round by round so that drift in machine load hits both alike, after one untimed warm-up round.

Usage::

    python bench/diff.py [--runs 20] [--keel PATH] [--keep] [--check]

Bytecode caching is left on for the timed commands even when the calling shell disables it
(``PYTHONDONTWRITEBYTECODE``): an installed keel has its bytecode, so recompiling every module
on every call would measure the compiler, not keel. Exits 2 when a command fails, and with
``--check`` 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from _timing import BenchError, run_in_temp_folder

TARGET_MS = 200.0
_DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE",)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("--keel", type=Path, help="keel executable (default: next to python)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2 to compute a spread")
    return args


def find_keel(given: Path | None) -> str:
    """Return the keel executable: ``given``, else the one installed next to this Python."""
    candidate = given if given is not None else Path(sys.executable).parent / "keel"
    found = shutil.which(str(candidate))
    if found is None:
        raise BenchError(
            f"keel executable not found at {candidate}: install keel into this Python "
            "(pip install -e .) or pass --keel PATH"
        )
    return found


def run_checked(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    """Run a setup command and return its stdout; raise BenchError when it fails."""
    proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(
            f"setup command failed (exit {proc.returncode}): {shlex.join(argv)}\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def make_project(root: Path, *, keel: str, env: Mapping[str, str]) -> tuple[str, str]:
    """Create the project with its two runs; return their ids (older first)."""
    git = ["git", "-c", "user.name=keel bench", "-c", "user.email=bench@example.invalid",
           "-c", "commit.gpgsign=false"]  # fmt: skip
    run_checked([keel, "init", str(root)], cwd=root.parent, env=env)
    run_checked(["git", "init", "-q"], cwd=root, env=env)
    run_checked([*git, "add", "-A"], cwd=root, env=env)
    run_checked([*git, "commit", "-qm", "bench project"], cwd=root, env=env)
    run_checked([keel, "run", "estimate"], cwd=root, env=env)
    script = next(root.glob("*.py"))
    script.write_text(script.read_text() + "\n# tuned\n")
    run_checked([*git, "commit", "-qam", "tune the script"], cwd=root, env=env)
    run_checked([keel, "run", "estimate", "-p", "samples=50000"], cwd=root, env=env)
    listing = run_checked([keel, "ls", "--json"], cwd=root, env=env)
    ids = [row["id"] for row in json.loads(listing)]
    if len(ids) != 2:
        raise BenchError(f"expected 2 runs in the project, found {len(ids)}")
    return ids[1], ids[0]


def time_once(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """Run a command once; return its wall time and CPU time (user + system) in ms.

    Raises BenchError when it fails.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                          capture_output=True)  # fmt: skip
    elapsed = (time.perf_counter() - start) * 1000.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip() or "(no stderr)"
        raise BenchError(f"{shlex.join(argv)} failed with exit code {proc.returncode}\n{stderr}")
    if b"no difference" in proc.stdout:
        raise BenchError(f"{shlex.join(argv)} found no difference: the project is not as built")
    return elapsed, cpu


def measure(
    cases: Mapping[str, list[str]], *, runs: int, cwd: Path, env: Mapping[str, str]
) -> dict[str, list[tuple[float, float]]]:
    """Time every case ``runs`` times after one warm-up, rotating the order each round."""
    names = list(cases)
    for name in names:
        time_once(cases[name], cwd=cwd, env=env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for i in range(runs):
        shift = i % len(names)
        for name in [*names[shift:], *names[:shift]]:
            samples[name].append(time_once(cases[name], cwd=cwd, env=env))
    return samples


def report(samples: Mapping[str, list[tuple[float, float]]]) -> bool:
    """Print wall-time median, p10 and p90 and the CPU-time median per case, then the target.

    The CPU time (of keel and the git commands it starts) hardly moves with machine load, so a
    wall time far above it means the machine was busy: measure again on a quiet one.
    """
    print(f"{'case':<24}{'median':>9}{'p10':>9}{'p90':>9}{'cpu':>9}  (ms)")
    medians = []
    for name, values in samples.items():
        wall = [w for w, _ in values]
        deciles = statistics.quantiles(wall, n=10, method="inclusive")
        median = statistics.median(wall)
        medians.append(median)
        cpu = statistics.median(c for _, c in values)
        print(f"{name:<24}{median:>9.1f}{deciles[0]:>9.1f}{deciles[-1]:>9.1f}{cpu:>9.1f}")
    worst = max(medians)
    met = worst <= TARGET_MS
    print(f"\nkeel diff: {worst:.1f} ms median, slowest case (target ≤ {TARGET_MS:.0f} ms): "
          f"{'met' if met else 'MISSED'}")  # fmt: skip
    return met


def bench(args: argparse.Namespace, root: Path) -> bool:
    """Build the project under ``root``, time the cases and report; return the target met."""
    # NOTE: KEEL_* settings of the caller (store URL, profile) would change what is measured.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KEEL_") and k not in _DROPPED_ENV}  # fmt: skip
    keel = find_keel(args.keel)
    project = root / "study"
    a, b = make_project(project, keel=keel, env=env)
    cases = {
        "keel diff A B": [keel, "diff", a, b],
        "keel diff A B --json": [keel, "diff", a, b, "--json"],
    }
    print(f"project: {project}; runs {a} and {b}; {args.runs} timed runs per case")
    return report(measure(cases, runs=args.runs, cwd=project, env=env))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    return run_in_temp_folder(parse_args(argv), bench, prefix="keel-bench-diff-")


if __name__ == "__main__":
    sys.exit(main())
