"""Measure what ``keel run`` adds to the command it runs.

Builds a throwaway project in a temporary folder (a git repository with one
commit, so code capture works as in real use): a ``keel.yaml`` whose catalog
declares 20 params of mixed types, all used by one experiment ``noop``. Its
command is a trivial Python script that reads a 1 MB input and writes one output.

Then times, interleaved round by round so that drift in machine load hits every
case alike:

- ``bare``: the command itself, with the argv keel would run;
- ``keel run``: ``keel run noop``;
- ``mlflow``: the same work tracked with MLflow (when mlflow is importable);
- references: ``python -c pass``, ``python -c "import keel"`` and ``keel --help``.

Usage::

    python bench/run_overhead.py [--runs 20] [--keel PATH] [--skip-keel] [--json FILE]

Exits non-zero when a timed command fails (its stderr is printed), and with
``--check`` also when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _timing import BenchError, run_in_temp_folder

KEEL_RUN_TARGET_MS = 100.0
KEEL_HELP_TARGET_MS = 150.0
N_PARAMS = 20
INPUT_BYTES = 1024 * 1024
RESULT = Path("out/result.txt")

NOOP_SCRIPT = '''\
"""Benchmark payload: read the input, write one output."""
import sys
from pathlib import Path

data = Path("data/input.bin").read_bytes()
Path("out").mkdir(exist_ok=True)
Path("out/result.txt").write_text(f"{len(data)} bytes, {len(sys.argv) - 1} args\\n")
'''

MLFLOW_DRIVER = '''\
"""Run the benchmark payload tracked by MLflow: params, the run, one artifact."""
import json
import os
import subprocess
import sys

# MLflow 3.x refuses the file store unless told otherwise; it is still the local default.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
import mlflow

spec = json.loads(open(sys.argv[1]).read())
mlflow.set_tracking_uri(spec["tracking_uri"])
mlflow.set_experiment("bench")
with mlflow.start_run():
    mlflow.log_params(spec["params"])
    subprocess.run(spec["argv"], check=True)
    mlflow.log_artifact("out/result.txt")
'''


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One catalog entry of the generated project."""

    name: str
    kind: str
    default: int | float | str
    yaml: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One command to time."""

    name: str
    argv: list[str]
    label: str
    runs_payload: bool = False  # removes out/result.txt first and checks it comes back


@dataclass(slots=True)
class Timings:
    """Wall-clock samples of one case, in milliseconds."""

    samples: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Return median, p10, p90, min and max in milliseconds."""
        data = sorted(self.samples)
        deciles = statistics.quantiles(data, n=10, method="inclusive")
        return {
            "median_ms": statistics.median(data),
            "p10_ms": deciles[0],
            "p90_ms": deciles[-1],
            "min_ms": data[0],
            "max_ms": data[-1],
        }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per case first")
    parser.add_argument("--keel", type=Path, help="keel executable (default: next to python)")
    parser.add_argument("--skip-keel", action="store_true", help="time only the keel-free cases")
    parser.add_argument(
        "--mlflow-store",
        choices=["file", "sqlite"],
        default="file",
        help="MLflow tracking backend in the temporary folder (default file)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2 to compute a spread")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    return args


def make_params() -> list[Param]:
    """Return 20 params cycling through int, float, choice and str."""
    params = []
    for i in range(N_PARAMS):
        name = f"p{i}"
        match i % 4:
            case 0:
                default: int | float | str = 10 * i + 1
                body = f"type: int\n    default: {default}\n    min: 0\n    max: 100000"
                kind = "int"
            case 1:
                default = round(0.5 + i / 100, 2)
                body = f"type: float\n    default: {default}\n    min: 0.0\n    max: 1000.0"
                kind = "float"
            case 2:
                default = "beta"
                body = "type: choice\n    choices: [alpha, beta, gamma]\n    default: beta"
                kind = "choice"
            case _:
                default = f"value{i}"
                body = f"type: str\n    default: {default}"
                kind = "str"
        yaml = f"  {name}:\n    {body}\n    doc: Benchmark knob {i} ({kind})\n"
        params.append(Param(name=name, kind=kind, default=default, yaml=yaml))
    return params


def keel_yaml(params: Sequence[Param], python: str) -> str:
    """Return the keel.yaml text of the benchmark project."""
    flags = " ".join(f"--{p.name} {{{p.name}}}" for p in params)
    names = ", ".join(p.name for p in params)
    return (
        "project: keel-bench-overhead\n\n"
        "params:\n" + "".join(p.yaml for p in params) + "\nexperiments:\n"
        "  noop:\n"
        f"    command: {shlex.quote(python)} noop.py {flags}\n"
        f"    params: [{names}]\n"
        "    seed: 1\n"
        "    inputs: [data/input.bin]\n"
        "    outputs: [out/result.txt]\n"
        "    why: Measure keel's own overhead\n"
    )


