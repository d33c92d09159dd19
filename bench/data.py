"""Measure dataset versioning: hashing one large file, and a no-op status of many small files.

Builds a throwaway keel project and data in a temporary folder (``--dir``), deleted at the end
(``--keep`` keeps it), then:

1. **Hashing** a ``--size-gib`` file (2 GiB by default), each figure in a fresh child process
   that reports its wall time and its peak memory (``resource.getrusage``, ``ru_maxrss``):

   - ``raw blake3``: blake3 over a 256 MiB in-memory buffer (larger than CPU caches, like a
     file's pages in the page cache), in 4 MiB updates, single-threaded as keel hashes: the
     throughput ceiling for this machine; and the same over one 4 MiB buffer that stays in the
     CPU cache. keel is judged against the faster of the two;
   - ``keel data status --rehash``: keel's dataset hashing of the version's working copy (the
     file is read in full, however fresh the caches);
   - ``keel data add`` of the file, once (hash, then stream into the store), for reference.

   The file is hashed with a warm page cache (it was just written), like raw blake3's buffer.
   This process stays small while it starts them: Linux carries a parent's peak memory over
   into the ``ru_maxrss`` of the programs it starts.

2. **No-op status** of ``--files`` small files (20,000 by default; 100 per folder), added as
   one version and left to age past the stat cache's racy window:

   - ``stat only``: a Python walk (``os.scandir``) that ``os.stat``\\s every file: the least
     any status check can do;
   - ``keel data status`` in process: the library call the command makes;
   - ``keel data status`` as a command, and ``python -c pass`` for the interpreter start-up;
   - ``dvc status`` on the same folder (``dvc add``-ed in a copy of it), if ``dvc`` is on PATH.

   Cases alternate round by round (``--rounds``), so load changes affect them alike.

Throughputs are judged on the best round of each case (as ``timeit`` advises on a shared
machine: slower rounds measure the other load); medians are printed beside them. Status times
are medians.

Usage::

    python bench/data.py [--size-gib 2] [--files 20000] [--rounds 7] [--dir TMP] [--keep]
                         [--check] [--json FILE]

Targets (printed as ``...: met`` / ``missed``; ``--check`` exits 1 when one is missed):
hashing ≥ 70% of raw blake3 throughput with peak memory ≤ 100 MB, and the in-process no-op
status ≤ 2x the stat-only walk.
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
from collections.abc import Callable
from pathlib import Path

HASH_SHARE_TARGET = 0.70
MEMORY_TARGET_MB = 100.0
STATUS_RATIO_TARGET = 2.0
RACY_S = 2.1  # keel.ops.statcache.RACY_NS, plus a margin
WRITE_CHUNK = 64 * 2**20
RAW_SPAN = 256 * 2**20

RAW_CHILD = """
import json, os, resource, sys, time
import blake3
total, span, chunk = int(sys.argv[1]), int(sys.argv[2]), 4 * 2**20
buf = memoryview(bytearray(os.urandom(span)))
h = blake3.blake3()
start = time.perf_counter()
done = 0
while done < total:
    for offset in range(0, span, chunk):
        h.update(buf[offset:offset + chunk])
    done += span
seconds = (time.perf_counter() - start) * total / done
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "maxrss_mb": peak}))
"""

KEEL_CHILD = """
import json, resource, sys, time
from pathlib import Path
from keel.ops.data import add_dataset, dataset_status
from keel.ops.workspace import Workspace
ws = Workspace.open(Path(sys.argv[1]))
action, name, path = sys.argv[2], sys.argv[3], Path(sys.argv[4])
start = time.perf_counter()
if action == "add":
    outcome = add_dataset(ws, name=name, path=path)
    ok = outcome.created
else:
    status = dataset_status(ws, name, path, rehash=action == "rehash")
    ok = status.clean
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "ok": ok,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, *args: str) -> dict[str, float]:
    """Run a measuring child process; its last stdout line is a JSON object."""
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        sys.exit(2)
    found: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def make_project(root: Path) -> Path:
    """A keel project with no experiments (datasets need nothing else)."""
    project = root / "project"
    project.mkdir(parents=True)
    (project / "keel.yaml").write_text("project: databench\n")
    return project


