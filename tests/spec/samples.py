"""keel.yaml texts and a writer shared by the spec and resolve tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

IRIS_YAML = """\
project: iris-demo

params:                      # the parameter catalog: every knob declared once
  model:
    type: choice
    choices: [logreg, forest]
    default: forest
    doc: Which classifier to train
  n_estimators:
    type: int
    default: 100
    min: 1
    max: 5000
    doc: Trees in the forest
  c:
    type: float
    default: 1.0
    min: 0.0001
    max: 1000
    log: true
    doc: Inverse regularisation strength
  test_size:
    type: float
    default: 0.25
    min: 0.05
    max: 0.9
  features:
    type: list
    default: [sepal_length, sepal_width, petal_length, petal_width]

experiments:
  train:
    command: python train.py --model {model} --n-estimators {n_estimators} --c {c} \
--test-size {test_size} --seed {seed}
    params: [model, n_estimators, c, test_size, features]
    defaults: {n_estimators: 200}          # experiment-level override of catalog defaults
    seed: 42
    inputs: [data/iris.csv]
    outputs: [out/model.pkl, out/metrics.json]
    metrics_file: out/metrics.json          # flat JSON {name: number}
    metrics:
      accuracy: {goal: max, tolerance: 0.0}
    env: [OMP_NUM_THREADS]                  # env vars recorded (and passed) besides keel's defaults
    why: Baseline classifiers on iris
    tags: [baseline]

profiles:
  dev: {}
  prod:
    strict: true
    params: {n_estimators: 500}
"""
"""The example keel.yaml of the user guide, exactly as written there."""

SMALL_CATALOG = """\
project: small
params:
  lr: {type: float, default: 0.1, min: 0.0001, max: 10}
  epochs: {type: int, default: 3, min: 1, max: 100}
  mode: {type: choice, choices: [fast, slow], default: fast}
"""
"""A catalog to which tests append their own experiments and profiles."""


def write_spec(root: Path, text: str, *, dedent: bool = True) -> Path:
    """Write ``text`` as ``root/keel.yaml`` and return its path."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "keel.yaml"
    path.write_text(textwrap.dedent(text) if dedent else text, encoding="utf-8")
    return path