def bare_argv(params: Sequence[Param], python: str) -> list[str]:
    """Return the argv keel runs for ``noop`` with every param at its default."""
    argv = [python, "noop.py"]
    for p in params:
        argv += [f"--{p.name}", str(p.default)]
    return argv


def run_checked(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
    """Run a setup command; raise BenchError with its output when it fails."""
    proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(
            f"setup command failed (exit {proc.returncode}): {shlex.join(argv)}\n"
            f"{proc.stdout}{proc.stderr}"
        )


def create_project(
    root: Path, *, params: Sequence[Param], python: str, env: dict[str, str]
) -> None:
    """Write the benchmark project into ``root`` and commit it to a new git repository."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "input.bin").write_bytes(os.urandom(INPUT_BYTES))
    (root / "noop.py").write_text(NOOP_SCRIPT)
    (root / "keel.yaml").write_text(keel_yaml(params, python))
    (root / ".gitignore").write_text(".keel/\nout/\ndata/\nmlruns/\nmlflow_*\n")
    if shutil.which("git") is None:
        raise BenchError("git not found on PATH: the benchmark project must be a git repository")
    git = ["git", "-c", "user.name=keel bench", "-c", "user.email=bench@example.invalid"]
    run_checked(["git", "init", "-q"], cwd=root, env=env)
    run_checked([*git, "add", "."], cwd=root, env=env)
    run_checked(
        [*git, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "bench"], cwd=root, env=env
    )


def write_mlflow_driver(
    root: Path, *, params: Sequence[Param], argv: list[str], store: str
) -> Path:
    """Write the MLflow driver script and its spec; return the spec path."""
    (root / "mlflow_driver.py").write_text(MLFLOW_DRIVER)
    if store == "sqlite":
        uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    else:
        uri = (root / "mlruns").as_uri()
    spec = {
        "tracking_uri": uri,
        "params": {p.name: p.default for p in params},
        "argv": argv,
    }
    spec_path = root / "mlflow_spec.json"
    spec_path.write_text(json.dumps(spec))
    return spec_path


def find_keel(given: Path | None) -> str:
    """Return the keel executable: ``given``, else the one installed next to this Python."""
    if given is not None:
        found = shutil.which(str(given))
        candidate = Path(found) if found else given
    else:
        bindir = Path(sys.executable).parent
        candidate = next(
            (bindir / n for n in ("keel", "keel.exe") if (bindir / n).exists()), bindir / "keel"
        )
    if not candidate.exists():
        raise BenchError(
            f"keel executable not found at {candidate}: install keel into this Python "
            "(pip install -e .), pass --keel PATH, or use --skip-keel"
        )
    return str(candidate)


def build_cases(
    args: argparse.Namespace, *, params: Sequence[Param], root: Path, python: str
) -> list[Case]:
    """Return the cases to time, in the order of the first round."""
    bare = bare_argv(params, python)
    cases = [
        Case(name="python", argv=[python, "-c", "pass"], label="python -c pass"),
        Case(name="bare", argv=bare, label="(a) bare command", runs_payload=True),
    ]
    if not args.skip_keel:
        keel = find_keel(args.keel)
        cases += [
            Case(name="import_keel", argv=[python, "-c", "import keel"], label="import keel"),
            Case(name="keel_help", argv=[keel, "--help"], label="keel --help"),
            Case(
                name="keel_run",
                argv=[keel, "run", "noop"],
                label="(b) keel run noop",
                runs_payload=True,
            ),
        ]
    if importlib.util.find_spec("mlflow") is not None:
        spec_path = write_mlflow_driver(root, params=params, argv=bare, store=args.mlflow_store)
        driver = [python, "mlflow_driver.py", str(spec_path)]
        cases.append(
            Case(name="mlflow", argv=driver, label="(c) MLflow-tracked", runs_payload=True)
        )
    else:
        print("mlflow not installed: skipped")
    return cases


def time_once(case: Case, *, cwd: Path, env: Mapping[str, str]) -> float:
    """Run a case once and return its wall time in ms; raise BenchError if it fails."""
    result = cwd / RESULT
    if case.runs_payload:
        result.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        case.argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True
    )
    elapsed = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip() or "(no stderr)"
        stdout = proc.stdout.decode(errors="replace").strip()
        detail = f"{stderr}\n--- stdout ---\n{stdout}" if stdout else stderr
        raise BenchError(
            f"{case.label} failed with exit code {proc.returncode}: {shlex.join(case.argv)}\n"
            f"{detail}\nno figures reported: fix the failure, then run the benchmark again"
        )
    if case.runs_payload and not result.is_file():
        raise BenchError(
            f"{case.label} exited 0 but did not write {RESULT}: {shlex.join(case.argv)}\n"
            "it cannot have run the payload, so its time would be meaningless"
        )
    return elapsed


def measure(
    cases: Sequence[Case], *, runs: int, warmup: int, cwd: Path, env: Mapping[str, str]
) -> dict[str, Timings]:
    """Time every case ``runs`` times, rotating the order each round."""
    timings = {c.name: Timings() for c in cases}
    for _ in range(warmup):
        for case in cases:
            time_once(case, cwd=cwd, env=env)
    progress = sys.stderr.isatty()
    for i in range(runs):
        shift = i % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            timings[case.name].samples.append(time_once(case, cwd=cwd, env=env))
        if progress:
            print(f"\rround {i + 1}/{runs}", end="", file=sys.stderr, flush=True)
    if progress:
        print("\r", end="", file=sys.stderr, flush=True)
    return timings


def summarise(cases: Sequence[Case], timings: Mapping[str, Timings]) -> dict[str, dict[str, float]]:
    """Return per-case figures, with overhead and ratio against the bare command."""
    bare = statistics.median(timings["bare"].samples)
    figures = {}
    for case in cases:
        row = timings[case.name].summary()
        if case.name in ("keel_run", "mlflow"):
            row["overhead_ms"] = row["median_ms"] - bare
            row["ratio"] = row["median_ms"] / bare
        figures[case.name] = row
    return figures


def print_table(cases: Sequence[Case], figures: Mapping[str, Mapping[str, float]]) -> None:
    """Print the figures as an aligned table."""
    header = f"{'case':<22}{'median':>9}{'p10':>9}{'p90':>9}{'min':>9}{'max':>9}"
    header += f"{'added':>10}{'ratio':>8}"
    print(header + "\n" + "-" * len(header))
    for case in cases:
        row = figures[case.name]
        line = f"{case.label:<22}" + "".join(
            f"{row[k]:>9.1f}" for k in ("median_ms", "p10_ms", "p90_ms", "min_ms", "max_ms")
        )
        if "overhead_ms" in row:
            line += f"{row['overhead_ms']:>+10.1f}{row['ratio']:>7.2f}x"
        print(line)
    print("(all times in ms; added = median minus the bare command's median)")


def report_targets(figures: Mapping[str, Mapping[str, float]]) -> bool:
    """Print the target lines; return True when every measured target is met."""
    checks = [
        ("keel run overhead", "keel_run", "overhead_ms", KEEL_RUN_TARGET_MS),
        ("keel --help", "keel_help", "median_ms", KEEL_HELP_TARGET_MS),
    ]
    all_met = True
    print()
    for label, case, key, target in checks:
        if case not in figures:
            print(f"{label}: not measured (--skip-keel)")
            continue
        value = figures[case][key]
        met = value <= target
        all_met = all_met and met
        verdict = "met" if met else "MISSED"
        print(f"{label}: {value:.1f} ms (target ≤ {target:.0f} ms): {verdict}")
    return all_met


def write_json(path: Path, *, args: argparse.Namespace, figures: Mapping[str, object]) -> None:
    """Write the figures and the conditions they were measured under."""
    doc = {
        "runs": args.runs,
        "warmup": args.warmup,
        "python": sys.version.split()[0],
        "mlflow_store": args.mlflow_store,
        "platform": platform.platform(),
        "targets_ms": {"keel_run_overhead": KEEL_RUN_TARGET_MS, "keel_help": KEEL_HELP_TARGET_MS},
        "cases": figures,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"figures written to {path}")


def bench(args: argparse.Namespace, root: Path) -> bool:
    """Build the project in ``root``, time every case and report; return targets met."""
    # NOTE: KEEL_* settings of the caller (store URL, profile) would change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    python = sys.executable
    params = make_params()
    create_project(root, params=params, python=python, env=env)
    cases = build_cases(args, params=params, root=root, python=python)
    print(f"project: {root}; {args.runs} runs per case after {args.warmup} warm-up")
    timings = measure(cases, runs=args.runs, warmup=args.warmup, cwd=root, env=env)
    figures = summarise(cases, timings)
    print_table(cases, figures)
    met = report_targets(figures)
    if args.json is not None:
        write_json(args.json, args=args, figures=figures)
    return met


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    return run_in_temp_folder(parse_args(argv), bench, prefix="keel-bench-")


if __name__ == "__main__":
    sys.exit(main())