WRITE_CHILD = """
import os, sys
path, size, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(chunk)
with open(path, "wb") as fh:
    left = size
    while left > 0:
        fh.write(block[: min(left, chunk)])
        left -= chunk
"""


def write_big_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data, written by a child process.

    Linux carries a process's peak memory over into the programs it starts (``ru_maxrss``
    survives ``exec``), so this process stays small while it starts the measured children.
    """
    subprocess.run([sys.executable, "-c", WRITE_CHILD, str(path), str(size), str(WRITE_CHUNK)],
                   check=True)  # fmt: skip


def bench_hash(root: Path, project: Path, size: int, rounds: int) -> dict[str, float]:
    """Throughputs (GB/s) and peak memory (MB) of raw blake3 and of keel's hashing."""
    big = root / "big.bin"
    print(f"writing a {size / 2**30:.2f} GiB file ...", flush=True)
    write_big_file(big, size)
    added = child(KEEL_CHILD, str(project), "add", "big", str(big))
    raw: list[float] = []
    cached: list[float] = []
    keel: list[float] = []
    peak = 0.0
    for _ in range(rounds):
        raw.append(size / child(RAW_CHILD, str(size), str(RAW_SPAN))["seconds"] / 1e9)
        cached.append(size / child(RAW_CHILD, str(size), str(4 * 2**20))["seconds"] / 1e9)
        got = child(KEEL_CHILD, str(project), "rehash", "big", str(big))
        if not got["ok"]:
            print("keel data status --rehash says the file changed", file=sys.stderr)
            sys.exit(2)
        keel.append(size / got["seconds"] / 1e9)
        peak = max(peak, got["maxrss_mb"])
    return {
        "raw_gbps": max(raw),
        "keel_gbps": max(keel),
        "raw_gbps_median": statistics.median(raw),
        "keel_gbps_median": statistics.median(keel),
        "raw_cached_gbps": max(cached),
        "keel_peak_mb": peak,
        "add_gbps": size / added["seconds"] / 1e9,
        "add_peak_mb": added["maxrss_mb"],
    }


def make_small_files(folder: Path, count: int) -> None:
    """``count`` small files, 100 per sub-folder."""
    for n in range(count):
        sub = folder / f"d{n // 100:04d}"
        if n % 100 == 0:
            sub.mkdir(parents=True)
        (sub / f"f{n % 100:03d}.csv").write_text(f"id,value\n{n},{n * 7 % 13}\n")


def stat_walk(root: str) -> int:
    """Walk ``root`` and stat every regular file: the floor for any status check."""
    count = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    os.stat(entry.path)
                    count += 1
    return count


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_status(root: Path, project: Path, count: int, rounds: int) -> dict[str, float | None]:
    """Median seconds of each no-op status case."""
    from keel.ops.data import add_dataset, dataset_status
    from keel.ops.workspace import Workspace

    folder = root / "many"
    print(f"writing {count} small files ...", flush=True)
    make_small_files(folder, count)
    ws = Workspace.open(project)
    add_dataset(ws, name="many", path=folder)
    time.sleep(RACY_S)  # files younger than the racy window are never trusted from a cache
    if not dataset_status(ws, "many", folder).clean:  # remembers the copy's signature
        sys.exit("keel data status says the folder changed")
    keel_cli = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"
    dvc = _dvc_setup(root, folder)
    cases: dict[str, list[float]] = {"stat": [], "keel": [], "cli": [], "python": [], "dvc": []}
    for _ in range(rounds):
        cases["stat"].append(timed(lambda: stat_walk(str(folder))))

        def status() -> None:
            if not dataset_status(ws, "many", folder).clean:
                sys.exit("keel data status says the folder changed")

        cases["keel"].append(timed(status))
        cases["cli"].append(_command([keel_cli, "data", "status", "many"], project))
        cases["python"].append(_command([sys.executable, "-c", "pass"], project))
        if dvc is not None:
            cases["dvc"].append(_command(["dvc", "status"], dvc))
    return {k: statistics.median(v) if v else None for k, v in cases.items()}


