"""The in-run API: what a user's code calls while keel runs it.

keel passes ``KEEL_RUN_DIR`` to the child; these functions append JSON lines there, and keel
reads them when the run ends. Outside a keel run they still work: ``params()`` returns the
``KEEL_PARAM_*`` values it can see (usually none) and logging calls are kept in memory only,
so a script runs the same with or without keel. This module imports only the standard library:
it is loaded inside every user process.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from pathlib import Path

log = logging.getLogger(__name__)

RUN_DIR_ENV = "KEEL_RUN_DIR"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.jsonl"
ARTIFACTS_FILE = "artifacts.jsonl"
SEEDED_FILE = "seeded.jsonl"
FOLD_FILE_ENV = "KEEL_FOLD_FILE"
"""Names the JSON file ``{"fold": f, "k": k, "train": [...], "test": [...]}`` of a fold trial."""


def _run_dir() -> Path | None:
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def _append(name: str, record: dict[str, object]) -> None:
    run_dir = _run_dir()
    if run_dir is None:
        log.debug("not inside a keel run; %s not recorded: %s", name, record)
        return
    line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    with open(run_dir / name, "a", encoding="utf-8") as fh:
        fh.write(line)


def params() -> dict[str, object]:
    """The run's resolved parameters, ``{name: value}``.

    Inside a keel run this is exactly what the manifest records; outside one it is built from
    any ``KEEL_PARAM_<NAME>`` environment variables (JSON-decoded where possible).
    """
    run_dir = _run_dir()
    if run_dir is not None and (run_dir / PARAMS_FILE).exists():
        loaded: dict[str, object] = json.loads((run_dir / PARAMS_FILE).read_text("utf-8"))
        return loaded
    found: dict[str, object] = {}
    for key, raw in os.environ.items():
        if key.startswith("KEEL_PARAM_"):
            try:
                found[key[len("KEEL_PARAM_") :].lower()] = json.loads(raw)
            except ValueError:
                found[key[len("KEEL_PARAM_") :].lower()] = raw
    return found


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record a metric value; call repeatedly with ``step`` to record a series.

    Raises:
        ValueError: for a non-finite or non-numeric value, or a bad name.
    """
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"metric {name!r}: value must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"metric {name!r}: value must be finite, got {value!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise ValueError(f"metric {name!r}: step must be an integer, got {step!r}")
    _append(METRICS_FILE, {"name": name, "value": float(value), "step": step})


def log_artifact(path: str | os.PathLike[str]) -> None:
    """Ask keel to store a file or folder produced by the run.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
    """
    p = Path(path).resolve()
    if not p.exists():
        raise FileNotFoundError(f"log_artifact: {path} does not exist")
    _append(ARTIFACTS_FILE, {"path": str(p)})


def fold() -> tuple[list[int], list[int]]:
    """The row numbers ``(train, test)`` of this cross-validation trial's fold.

    Rows are numbered from 0 in file order after the header (blank lines skipped), as
    ``pandas.read_csv`` numbers them: ``df.iloc[train]`` and ``df.iloc[test]`` select them.

    Raises:
        keel.errors.UserError: when not running as a trial of ``keel sweep --folds K``, or the
            fold file cannot be read.
    """
    path = os.environ.get(FOLD_FILE_ENV)
    if not path:
        from keel.errors import UserError  # only on this path: keeps the import light

        raise UserError(
            f"keel.fold(): this is not a cross-validation trial ({FOLD_FILE_ENV} is not set); "
            "run it with `keel sweep EXPERIMENT --folds K`"
        )
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        train, test = data["train"], data["test"]
        return [int(i) for i in train], [int(i) for i in test]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        from keel.errors import UserError

        raise UserError(f"keel.fold(): cannot read the fold file {path}: {exc}") from exc


def seed_everything(seed: int | None = None) -> dict[str, object]:
    """Seed ``random``, NumPy and PyTorch (when importable) and turn on torch's deterministic mode.

    Args:
        seed: the seed; defaults to the run's seed (``KEEL_SEED``), else 0.

    Returns:
        What was seeded, as also recorded in the run's manifest.
    """
    if seed is None:
        seed = int(os.environ.get("KEEL_SEED", "0"))
    done: dict[str, object] = {"seed": seed, "random": True}
    random.seed(seed)
    done["numpy"] = _seed_numpy(seed)
    done["torch"] = _seed_torch(seed)
    _append(SEEDED_FILE, done)
    return done


def _seed_numpy(seed: int) -> str | bool:
    try:
        import numpy as np
    except ImportError:
        return "not installed"
    np.random.seed(seed % 2**32)
    return True


def _seed_torch(seed: int) -> object:
    if "torch" not in sys.modules:
        try:
            import torch
        except ImportError:
            return "not installed"
    torch = sys.modules["torch"]
    torch.manual_seed(seed)
    switches: dict[str, object] = {"manual_seed": True}
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        switches["use_deterministic_algorithms"] = True
    except Exception as exc:  # older torch: the switch is missing
        switches["use_deterministic_algorithms"] = f"not available: {exc}"
    if hasattr(torch, "backends") and hasattr(torch.backends, "cudnn"):
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        switches["cudnn.deterministic"] = True
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    switches["CUBLAS_WORKSPACE_CONFIG"] = os.environ["CUBLAS_WORKSPACE_CONFIG"]
    return switches
