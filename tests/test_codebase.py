"""The codebase's own contracts: lint, strict typing, layer rules and the public surface."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_no_problems() -> None:
    result = _run(_tool("ruff"), "check", "keel", "tests", "bench", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes_on_the_package() -> None:
    result = _run(_tool("mypy"), "--strict", "keel")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contracts_hold() -> None:
    result = _run(_tool("lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_surface_is_exactly_all() -> None:
    import keel

    assert sorted(keel.__all__) == [
        "KeelError",
        "RunOutcome",
        "UserError",
        "Workspace",
        "__version__",
        "fold",
        "log_artifact",
        "log_metric",
        "params",
        "run",
        "seed_everything",
    ]
    for name in keel.__all__:
        assert getattr(keel, name) is not None


def test_import_keel_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, keel; keel.log_metric; "
        "heavy = [m for m in ('sqlalchemy', 'pydantic', 'rich', 'click', 'alembic') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_keel_run_path_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, keel.ops.run, keel.cli.cmd_run; "
        "print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"
