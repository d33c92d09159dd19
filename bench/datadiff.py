"""Measure `keel data diff` of two versions of a 1,000,000-row Parquet dataset.

Builds a throwaway project in a temporary folder (only ``keel.yaml``), writes two Parquet files
of ``--rows`` rows (1,000,000 by default) with numpy and pyarrow — ``id`` (int), ``age``
(float), ``income`` (float), ``segment`` (text, 5 values), ``active`` (bool) — where the second
version has ``age`` shifted by one standard deviation, other ``segment`` frequencies and one
more column, and adds both as versions of the dataset ``people`` with `keel data add`, which
checks and profiles each version once (:func:`keel.ops.datacheck.validate_version`). Then it
times `keel data diff people@A people@B` (a fresh process each time, output captured), which
compares the two stored profiles and reads no data.

When this keel's `keel data` group does not offer `diff` yet, each timed process runs the
same command object (``keel.cli.cmd_datadiff.data_diff_cmd``) through ``python -c`` instead:
the same imports and work, without the group's dispatch. The output says which was timed.

Usage::

    python bench/datadiff.py [--runs 7] [--rows 1000000] [--keel PATH] [--json FILE] [--check]
                             [--keep]

Prints the time of each `keel data add`, the median, p10, p90, min and max of the diffs in
milliseconds, and the target line ``keel data diff (1,000,000 rows): 480.2 ms median (target
≤ 2000 ms): met``; with ``--check`` it exits 1 when the target is missed. A command that does
not exit 0 stops the benchmark (exit 2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import keel_env, summary, timed

TARGET_MS = 2000.0
MIN_RUNS = 5


def write_versions(root: Path, rows: int) -> tuple[Path, Path]:
    """Two Parquet files of ``rows`` rows; the second has drifted."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2024)
    segments = np.array(["north", "south", "east", "west", "online"])
    base = {
        "id": np.arange(rows, dtype=np.int64),
        "age": rng.normal(40.0, 12.0, rows),
        "income": rng.lognormal(10.0, 0.5, rows),
        "segment": segments[rng.choice(5, rows, p=[0.3, 0.25, 0.2, 0.15, 0.1])],
        "active": rng.random(rows) < 0.7,
    }
    first = root / "v1" / "people.parquet"
    first.parent.mkdir()
    pq.write_table(pa.table(base), first)
    drifted = dict(base)
    drifted["age"] = base["age"] + 12.0
    drifted["segment"] = segments[rng.choice(5, rows, p=[0.1, 0.15, 0.2, 0.25, 0.3])]
    drifted["score"] = rng.normal(0.0, 1.0, rows)
    second = root / "v2" / "people.parquet"
    second.parent.mkdir()
    pq.write_table(pa.table(drifted), second)
    return first, second


def run(argv: list[str], *, cwd: Path) -> tuple[float, str]:
    """Wall time in ms and stdout of one command; exits 2 with its stderr when it fails."""
    return timed(argv, cwd=cwd)


def diff_command(keel: str, root: Path, old: str, new: str) -> tuple[list[str], str]:
    """The argv that runs `keel data diff`, and how it is run (see the module docstring)."""
    probe = subprocess.run(
        [keel, "-C", str(root), "data", "diff", "--help"], env=keel_env(), capture_output=True
    )
    if probe.returncode == 0:
        return [keel, "-C", str(root), "data", "diff", old, new], "keel data diff"
    code = (
        "import sys; from keel.cli.cmd_datadiff import data_diff_cmd; "
        "from keel.cli.context import Ctx; "
        "data_diff_cmd.main(sys.argv[1:], prog_name='keel data diff', "
        "obj=Ctx(project=None, profile=None))"
    )
    return [sys.executable, "-c", code, old, new], "data_diff_cmd via python -c"


def measure(keel: str, root: Path, runs: int, rows: int) -> dict[str, object]:
    """Add both versions, then time the diff ``runs`` times after one untimed warm-up."""
    first, second = write_versions(root, rows)
    adds = []
    refs = []
    for path in (first, second):
        add = [keel, "-C", str(root), "data", "add", "people", str(path), "--json"]
        elapsed, out = run(add, cwd=root)
        record = json.loads(out)
        version = record.get("version", record)
        refs.append(f"people@{version['version'] if isinstance(version, dict) else version}")
        adds.append(elapsed)
    argv, how = diff_command(keel, root, refs[0], refs[1])
    _, shown = run(argv, cwd=root)  # warm-up, and the report shown at the end
    samples = [run(argv, cwd=root)[0] for _ in range(runs)]
    return {"adds_ms": adds, "refs": refs, "how": how, "diff": summary(samples), "report": shown}


def main(argv: list[str] | None = None) -> int:
    """Build the project, add the versions, time the diffs and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help=f"timed diffs (>= {MIN_RUNS})")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per version")
    parser.add_argument(
        "--keel", default=shutil.which("keel", path=str(Path(sys.executable).parent))
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    args = parser.parse_args(argv)
    if not args.keel:
        parser.error("keel is not installed next to this Python; pass --keel PATH")
    runs = max(args.runs, MIN_RUNS)
    root = Path(tempfile.mkdtemp(prefix="keel-datadiff-bench-"))
    try:
        (root / "keel.yaml").write_text("project: datadiffbench\n")
        figures = measure(args.keel, root, runs, args.rows)
    finally:
        if args.keep:
            print(f"project kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return report(figures, runs=runs, rows=args.rows, json_file=args.json, check=args.check)


def report(
    figures: dict[str, object], *, runs: int, rows: int, json_file: Path | None, check: bool
) -> int:
    """Print the figures and the target line; return the exit code."""
    adds = figures["adds_ms"]
    diff = figures["diff"]
    assert isinstance(adds, list) and isinstance(diff, dict)
    print(str(figures["report"]).rstrip())
    print()
    print(f"keel data diff: 2 Parquet versions of {rows:,} rows, {runs} timed runs")
    refs = figures["refs"]
    assert isinstance(refs, list)
    for ref, ms in zip(refs, adds, strict=True):
        print(f"keel data add ({ref}, checked and profiled): {ms:.0f} ms")
    print(f"timed: {figures['how']}")
    print(f"{'':<16}{'median':>10}{'p10':>10}{'p90':>10}{'min':>10}{'max':>10}  (ms)")
    print(
        f"{'diff':<16}{diff['median_ms']:>10.1f}{diff['p10_ms']:>10.1f}{diff['p90_ms']:>10.1f}"
        f"{diff['min_ms']:>10.1f}{diff['max_ms']:>10.1f}"
    )
    median = diff["median_ms"]
    met = median <= TARGET_MS
    print(
        f"keel data diff ({rows:,} rows): {median:.1f} ms median (target ≤ {TARGET_MS:.0f} ms): "
        + ("met" if met else "MISSED")
    )
    if json_file is not None:
        data = {k: v for k, v in figures.items() if k != "report"}
        data |= {
            "rows": rows,
            "runs": runs,
            "target_ms": TARGET_MS,
            "python": sys.version.split()[0],
        }
        json_file.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
