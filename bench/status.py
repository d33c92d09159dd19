"""Measure `keel status` on an up-to-date pipeline of 1,000 and 10,000 stages.

For each size (``--stages``, default ``1000 10000``) it builds a throwaway project in a
temporary folder (``--dir``; deleted at the end unless ``--keep``):

- a git repository with ``step.py`` (copies its input file to its output file);
- ``keel.yaml`` with N experiments in chains of ``--chain`` (10): each stage reads the output
  of the stage before it and writes ``out/s<k>.csv`` (a small file); the first stage of a
  chain writes its own number and reads nothing;
- the pipeline brought up to date. By default the stages are *simulated*: each output is
  written as ``step.py`` would write it, then each stage's cache key is computed by keel's
  own code (:class:`keel.ops.stagekey.KeyContext`) against the tree and recorded in the
  stage state as a successful run — exactly what `keel repro` records, without 10,000
  sealed runs. ``--real N`` instead runs `keel repro --executor pool` for real when N
  stages or fewer (slow: every stage is a sealed run);

then, once the files are older than the stat caches' racy window (2 s), one untimed
`keel status` (it builds the pipeline cache from keel.yaml and fills the stat caches) and
``--rounds`` timed rounds of each case:

- ``keel status``: what a user gets on an unchanged pipeline (answered from the status memo,
  :mod:`keel.ops.pipeline_memo`, after checking every file it depends on);
- ``status, no memo``: the same with the memo deleted first, so every stage's key is
  computed from the caches (the cost after any change; it writes a new memo too).
Each sample is the wall time of the whole command (``subprocess.run``, output captured) and
its CPU time (user + system, from the child's rusage); the figures are the median and the
best round. Commands run without ``PYTHONDONTWRITEBYTECODE``, so keel's modules are read
from their bytecode caches as in any installed copy. Every timed run must exit 0 (up
to date): anything else is a failure of the benchmark.

``python -c pass`` and ``keel --version`` are timed alongside, for the interpreter and CLI
start-up. When installed (looked up on PATH), ``snakemake -n`` and ``dvc status`` are timed
on the same DAG, written as a Snakefile and a dvc.yaml beside keel.yaml and brought up to
date (outputs older than nothing; ``dvc commit`` records them); otherwise the output says so.

Usage::

    python bench/status.py [--stages 1000 10000] [--rounds 7] [--chain 10] [--real 0]
                           [--dir TMP] [--keep] [--check] [--json FILE]

Targets: ≤ 0.2 s for 1,000 stages, ≤ 1 s for 10,000 (median wall time of the command);
``--check`` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS_S = {1000: 0.2, 10000: 1.0}
NO_MEMO = "status, no memo"
RACY_S = 2.1
KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"
STEP_PY = """\
import os, shutil, sys
if os.path.isfile(sys.argv[1]):
    shutil.copyfile(sys.argv[1], sys.argv[2])
else:
    open(sys.argv[2], "w").write(sys.argv[1] + "\\n")
"""


def keel_yaml(n: int, chain: int) -> str:
    lines = ["project: bench-status", "experiments:"]
    for k in range(n):
        if k % chain == 0:  # a chain's head writes its own number: no input (see the docstring)
            lines += [f"  s{k}:", f"    command: python step.py {k} out/s{k}.csv"]
        else:
            source = f"out/s{k - 1}.csv"
            lines += [
                f"  s{k}:",
                f"    command: python step.py {source} out/s{k}.csv",
                f"    inputs: [{source}]",
            ]
        lines.append(f"    outputs: [out/s{k}.csv]")
    return "\n".join(lines) + "\n"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def make_project(root: Path, n: int, chain: int) -> Path:
    root.mkdir(parents=True)
    (root / "keel.yaml").write_text(keel_yaml(n, chain))
    (root / "step.py").write_text(STEP_PY)
    (root / ".gitignore").write_text(".keel/\nout/\n")
    (root / "out").mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=b@example.com", "-c", "user.name=bench", "add", "-A")
    git(root, "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-qm", "init")
    return root


def simulate_repro(root: Path) -> float:
    """Write every output as step.py would, then record each stage's real key as a success."""
    from keel.ops.pipeline_cache import load_pipeline
    from keel.ops.pipeline_state import StageState
    from keel.ops.stagekey import EnvProbe, KeyContext
    from keel.ops.workspace import Workspace

    start = time.perf_counter()
    ws = Workspace.open(root)
    pipeline = load_pipeline(ws)
    for name in pipeline.graph.order:  # topological: each input exists before it is copied
        stage = pipeline.stages[name]
        if stage.inputs:
            shutil.copyfile(root / stage.inputs[0], root / stage.outputs[0])
        else:
            (root / stage.outputs[0]).write_text(name.removeprefix("s") + "\n")
    state = StageState.load(ws)
    env = EnvProbe(ws, state.env_digest)
    ctx = KeyContext(ws, env)
    for index, name in enumerate(pipeline.graph.order):
        stage = pipeline.stages[name]
        components = ctx.components(stage)
        outputs = {p: ctx.input_digest(p) for p in stage.outputs}
        state.record_success(name, components=components, run=f"sim{index:08d}", outputs=outputs)
    state.remember_env(env.fingerprint, env.digest())
    state.flush()
    ctx.save()
    return time.perf_counter() - start


