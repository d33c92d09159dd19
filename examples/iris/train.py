"""Train a classifier on the iris data and write the model and its metrics.

Run from this folder (keel runs commands in the project folder):

    python train.py --model forest --n-estimators 200 --c 1.0 --test-size 0.25 --seed 42

Reads ``data/iris.csv``; writes ``out/model.pkl`` and ``out/metrics.json``
(flat JSON ``{"accuracy": ..., "f1_macro": ...}``). The feature columns come
from the environment variable ``KEEL_PARAM_FEATURES`` (a JSON list), which keel
sets from the ``features`` parameter; without it all four columns are used.
The result is deterministic for a fixed seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

DATA = Path("data/iris.csv")
OUT = Path("out")
ALL_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TARGET = "species"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["logreg", "forest"], default="forest")
    parser.add_argument("--n-estimators", type=int, default=100, help="trees in the forest")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--test-size", type=float, default=0.25, help="held-out fraction")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 < args.test_size < 1.0:
        parser.error(f"--test-size must be between 0 and 1, got {args.test_size}")
    return args


def selected_features() -> list[str]:
    """Return the feature columns named by KEEL_PARAM_FEATURES (default: all four)."""
    raw = os.environ.get("KEEL_PARAM_FEATURES")
    if not raw:
        return list(ALL_FEATURES)
    try:
        features = json.loads(raw)
    except json.JSONDecodeError as exc:
        sys.exit(f"KEEL_PARAM_FEATURES is not valid JSON ({exc}): {raw!r}")
    if not isinstance(features, list) or not features:
        sys.exit(f"KEEL_PARAM_FEATURES must be a non-empty JSON list, got {raw!r}")
    unknown = [f for f in features if f not in ALL_FEATURES]
    if unknown:
        sys.exit(f"unknown feature(s) {unknown} in KEEL_PARAM_FEATURES; valid: {ALL_FEATURES}")
    return features


def load_data(features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read the chosen feature columns and the species labels from data/iris.csv."""
    if not DATA.is_file():
        sys.exit(f"{DATA} not found in {Path.cwd()}: run this script from examples/iris")
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(row[name]) for name in features] for row in rows])
    y = np.array([row[TARGET] for row in rows])
    return x, y


def build_model(args: argparse.Namespace) -> LogisticRegression | RandomForestClassifier:
    """Return the untrained classifier chosen on the command line."""
    if args.model == "logreg":
        return LogisticRegression(C=args.c, max_iter=1000)
    return RandomForestClassifier(n_estimators=args.n_estimators, random_state=args.seed)


def log_to_keel(accuracy: float) -> None:
    """Report the accuracy through keel's Python API when keel is installed."""
    try:
        from keel import log_metric
    except ImportError:
        return
    log_metric("accuracy", accuracy)


def main(argv: list[str] | None = None) -> None:
    """Train, evaluate and write out/model.pkl and out/metrics.json."""
    args = parse_args(argv)
    features = selected_features()
    x, y = load_data(features)
    print(f"loaded {len(y)} rows, features: {', '.join(features)}")

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_size, random_state=args.seed, stratify=y
    )
    model = build_model(args)
    print(f"training {args.model} on {len(y_train)} rows (seed {args.seed})")
    model.fit(x_train, y_train)

    predicted = model.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
    }

    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "model.pkl").open("wb") as f:
        pickle.dump(model, f)
    (OUT / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    log_to_keel(metrics["accuracy"])

    print(
        f"test rows {len(y_test)}: accuracy {metrics['accuracy']:.4f}, "
        f"f1_macro {metrics['f1_macro']:.4f} -> {OUT / 'metrics.json'}"
    )


if __name__ == "__main__":
    main()
