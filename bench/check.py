"""Measure `keel check` on a project of 10 experiments whose inputs did not change.

Builds a throwaway project in a temporary folder: a git repository with one commit, a
``keel.yaml`` whose catalog has 8 params and 10 experiments ``exp0`` ... ``exp9``, each reading
its own input file (``--input-mb`` MB of random bytes, 5 by default) and one shared input folder.
Then runs ``keel lock`` once and times ``keel check`` (a fresh process each time, output
captured):

- ``warm``: the case that matters for a pre-commit hook — nothing changed since the last check,
  so every digest comes from the stat cache and the package listing from the environment cache;
- ``cold stat cache``: the same with ``.keel/cache/stat.json`` deleted before each run, so every
  input is hashed again (for reference).

The inputs are left to age past the stat cache's racy window first (see keel/ops/statcache.py).

Usage::

    python bench/check.py [--runs 15] [--input-mb 5] [--keel PATH] [--json FILE] [--check] [--keep]

Prints the median, p10 and p90 of each case in milliseconds and the target line
``keel check (warm): 231.4 ms median (target ≤ 1000 ms): met``; with ``--check`` it exits 1
when the target is missed. A check that does not exit 0 stops the benchmark (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import summary, timed

TARGET_MS = 1000.0
EXPERIMENTS = 10
RACY_S = 2.1  # keel.ops.statcache.RACY_NS, plus a margin

PARAMS = """\
params:
  lr: {type: float, default: 0.01, min: 0.0, max: 1.0}
  epochs: {type: int, default: 10, min: 1, max: 1000}
  batch: {type: int, default: 32, min: 1, max: 4096}
  model: {type: choice, choices: [linear, tree, mlp], default: linear}
  dropout: {type: float, default: 0.1, min: 0.0, max: 0.9}
  layers: {type: int, default: 2, min: 1, max: 12}
  name: {type: str, default: run}
  verbose: {type: bool, default: false}
"""

SCRIPT = "import sys\nprint(len(open(sys.argv[1], 'rb').read()))\n"


def build_project(root: Path, *, input_mb: int) -> None:
    """A git repository with keel.yaml, 10 experiments, their inputs and one commit."""
    (root / "data" / "shared").mkdir(parents=True)
    lines = ["project: checkbench", "", PARAMS, "experiments:"]
    for n in range(EXPERIMENTS):
        (root / "data" / f"input{n}.bin").write_bytes(os.urandom(input_mb * 2**20))
        lines += [
            f"  exp{n}:",
            f"    command: python run.py data/input{n}.bin --lr {{lr}} --model {{model}}",
            f"    defaults: {{epochs: {n + 1}}}",
            f"    inputs: [data/input{n}.bin, data/shared]",
            "    env: [OMP_NUM_THREADS]",
        ]
    for n in range(20):
        (root / "data" / "shared" / f"part{n}.csv").write_text(f"x,y\n{n},{n * n}\n")
    (root / "keel.yaml").write_text("\n".join(lines) + "\n")
    (root / "run.py").write_text(SCRIPT)
    (root / ".gitignore").write_text(".keel/\ndata/\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "bench@example.com"],
        ["config", "user.name", "bench"],
        ["add", "-A"],
        ["commit", "-qm", "bench project"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def run_keel(keel: str, root: Path, *args: str) -> float:
    """Wall time of one keel command in ms; exits 2 with its stderr when it fails."""
    return timed([keel, "-C", str(root), *args])[0]


def measure(keel: str, root: Path, runs: int) -> dict[str, dict[str, float]]:
    """Time the warm and the cold-stat-cache checks, interleaved round by round."""
    stat_cache = root / ".keel" / "cache" / "stat.json"
    run_keel(keel, root, "check")  # warm-up: fills the caches
    warm: list[float] = []
    cold: list[float] = []
    for _ in range(runs):
        warm.append(run_keel(keel, root, "check"))
        stat_cache.unlink(missing_ok=True)
        cold.append(run_keel(keel, root, "check"))
        run_keel(keel, root, "check")  # refill the stat cache for the next warm sample
    return {"warm": summary(warm), "cold stat cache": summary(cold)}


def main(argv: list[str] | None = None) -> int:
    """Build the project, lock it, time the checks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed checks per case (>= 10)")
    parser.add_argument("--input-mb", type=int, default=5, help="size of each experiment's input")
    parser.add_argument(
        "--keel", default=shutil.which("keel", path=str(Path(sys.executable).parent))
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    args = parser.parse_args(argv)
    if not args.keel:
        parser.error("keel is not installed next to this Python; pass --keel PATH")
    runs = max(args.runs, 10)
    root = Path(tempfile.mkdtemp(prefix="keel-check-bench-"))
    try:
        build_project(root, input_mb=args.input_mb)
        run_keel(args.keel, root, "lock")
        time.sleep(RACY_S)  # let the inputs age past the stat cache's racy window
        cases = measure(args.keel, root, runs)
    finally:
        if args.keep:
            print(f"project kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return report(cases, runs=runs, input_mb=args.input_mb, json_file=args.json, check=args.check)


def report(
    cases: dict[str, dict[str, float]],
    *,
    runs: int,
    input_mb: int,
    json_file: Path | None,
    check: bool,
) -> int:
    """Print the table and the target line; return the exit code."""
    total_mb = EXPERIMENTS * input_mb
    print(f"keel check: {EXPERIMENTS} experiments, {total_mb} MB of inputs, {runs} runs per case")
    print(f"{'case':<18}{'median':>10}{'p10':>10}{'p90':>10}  (ms)")
    for name, figures in cases.items():
        print(
            f"{name:<18}{figures['median_ms']:>10.1f}{figures['p10_ms']:>10.1f}"
            f"{figures['p90_ms']:>10.1f}"
        )
    median = cases["warm"]["median_ms"]
    met = median <= TARGET_MS
    print(
        f"keel check (warm): {median:.1f} ms median (target ≤ {TARGET_MS:.0f} ms): "
        + ("met" if met else "MISSED")
    )
    if json_file is not None:
        data = {
            "runs": runs,
            "experiments": EXPERIMENTS,
            "input_mb": input_mb,
            "python": sys.version.split()[0],
            "target_ms": TARGET_MS,
            "cases": cases,
        }
        json_file.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