def run_real(root: Path) -> float:
    start = time.perf_counter()
    subprocess.run([KEEL, "repro", "--executor", "pool"], cwd=root, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def timed(argv: list[str], cwd: Path, *, expect: int | None = 0) -> tuple[float, float]:
    """Wall and CPU seconds of one command."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if expect is not None and result.returncode != expect:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-2000:]}"
                 f"{result.stderr[-2000:]}")  # fmt: skip
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def bench_size(base: Path, n: int, args: argparse.Namespace) -> dict[str, object]:
    root = make_project(base / f"p{n}", n, args.chain)
    real = 0 < n <= args.real
    setup = run_real(root) if real else simulate_repro(root)
    time.sleep(RACY_S)
    first, _ = timed([KEEL, "status"], root)  # builds the pipeline cache, fills stat caches
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "keel --version": [KEEL, "--version"],
        "keel status": [KEEL, "status"],
        NO_MEMO: [KEEL, "status"],
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    memos = root / ".keel" / "cache" / "pipeline"
    for round_ in range(args.rounds):
        names = list(cases)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in names:
            if name == NO_MEMO:
                for memo in memos.glob("status-*.json"):
                    memo.unlink()
            samples[name].append(timed(cases[name], root))
    figures: dict[str, object] = {
        "stages": n,
        "setup": "real repro" if real else "simulated",
        "setup_s": round(setup, 2),
        "first_status_s": round(first, 3),
    }
    for name, values in samples.items():
        walls = [w for w, _ in values]
        cpus = [c for _, c in values]
        figures[name] = {
            "wall_median_s": round(statistics.median(walls), 4),
            "wall_best_s": round(min(walls), 4),
            "cpu_median_s": round(statistics.median(cpus), 4),
        }
    return figures


def _dag(n: int, chain: int) -> list[tuple[int, str | None]]:
    """``(k, input or None)`` of each stage, as in keel.yaml."""
    return [(k, None if k % chain == 0 else f"out/s{k - 1}.csv") for k in range(n)]


def snakefile(n: int, chain: int) -> str:
    """The same DAG as Snakemake rules (``all`` asks for every output)."""
    lines = ["rule all:", "    input: " + ", ".join(f'"out/s{k}.csv"' for k in range(n)), ""]
    for k, source in _dag(n, chain):
        lines += [f"rule s{k}:"]
        if source is not None:
            lines += [f'    input: "{source}"']
        arg = source if source is not None else str(k)
        lines += [f'    output: "out/s{k}.csv"']
        lines += [f'    shell: "python step.py {arg} {{output}}"', ""]
    return "\n".join(lines)


def dvc_yaml(n: int, chain: int) -> str:
    """The same DAG as DVC stages."""
    lines = ["stages:"]
    for k, source in _dag(n, chain):
        arg = source if source is not None else str(k)
        lines += [f"  s{k}:", f"    cmd: python step.py {arg} out/s{k}.csv"]
        lines += ["    deps:", "      - step.py"] + ([f"      - {source}"] if source else [])
        lines += ["    outs:", f"      - out/s{k}.csv:", "          cache: false"]
    return "\n".join(lines) + "\n"


def other_tools(root: Path | None, n: int, chain: int, rounds: int) -> list[str]:
    """``snakemake -n`` and ``dvc status`` on the same, up-to-date DAG, when installed."""
    notes = []
    for tool in ("snakemake", "dvc"):
        if shutil.which(tool) is None:
            notes.append(f"  {tool}: not installed; no comparison")
            continue
        if root is None:
            continue
        try:
            argv = _prepare_peer(tool, root, n, chain)
        except subprocess.CalledProcessError as exc:
            notes.append(f"  {tool}: setup failed ({exc}); no comparison")
            continue
        walls = [timed(argv, root, expect=None)[0] for _ in range(max(1, rounds // 2))]
        notes.append(f"  {' '.join(argv[:2]):<16} wall median {statistics.median(walls):.3f} s  "
                     f"best {min(walls):.3f} s  (same DAG, up to date)")  # fmt: skip
    return notes


def _prepare_peer(tool: str, root: Path, n: int, chain: int) -> list[str]:
    """Write the tool's pipeline file and bring its records up to date; its status command."""
    if tool == "snakemake":
        (root / "Snakefile").write_text(snakefile(n, chain))
        return ["snakemake", "-n", "--cores", "1", "--quiet"]
    (root / "dvc.yaml").write_text(dvc_yaml(n, chain))
    for argv in (["dvc", "init", "-q"], ["dvc", "commit", "-f", "-q"]):
        subprocess.run(argv, cwd=root, check=True, capture_output=True)
    return ["dvc", "status", "-q"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stages", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--chain", type=int, default=10)
    ap.add_argument("--real", type=int, default=0,
                    help="run `keel repro` for real for sizes up to this many stages")  # fmt: skip
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="keel-bench-status-", dir=args.dir))
    os.environ.pop("KEEL_PROFILE", None)
    results = []
    missed = False
    try:
        for n in args.stages:
            figures = bench_size(base, n, args)
            results.append(figures)
            status = figures["keel status"]
            assert isinstance(status, dict)
            target = TARGETS_S.get(n)
            verdict = ""
            if target is not None:
                met = status["wall_median_s"] <= target
                missed |= not met
                verdict = f"  target ≤ {target} s: {'met' if met else 'missed'}"
            print(f"{n} stages ({figures['setup']} setup {figures['setup_s']} s; "
                  f"first status {figures['first_status_s']} s, builds the caches)")  # fmt: skip
            for name in ("python -c pass", "keel --version", "keel status", NO_MEMO):
                f = figures[name]
                assert isinstance(f, dict)
                print(
                    f"  {name:<16} wall median {f['wall_median_s']:.3f} s  "
                    f"best {f['wall_best_s']:.3f} s  cpu median {f['cpu_median_s']:.3f} s"
                )
            print(verdict.strip() and "  " + verdict.strip())
            others = other_tools(base / f"p{n}", n, args.chain, args.rounds)
            figures["other"] = others
            for note in others:
                print(note)
        if args.json:
            args.json.write_text(json.dumps({"results": results}, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
