"""Measure what `keel sweep` adds per trial, on the local, pool and Dask executors.

Builds a throwaway project in a temporary folder (a git repository with one commit): a
``keel.yaml`` with one int param ``i`` and an experiment ``noop`` whose command is trivial
(``true`` by default; ``--command python`` runs ``python -c pass`` instead). Then, for each
executor:

- ``bare``: the command itself, run ``--trials`` times with the same parallelism (one at a
  time for ``local``; ``--jobs`` at once for ``pool`` and ``dask``), from a thread pool;
- ``keel sweep``: ``keel sweep noop -p i=range(0,N) --executor E --jobs J --json`` as a user
  runs it, whole (freezing, the pool or cluster start-up and the final summary included).

Peers, when installed, on the same number of trials: an Optuna study on SQLite (its
bookkeeping alone, no command) and a Hydra multirun of the same command (basic launcher).

Every trial must be a sealed run: the script checks that the sweep reports N succeeded trials
and that N run refs exist in the store. Overhead per trial = (keel wall time - bare wall
time) / N.

Usage::

    python bench/sweep.py [--trials 1000] [--jobs 2] [--executors pool,local,dask]
                          [--command true|python] [--json FILE] [--keep] [--check]

The target (≤ 30 ms per trial) is for ``pool`` with 2 workers; with ``--check`` the script
exits 1 when it is missed. A failing command stops it with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from _timing import BenchError, run_in_temp_folder

TARGET_MS = 30.0
EXECUTORS = ("pool", "local", "dask")


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One executor's timings."""

    executor: str
    jobs: int
    trials: int
    bare_s: float
    keel_s: float

    @property
    def overhead_ms(self) -> float:
        """What keel adds per trial, in milliseconds."""
        return (self.keel_s - self.bare_s) / self.trials * 1000

    def to_json(self) -> dict[str, object]:
        """The figure as JSON."""
        return {"executor": self.executor, "jobs": self.jobs, "trials": self.trials,
                "bare_s": round(self.bare_s, 3), "keel_s": round(self.keel_s, 3),
                "overhead_ms_per_trial": round(self.overhead_ms, 2)}  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials per sweep (1000)")
    parser.add_argument("--jobs", type=int, default=2, help="workers for pool and dask (2)")
    parser.add_argument(
        "--executors",
        default=",".join(EXECUTORS),
        help="comma-separated executors to time (pool,local,dask)",
    )
    parser.add_argument(
        "--command",
        choices=["true", "python"],
        default="true",
        help="the trivial trial command: true, or python -c pass",
    )
    parser.add_argument("--keel", type=Path, help="keel executable (default: next to python)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.jobs < 1:
        parser.error("--trials and --jobs must be at least 1")
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    unknown = sorted(set(args.executors) - set(EXECUTORS))
    if unknown:
        parser.error(f"unknown executor {', '.join(unknown)}; choose from {', '.join(EXECUTORS)}")
    return args


def command_argv(kind: str) -> list[str]:
    """The trivial command as an argv."""
    if kind == "python":
        return [sys.executable, "-c", "pass"]
    found = shutil.which("true")
    if found is None:
        raise BenchError("`true` is not on PATH; use --command python")
    return [found]


def make_project(root: Path, argv: Sequence[str], trials: int) -> None:
    """A git repository with keel.yaml and one commit."""
    command = " ".join(argv)
    (root / "keel.yaml").write_text(
        "project: keel-bench-sweep\n\n"
        f"params:\n  i:\n    type: int\n    default: 0\n    min: 0\n    max: {max(trials, 1)}\n\n"
        "experiments:\n"
        f"  noop:\n    command: {command}\n    params: [i]\n    seed: 1\n"
        "    why: Measure keel sweep's own overhead\n\n"
        "profiles:\n  dev: {}\n"
    )
    (root / ".gitignore").write_text(".keel/\n")
    git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        run_checked([*git, *args], cwd=root)


def run_checked(argv: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command; raise BenchError with its output when it fails."""
    proc = subprocess.run(list(argv), cwd=cwd, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.strip()}")
    return proc


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}


def time_bare(argv: Sequence[str], *, trials: int, jobs: int, cwd: Path) -> float:
    """Wall time of running ``argv`` ``trials`` times, ``jobs`` at a time."""

    def one(_: int) -> int:
        return subprocess.run(list(argv), cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode  # fmt: skip

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = list(pool.map(one, range(trials)))
    elapsed = time.perf_counter() - t0
    if any(codes):
        raise BenchError(f"the bare command {' '.join(argv)} failed")
    return elapsed


def time_sweep(keel: str, *, executor: str, trials: int, jobs: int, cwd: Path) -> float:
    """Wall time of the whole `keel sweep`; checks that every trial is a sealed run."""
    runs_before = _count_runs(cwd)
    argv = [keel, "sweep", "noop", "-p", f"i=range(0,{trials})", "--executor", executor,
            "--jobs", str(jobs), "--json"]  # fmt: skip
    t0 = time.perf_counter()
    proc = run_checked(argv, cwd=cwd)
    elapsed = time.perf_counter() - t0
    data = json.loads(proc.stdout)
    if data["statuses"] != {"succeeded": trials}:
        raise BenchError(f"{executor}: expected {trials} succeeded trials, got {data['statuses']}")
    sealed = _count_runs(cwd) - runs_before
    if sealed != trials:
        raise BenchError(f"{executor}: {sealed} sealed runs for {trials} trials")
    return elapsed


def _count_runs(root: Path) -> int:
    folder = root / ".keel" / "refs" / "runs"
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def bench(args: argparse.Namespace, root: Path) -> bool:
    """Time every executor; print the table and the target line; True when it is met."""
    keel = str(args.keel or shutil.which("keel", path=str(Path(sys.executable).parent)) or "")
    if not keel:
        raise BenchError("keel is not installed next to this python; pass --keel PATH")
    argv = command_argv(args.command)
    make_project(root, argv, args.trials)
    run_checked([keel, "sweep", "noop", "-p", "i=0,1"], cwd=root)  # warm caches
    figures = []
    for executor in args.executors:
        jobs = 1 if executor == "local" else args.jobs
        bare = time_bare(argv, trials=args.trials, jobs=jobs, cwd=root)
        swept = time_sweep(keel, executor=executor, trials=args.trials, jobs=jobs, cwd=root)
        figures.append(Figure(executor=executor, jobs=jobs, trials=args.trials, bare_s=bare,
                              keel_s=swept))  # fmt: skip
    report(figures, args)
    peers(args.trials, root)
    target = next((f for f in figures if f.executor == "pool"), None)
    if target is None:
        return True
    met = target.overhead_ms <= TARGET_MS
    print(f"keel sweep overhead on pool/{target.jobs}: {target.overhead_ms:.1f} ms per trial "
          f"(target ≤ {TARGET_MS:.0f} ms): {'met' if met else 'MISSED'}")  # fmt: skip
    return met


def peers(trials: int, root: Path) -> None:
    """Peer tools on the same number of trivial trials, when installed."""
    try:
        import optuna
    except ImportError:
        print("optuna: not installed (pip install 'keel[optuna]') — not compared")
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        url = f"sqlite:///{root / 'optuna-bench.db'}"
        study = optuna.create_study(storage=url, sampler=optuna.samplers.RandomSampler(seed=0))
        start = time.perf_counter()
        study.optimize(lambda t: float(t.suggest_int("i", 0, trials)), n_trials=trials)
        per = (time.perf_counter() - start) * 1000 / trials
        print(f"optuna study on SQLite, bookkeeping alone (no command run): {per:.1f} ms per "
              "trial, one at a time")
    if not _importable("hydra"):
        print("hydra: not installed (pip install hydra-core) — not compared")
        return
    app = root / "hydra_app"
    app.mkdir(exist_ok=True)
    (app / "config.yaml").write_text("i: 0\n")
    (app / "app.py").write_text(
        "import subprocess, hydra\n"
        "@hydra.main(version_base=None, config_path='.', config_name='config')\n"
        "def main(cfg):\n    subprocess.run(['true'], check=True)\n"
        "if __name__ == '__main__':\n    main()\n"
    )
    start = time.perf_counter()
    run_checked([sys.executable, "app.py", "-m", f"i=range(0,{trials})"], cwd=app)
    per = (time.perf_counter() - start) * 1000 / trials
    print(f"hydra multirun (basic launcher, one at a time), same command: {per:.1f} ms per job")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def report(figures: Sequence[Figure], args: argparse.Namespace) -> None:
    """Print one line per executor (and write the JSON file when asked)."""
    command = " ".join(command_argv(args.command))
    print(f"{args.trials} trials of `{command}` ({os.cpu_count()} CPUs)")
    print(f"{'executor':<10}{'jobs':>5}{'bare s':>10}{'keel s':>10}{'overhead ms/trial':>20}")
    for f in figures:
        print(f"{f.executor:<10}{f.jobs:>5}{f.bare_s:>10.2f}{f.keel_s:>10.2f}"
              f"{f.overhead_ms:>20.1f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([f.to_json() for f in figures], indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    return run_in_temp_folder(parse_args(argv), bench, prefix="keel-bench-sweep-")


if __name__ == "__main__":
    sys.exit(main())
