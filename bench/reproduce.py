"""Measure what ``keel reproduce`` adds to the run it re-executes, in a 5,000-file repository.

Builds a throwaway project in a temporary folder: a git repository with ``--files`` small source
files (5,000 by default) in 50 folders, one commit, a 64 KB input and a trivial experiment
``noop`` (read the input, write one output). It runs ``keel run noop`` once, then times,
alternating round by round so drift in machine load hits both alike:

- ``bare``: the command itself, with the argv keel records (``python noop.py --seed 1``);
- ``keel reproduce``: ``keel reproduce RUN --json`` end to end — CLI start-up, loading the
  manifest, a git worktree of 5,000 files, inputs from the store, capture, the run, sealing,
  removing the worktree.

The overhead is the difference of the medians; the target is at most 1 s. The overhead keel
records in each reproduction's manifest (``reproduction.overhead_s``: up to sealing, without
the CLI's start-up and the worktree's removal) is printed too.

Usage::

    python bench/reproduce.py [--files 5000] [--runs 5] [--warmup 1] [--keel PATH]
                              [--tmpdir DIR] [--json FILE] [--check] [--keep]

``--tmpdir`` sets ``TMPDIR`` for keel, i.e. where the worktree is made: the checkout writes one
file per file in the repository, so the file system there sets most of the cost (a tmpfs such
as ``/dev/shm`` is several times faster than a busy disk).

Exits non-zero when a command fails (its stderr is printed) or a reproduce does not say
REPRODUCED, and with ``--check`` also when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 1000.0
INPUT_BYTES = 64 * 1024

KEEL_YAML = """\
project: reproduce-bench
params:
  size: {type: int, default: 1, min: 1, max: 10}
experiments:
  noop:
    command: python noop.py --size {size} --seed {seed}
    params: [size]
    seed: 1
    inputs: [data/input.bin]
    outputs: [out/result.txt]
profiles:
  dev: {}
"""
NOOP = """\
import sys
from pathlib import Path

data = Path("data/input.bin").read_bytes()
Path("out").mkdir(exist_ok=True)
Path("out/result.txt").write_text(f"{len(data)} bytes, args {sys.argv[1:]}\\n")
"""


def build_project(root: Path, files: int) -> None:
    """The git repository with ``files`` small files, keel.yaml, the script and its input."""
    for i in range(files):
        folder = root / "src" / f"pkg{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i:05d}.py").write_text(f"VALUE_{i} = {i}\n")
    (root / "keel.yaml").write_text(KEEL_YAML)
    (root / "noop.py").write_text(NOOP)
    (root / "data").mkdir()
    (root / "data" / "input.bin").write_bytes(os.urandom(INPUT_BYTES))
    (root / ".gitignore").write_text(".keel/\nout/\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)


def timed(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time in ms of one command, and its result (stops the benchmark when it fails)."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done


def measure(
    root: Path, keel: str, *, runs: int, warmup: int, tmpdir: str | None
) -> dict[str, object]:
    """Time bare and reproduce, alternating; return every sample and the medians."""
    env = {**os.environ, "TMPDIR": tmpdir} if tmpdir else None
    _, first = timed([keel, "run", "noop", "--json"], root)
    run_id = json.loads(first.stdout)["manifest"]["run"]["id"]
    bare_argv = [sys.executable, "noop.py", "--size", "1", "--seed", "1"]
    bare: list[float] = []
    whole: list[float] = []
    recorded: list[float] = []
    for round_ in range(warmup + runs):
        cases = [("bare", bare_argv), ("reproduce", [keel, "reproduce", run_id, "--json"])]
        for name, argv in cases if round_ % 2 == 0 else cases[::-1]:
            ms, done = timed(argv, root, env)
            if round_ < warmup:
                continue
            if name == "bare":
                bare.append(ms)
                continue
            result = json.loads(done.stdout)
            if result["verdict"] != "REPRODUCED":
                sys.exit(f"reproduce said {result['verdict']}: {result.get('reason')}")
            whole.append(ms)
            recorded.append(float(result["overhead_s"]) * 1000)
    overhead = statistics.median(whole) - statistics.median(bare)
    return {
        "run": run_id,
        "bare_ms": bare,
        "reproduce_ms": whole,
        "recorded_overhead_ms": recorded,
        "overhead_ms": overhead,
        "target_ms": TARGET_MS,
        "tmpdir": tmpdir or "chosen by keel (KEEL_SANDBOX_DIR, else /dev/shm when it has room)",
        "met": overhead <= TARGET_MS,
    }


def main() -> None:
    """Parse options, build the project, measure, print, clean up."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=5000, help="files in the repository")
    ap.add_argument("--runs", type=int, default=5, help="timed rounds (at least 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--keel", default=shutil.which("keel", path=str(Path(sys.executable).parent)))
    ap.add_argument("--tmpdir", help="where keel makes its worktree (TMPDIR); e.g. /dev/shm")
    ap.add_argument("--json", type=Path, help="also write the samples here")
    ap.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the project folder")
    args = ap.parse_args()
    if not args.keel:
        sys.exit("keel not found next to this python; pass --keel PATH")
    root = Path(tempfile.mkdtemp(prefix="keel-bench-reproduce-")).resolve()
    try:
        build_project(root, args.files)
        result = measure(root, args.keel, runs=max(args.runs, 5), warmup=args.warmup,
                         tmpdir=args.tmpdir)  # fmt: skip
    finally:
        if args.keep:
            print(f"project kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    med = statistics.median
    print(f"repository: {args.files} files; {len(result['bare_ms'])} timed rounds; "  # type: ignore[arg-type]
          f"worktree in {result['tmpdir']}")  # fmt: skip
    print(f"bare command      {med(result['bare_ms']):8.1f} ms (median)")  # type: ignore[arg-type]
    print(f"keel reproduce    {med(result['reproduce_ms']):8.1f} ms (median, end to end)")  # type: ignore[arg-type]
    print(f"overhead          {result['overhead_ms']:8.1f} ms   target ≤ {TARGET_MS:.0f} ms: "
          f"{'met' if result['met'] else 'MISSED'}")  # fmt: skip
    print(f"recorded overhead {med(result['recorded_overhead_ms']):8.1f} ms "  # type: ignore[arg-type]
          "(reproduction.overhead_s: up to sealing, without CLI start-up and cleanup)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.check and not result["met"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
