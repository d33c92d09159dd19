"""Builders of small real projects (git repos with keel.yaml) shared by the integration tests."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

KEEL_YAML = """\
project: demo

params:
  lr:
    type: float
    default: 0.1
    min: 0.0001
    max: 10
    doc: Learning rate
  epochs:
    type: int
    default: 3
    min: 1
    max: 100
  mode:
    type: choice
    choices: [fast, slow]
    default: fast
  sleep:
    type: float
    default: 0.0
    min: 0
    max: 600
  fail:
    type: bool
    default: false

experiments:
  train:
    command: python train.py --lr {lr} --epochs {epochs} --mode {mode} --seed {seed}
    params: [lr, epochs, mode, sleep, fail]
    defaults: {epochs: 5}
    seed: 42
    inputs: [data/points.csv]
    outputs: [out/model.txt, out/metrics.json]
    metrics_file: out/metrics.json
    metrics:
      score: {goal: max, tolerance: 0.0}
    env: [OMP_NUM_THREADS]
    why: Demo training
    tags: [demo]
  fn:
    entrypoint: funcs:train
    params: [lr, epochs]
  hashy:
    command: python -c "print(hash('keel'))"
    params: []

profiles:
  dev: {}
  prod:
    strict: true
    params: {epochs: 9}
"""

TRAIN_PY = """\
import argparse, json, os, sys, time
import keel

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float); ap.add_argument("--epochs", type=int)
ap.add_argument("--mode"); ap.add_argument("--seed", type=int)
a = ap.parse_args()
p = keel.params()
keel.seed_everything()
rows = open("data/points.csv").read().splitlines()
print(f"training on {len(rows) - 1} rows lr={a.lr} epochs={a.epochs}", flush=True)
print("a warning", file=sys.stderr, flush=True)
for step in range(a.epochs):
    keel.log_metric("loss", 1.0 / (step + 1), step=step)
if os.environ.get("EDIT_INPUT_DURING_RUN"):
    with open("data/points.csv", "a") as fh:
        fh.write("99,99\\n")
if os.environ.get("EDIT_CODE_DURING_RUN"):
    with open("notes.txt", "a") as fh:
        fh.write("edited while running\\n")
time.sleep(p["sleep"])
if p["fail"]:
    print("failing on purpose", file=sys.stderr)
    sys.exit(3)
os.makedirs("out", exist_ok=True)
open("out/model.txt", "w").write(f"weights lr={a.lr} seed={a.seed}\\n")
metrics = {"score": round(a.lr * a.epochs, 6), "rows": len(rows) - 1}
json.dump(metrics, open("out/metrics.json", "w"))
os.makedirs("out/extra", exist_ok=True)
open("out/extra/plot.txt", "w").write("plot")
keel.log_artifact("out/extra/plot.txt")
"""

FUNCS_PY = """\
def train(params):
    return {"score": params["lr"] * params["epochs"]}
"""


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its stdout."""
    result = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return result.stdout


def make_demo_project(root: Path, *, commit: bool = True) -> Path:
    """A git repo with the demo keel.yaml, a training script, data, and one commit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "keel.yaml").write_text(KEEL_YAML)
    (root / "train.py").write_text(TRAIN_PY)
    (root / "funcs.py").write_text(FUNCS_PY)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "points.csv").write_text("x,y\n1,2\n3,4\n")
    (root / ".gitignore").write_text(".keel/\nout/\n")
    (root / "requirements.txt").write_text("numpy\n")
    (root / "notes.txt").write_text("notes\n")
    if commit:
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "t@example.com")
        git(root, "config", "user.name", "Test")
        git(root, "remote", "add", "origin", "https://alice:s3cret@example.com/demo.git")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "initial")
    return root


def make_git_project(root: Path, files: dict[str, str]) -> Path:
    """A folder with ``files`` (relative path → text), made a git repo with one commit."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "Test")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def dedent(text: str) -> str:
    """textwrap.dedent, re-exported for test modules."""
    return textwrap.dedent(text)


def make_wheel(folder: Path, version: str) -> Path:
    """A pure-Python wheel of the tiny package ``keeldemo``, written by hand."""
    import base64
    import hashlib
    import zipfile

    info = f"keeldemo-{version}.dist-info"
    files = {
        "keeldemo/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: keeldemo\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: keel-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = folder / f"keeldemo-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def install_wheel(wheel: Path, venv: Path) -> None:
    """Install a pure wheel by unpacking it into the venv (what pip does for one)."""
    import zipfile

    site = next(venv.glob("lib/python*/site-packages"))
    for old in site.glob("keeldemo*"):
        shutil.rmtree(old)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
