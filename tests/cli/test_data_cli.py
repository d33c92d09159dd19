"""`keel data` and `keel lineage` as a user runs them: real processes, JSON shapes, exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import keel
from tests.projects import git, make_demo_project

SUBCOMMANDS = ["add", "ls", "show", "checkout", "status"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_demo_project(tmp_path / "demo", commit=False)
    spec = root / "keel.yaml"
    spec.write_text(spec.read_text().replace("\nprofiles:", """
  prep:
    command: python -c "import shutil; shutil.copytree('data/raw', 'out/copy')"
    params: []
    inputs: [{dataset: raw}]
    outputs: [{path: out/copy, dataset: copied}]
profiles:"""))
    (root / ".gitignore").write_text(".keel/\nout/\ndata/raw\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "Test")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("1\n")
    (folder / "sub" / "b.txt").write_text("2\n")
    return folder


def _ok(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = keel(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def _error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=SUBCOMMANDS)
def test_every_data_command_has_help_with_examples(command: str) -> None:
    out = keel("data", command, "--help", check=True).stdout
    assert f"Usage: keel data {command}" in out and "Examples:" in out
    assert "keel data " + command in out.split("Examples:")[1]


def test_data_and_lineage_are_listed_and_explained() -> None:
    top = keel("--help", check=True).stdout
    assert "data" in top and "lineage" in top
    group = keel("data", "--help", check=True).stdout
    assert all(c in group for c in SUBCOMMANDS) and "Examples:" in group
    lineage = keel("lineage", "--help", check=True).stdout
    assert "Usage: keel lineage [OPTIONS] RUN|NAME@VERSION" in lineage and "Examples:" in lineage
    assert '"edges": [{"source", "target", "relation"}]' in " ".join(lineage.split())


def test_add_ls_show_checkout_status_with_json(project: Path, raw: Path) -> None:
    added = json.loads(_ok("data", "add", "raw", str(raw), "--why", "drop 1", "--json",
                           cwd=project).stdout)  # fmt: skip
    assert added["created"] is True
    record = added["version"]
    version = record["version"]
    assert set(record) >= {"name", "version", "digest", "kind", "size", "files", "created_at",
                           "who", "why", "source_path", "lineage", "contract", "profile",
                           "breaking", "schema_version", "kind_tag"}  # fmt: skip
    assert (record["kind"], record["files"], record["why"]) == ("dir", 2, "drop 1")
    again = _ok("data", "add", "raw", str(raw), cwd=project).stdout
    assert again.strip() == f"unchanged: {raw} is already raw@{version}; nothing stored"
    listing = json.loads(_ok("data", "ls", "--json", cwd=project).stdout)
    assert listing == [{"name": "raw", "versions": 1, "latest": record}]
    assert json.loads(_ok("data", "ls", "raw", "--json", cwd=project).stdout) == [record]
    row = _ok("data", "ls", cwd=project).stdout.splitlines()[1].split()
    assert row[:6] == ["raw", version, "1", "dir", "2", "4"]
    shown = json.loads(_ok("data", "show", f"raw@{version}", "--json", cwd=project).stdout)
    assert shown["record"] == record and shown["latest"] is True
    assert shown["digest"].startswith("blake3:")
    assert [f["path"] for f in shown["files"]] == ["a.txt", "sub/b.txt"]
    assert "sub/b.txt" in _ok("data", "show", "raw", cwd=project).stdout
    out = _ok("data", "checkout", "raw", "data/raw", cwd=project).stdout
    assert out.strip() == f"raw@{version} is at data/raw (2 files)"
    status = json.loads(_ok("data", "status", "raw", "data/raw", "--json", cwd=project).stdout)
    assert status == {
        "name": "raw", "version": version, "latest": True, "path": "data/raw",
        "state": "unchanged", "digest": record["digest"], "matches": None,
        "changed": [], "added": [], "removed": [], "reads": status["reads"],
    }  # fmt: skip
    (raw / "a.txt").write_text("changed\n")
    changed = keel("data", "status", "raw", cwd=project)
    assert changed.returncode == 1 and "M a.txt" in changed.stdout
    rehashed = json.loads(keel("data", "status", "raw", "--rehash", "--json", cwd=project).stdout)
    assert rehashed["state"] == "changed" and rehashed["reads"] == 2
    missing = keel("data", "status", "raw", "nowhere", cwd=project)
    assert missing.returncode == 1 and "missing" in missing.stdout


def test_bad_input_is_one_line_without_a_traceback(project: Path, raw: Path) -> None:
    err = _error(keel("data", "add", "raw", "nope", cwd=project), 2)
    assert "nope does not exist; give the file or folder to add" in err
    err = _error(keel("data", "add", "../raw", str(raw), cwd=project), 2)
    assert "'../raw' is not a valid dataset name" in err and "a name is not a path" in err
    err = _error(keel("data", "show", "raw", cwd=project), 2)
    assert "no dataset named 'raw'; there are no datasets yet" in err
    version = json.loads(_ok("data", "add", "raw", str(raw), "--json",
                             cwd=project).stdout)["version"]["version"]  # fmt: skip
    err = _error(keel("data", "checkout", "raw@0123456789ab", "x", cwd=project), 2)
    assert f"has no version 0123456789ab; its versions are {version} (" in err
    _ok("data", "checkout", "raw", "x", cwd=project)
    err = _error(keel("data", "checkout", "raw", "x", cwd=project), 2)
    assert "x already exists; remove it, or pass --force to replace it" in err
    err = _error(keel("data", "status", "raw@zz", cwd=project), 2)
    assert "'zz' is not a version of 'raw'" in err
    err = _error(keel("lineage", "raw@0123456789ab", cwd=project), 2)
    assert "has no version 0123456789ab" in err


def test_unknown_dataset_input_stops_the_run_listing_the_versions(
    project: Path, raw: Path
) -> None:
    spec = project / "keel.yaml"
    spec.write_text(spec.read_text().replace("{dataset: raw}", "{dataset: raw@0123456789ab}"))
    err = _error(keel("run", "prep", cwd=project), 4)
    assert "keel.yaml: experiments.prep.inputs[0]: no dataset named 'raw'" in err
    assert keel("ls", "--json", cwd=project, check=True).stdout.strip() == "[]"


def test_lineage_of_a_run_and_of_its_output_as_json(project: Path, raw: Path) -> None:
    version = json.loads(_ok("data", "add", "raw", str(raw), "--json",
                             cwd=project).stdout)["version"]["version"]  # fmt: skip
    run = keel("run", "prep", "--json", cwd=project)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout)["manifest"]["run"]["id"]
    graph = json.loads(_ok("lineage", "copied@latest", "--json", cwd=project).stdout)
    assert set(graph) == {"root", "nodes", "edges", "upstream", "downstream"}
    copied = graph["root"]
    assert copied.startswith("dataset:copied@")
    assert graph["upstream"] == [f"run:{run_id}", f"dataset:raw@{version}"]
    assert graph["downstream"] == []
    assert {"source": f"run:{run_id}", "target": copied, "relation": "output"} in graph["edges"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes[f"run:{run_id}"]["experiment"] == "prep"
    assert nodes[f"run:{run_id}"]["type"] == "run" and nodes[copied]["type"] == "dataset"
    from_run = json.loads(_ok("lineage", run_id, "--json", cwd=project).stdout)
    assert from_run["root"] == f"run:{run_id}"
    assert from_run["upstream"] == [f"dataset:raw@{version}"]
    assert from_run["downstream"] == [copied]
    text = _ok("lineage", f"raw@{version}", cwd=project).stdout
    assert f"run {run_id}" in text and "downstream" in text


def test_keel_run_names_the_versions_it_registered_and_show_names_the_inputs_version(
    project: Path, raw: Path
) -> None:
    _ok("data", "add", "raw", str(raw), cwd=project)
    shown = json.loads(_ok("data", "show", "raw", "--json", cwd=project).stdout)
    version = shown["record"]["version"]
    run = _ok("run", "prep", cwd=project)
    assert "registered dataset copied@" in run.stderr
    shown = _ok("show", "@latest", cwd=project).stdout
    assert f"(dataset raw@{version})" in shown