def _command(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}", file=sys.stderr)
        sys.exit(2)
    return elapsed


def _dvc_setup(root: Path, folder: Path) -> Path | None:
    """A copy of the folder `dvc add`-ed in its own repository, or None without dvc."""
    if shutil.which("dvc") is None:
        return None
    repo = root / "dvc"
    repo.mkdir()
    shutil.copytree(folder, repo / "many")
    for argv in (["dvc", "init", "--no-scm", "-q"], ["dvc", "add", "-q", "many"],
                 ["dvc", "status"]):  # fmt: skip
        subprocess.run(argv, cwd=repo, check=True, capture_output=True)
    return repo


def report(hashing: dict[str, float], status: dict[str, float | None], *, files: int) -> bool:
    """Print the figures and the target lines; True when every target is met."""
    ceiling = max(hashing["raw_gbps"], hashing["raw_cached_gbps"])
    share = hashing["keel_gbps"] / ceiling
    ratio = (status["keel"] or 0) / (status["stat"] or 1)
    print("\nhashing one large file (best GB/s, median in brackets; peak memory of the process)")
    print(f"  raw blake3 (in memory)       {hashing['raw_gbps']:6.2f} GB/s "
          f"({hashing['raw_gbps_median']:.2f})")  # fmt: skip
    print(f"  raw blake3 (in CPU cache)    {hashing['raw_cached_gbps']:6.2f} GB/s")
    keel, median, peak = hashing["keel_gbps"], hashing["keel_gbps_median"], hashing["keel_peak_mb"]
    print(f"  keel data status --rehash    {keel:6.2f} GB/s ({median:.2f})  {peak:6.1f} MB peak")
    print(f"  keel data add (hash + store) {hashing['add_gbps']:6.2f} GB/s         "
          f"{hashing['add_peak_mb']:6.1f} MB peak  (once, for reference)")  # fmt: skip
    print(f"\nno-op status of {files} small files (median ms)")
    labels = {"stat": "stat only (Python walk)", "keel": "keel data status, in process",
              "cli": "keel data status, command", "python": "python -c pass",
              "dvc": "dvc status"}  # fmt: skip
    for key, label in labels.items():
        value = status[key]
        shown = f"{value * 1000:8.1f} ms" if value is not None else "    (dvc not installed)"
        print(f"  {label:<30}{shown}")
    checks = [
        (f"hashing: {share:.0%} of raw blake3, the faster of its two figures "
         f"(target ≥ {HASH_SHARE_TARGET:.0%})",
         share >= HASH_SHARE_TARGET),
        (f"hashing peak memory: {hashing['keel_peak_mb']:.1f} MB (target ≤ "
         f"{MEMORY_TARGET_MB:.0f} MB)", hashing["keel_peak_mb"] <= MEMORY_TARGET_MB),
        (f"no-op status: {ratio:.2f}x the stat-only walk (target ≤ {STATUS_RATIO_TARGET:.0f}x)",
         ratio <= STATUS_RATIO_TARGET),
    ]  # fmt: skip
    print()
    for line, met in checks:
        print(f"{line}: {'met' if met else 'missed'}")
    return all(met for _, met in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-gib", type=float, default=2.0, help="size of the large file")
    parser.add_argument("--files", type=int, default=20_000, help="number of small files")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per case")
    parser.add_argument("--dir", type=Path, help="where to build (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the built folder")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="keel-databench-", dir=args.dir))
    try:
        project = make_project(root)
        hashing = bench_hash(root, project, int(args.size_gib * 2**30), args.rounds)
        status = bench_status(root, project, args.files, args.rounds)
        met = report(hashing, status, files=args.files)
        if args.json:
            args.json.write_text(json.dumps({"hashing": hashing, "status": status}, indent=2))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if args.check and not met else 0)


if __name__ == "__main__":
    main()
