"""`keel init`: scaffold a keel.yaml and a small runnable example experiment."""

from __future__ import annotations

from pathlib import Path

from keel.base.atomic import atomic_write_text
from keel.errors import UserError

KEEL_YAML = """\
project: {name}

params:                       # the parameter catalog: every knob declared once
  samples:
    type: int
    default: 100000
    min: 1
    max: 100000000
    doc: Random points drawn
  method:
    type: choice
    choices: [uniform, stratified]
    default: uniform
    doc: How points are drawn

experiments:
  estimate:
    command: python estimate_pi.py --samples {{samples}} --method {{method}} --seed {{seed}}
    params: [samples, method]
    seed: 7
    outputs: [out/estimate.json]
    metrics_file: out/estimate.json
    metrics:
      abs_error: {{goal: min, tolerance: 0.001}}
    why: A first experiment to see what keel records

profiles:
  dev: {{}}
  prod:
    strict: true
"""

SCRIPT = '''\
"""Estimate pi by sampling points in the unit square."""
import argparse
import json
import math
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("--samples", type=int, required=True)
parser.add_argument("--method", choices=["uniform", "stratified"], required=True)
parser.add_argument("--seed", type=int, required=True)
args = parser.parse_args()

rng = random.Random(args.seed)
inside = 0
for i in range(args.samples):
    if args.method == "stratified":
        x = (i + rng.random()) / args.samples
    else:
        x = rng.random()
    y = rng.random()
    inside += x * x + y * y <= 1.0
estimate = 4.0 * inside / args.samples
os.makedirs("out", exist_ok=True)
with open("out/estimate.json", "w") as fh:
    json.dump({"estimate": estimate, "abs_error": abs(estimate - math.pi)}, fh)
print(f"pi ~ {estimate:.6f} from {args.samples} samples")
'''

GITIGNORE = ".keel/\nout/\n"


def init_project(folder: Path, *, name: str | None = None) -> list[Path]:
    """Write keel.yaml, estimate_pi.py and .gitignore entries into ``folder``.

    Raises:
        keel.errors.UserError: when ``folder/keel.yaml`` already exists (nothing is written).
    """
    folder = folder.resolve()
    spec = folder / "keel.yaml"
    if spec.exists():
        raise UserError(f"{spec} already exists; keel init never overwrites a project")
    folder.mkdir(parents=True, exist_ok=True)
    project = name or folder.name or "project"
    written = [spec, folder / "estimate_pi.py"]
    atomic_write_text(spec, KEEL_YAML.format(name=project))
    if not written[1].exists():
        atomic_write_text(written[1], SCRIPT)
    ignore = folder / ".gitignore"
    existing = ignore.read_text("utf-8") if ignore.exists() else ""
    missing = [ln for ln in GITIGNORE.splitlines() if ln not in existing.splitlines()]
    if missing:
        sep = "" if not existing or existing.endswith("\n") else "\n"
        atomic_write_text(ignore, existing + sep + "\n".join(missing) + "\n")
        written.append(ignore)
    return written
