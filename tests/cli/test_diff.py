"""`keel diff` as a user runs it: JSON shape, the rendered report, one-line errors, help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import keel
from tests.projects import make_demo_project


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return make_demo_project(tmp_path / "demo")


def _runs(demo: Path, *overrides: str) -> list[str]:
    """Run train once as is and once per override; return the run ids, oldest first."""
    keel("-C", str(demo), "run", "train", check=True)
    for override in overrides:
        keel("-C", str(demo), "run", "train", "-p", override, check=True)
    listing = json.loads(keel("-C", str(demo), "ls", "--json", check=True).stdout)
    return [r["id"] for r in reversed(listing)]


def test_json_output_has_a_stable_structure(demo: Path) -> None:
    a, b = _runs(demo, "lr=0.5")
    result = keel("-C", str(demo), "diff", a, b, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(data) == ["a", "b", "changes", "summary", "warnings"]
    assert (data["a"], data["b"], data["warnings"]) == (a, b, [])
    assert data["summary"].startswith("config: 1 change")
    assert all(sorted(c) == ["a", "b", "key", "kind", "note"] for c in data["changes"])
    assert data["changes"][0] == {
        "kind": "config",
        "key": "params.lr",
        "a": 0.1,
        "b": 0.5,
        "note": "source catalog → cli: overridden on the command line in B",
    }


def test_report_puts_the_summary_line_on_top(demo: Path) -> None:
    a, b = _runs(demo, "lr=0.5")
    result = keel("-C", str(demo), "diff", a[:8], b)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("config: 1 change")
    assert "params.lr" in result.stdout and "overridden on the command line" in result.stdout
    assert "Metrics" in result.stdout and "beyond tolerance" in result.stdout


def test_identical_runs_print_exactly_no_difference(demo: Path) -> None:
    keel("-C", str(demo), "run", "train", check=True)
    a, b = _runs(demo)
    result = keel("-C", str(demo), "diff", a, b)
    assert (result.returncode, result.stdout) == (0, "no difference\n"), result.stderr
    assert "id" in keel("-C", str(demo), "diff", a, b, "--all", check=True).stdout


def test_unknown_run_reference_is_a_one_line_error(demo: Path) -> None:
    (a,) = _runs(demo)
    result = keel("-C", str(demo), "diff", a, "zzzz")
    assert result.returncode == 6
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: no run matches 'zzzz'; list runs with `keel ls`"


def test_help_shows_examples() -> None:
    out = keel("diff", "--help", check=True).stdout
    assert "Usage: keel diff [OPTIONS] A B" in out
    assert "Examples:" in out and "keel diff 06g0q9y 06g0r2k" in out
    assert "--json" in out and "--all" in out
