"""`keel data diff` and `keel data check` are reachable from the `keel data` group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

KEEL = shutil.which("keel", path=str(Path(sys.executable).parent)) or "keel"


def _keel(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return subprocess.run([KEEL, "-C", str(root), *args], env=env, capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip


def test_data_diff_of_two_versions_from_the_command_line(tmp_path: Path) -> None:
    assert _keel(tmp_path, "init", str(tmp_path)).returncode == 0
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,x\n2,y\n")
    first = json.loads(_keel(tmp_path, "data", "add", "t", str(table), "--json").stdout)
    table.write_text("a,b\n1,x\n5,y\n9,z\n")
    second = json.loads(_keel(tmp_path, "data", "add", "t", str(table), "--json").stdout)
    a, b = f"t@{first['version']['version']}", f"t@{second['version']['version']}"
    done = _keel(tmp_path, "data", "diff", a, b, "--json")
    assert done.returncode == 0, done.stderr
    report = json.dumps(json.loads(done.stdout))
    assert '"drifted"' in report and "t.csv" in report
    unchecked = _keel(tmp_path, "data", "check", b)
    assert unchecked.returncode != 0 and "no contract" in unchecked.stderr
    assert "Traceback" not in unchecked.stderr
