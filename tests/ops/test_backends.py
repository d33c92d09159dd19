"""The whole run → ls → show → reindex loop on each index backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.projects import make_demo_project

KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"


def _keel(demo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")} | env
    return subprocess.run(
        [KEEL, "-C", str(demo), *args],
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_run_ls_show_reindex_on_each_index_backend(tmp_path: Path, db_url: str) -> None:
    demo = make_demo_project(tmp_path / "demo")
    env = {"KEEL_INDEX_URL": db_url}
    for lr in ("0.2", "0.4"):
        done = _keel(demo, "run", "train", "-p", f"lr={lr}", env=env)
        assert done.returncode == 0, done.stderr
    listed = json.loads(_keel(demo, "ls", "--json", "--sort", "score", env=env).stdout)
    assert [r["params"]["lr"] for r in listed] == [0.4, 0.2]
    shown = json.loads(_keel(demo, "show", "train@latest", "--json", env=env).stdout)
    assert shown["manifest"]["config"]["params"]["lr"] == {"value": 0.4, "source": "cli"}
    reindexed = _keel(demo, "reindex", env=env)
    assert reindexed.returncode == 0 and "indexed 2 runs" in reindexed.stdout
    assert json.loads(_keel(demo, "ls", "--json", "--sort", "score", env=env).stdout) == listed


@pytest.mark.postgres
def test_index_url_in_keel_yaml_profile_is_used(tmp_path: Path, pg_url: str) -> None:
    demo = make_demo_project(tmp_path / "demo")
    spec = demo / "keel.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  dev: {}", f"  dev: {{}}\n  team:\n    store: {{index: '{pg_url}'}}"
        )
    )
    done = _keel(demo, "--profile", "team", "run", "train", env={})
    assert done.returncode == 0, done.stderr
    assert not (demo / ".keel" / "index.db").exists()
    listed = json.loads(_keel(demo, "--profile", "team", "ls", "--json", env={}).stdout)
    assert len(listed) == 1 and listed[0]["profile"] == "team"
