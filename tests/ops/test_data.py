"""Datasets: versions on real files, dataset inputs and outputs of real runs in real git repos."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.base.canonical import loads
from keel.base.clock import FixedClock
from keel.base.digest import Digest, hash_file
from keel.capture.data import hash_path
from keel.errors import UserError, ValidationError
from keel.model.dataset import DatasetRef, DatasetVersion, TreeChanges, default_path
from keel.model.manifest import InputRecord, Manifest
from keel.model.run import RunStatus
from keel.ops.data import (
    add_dataset,
    checkout_dataset,
    dataset_names,
    dataset_status,
    dataset_versions,
    get_version,
)
from keel.ops.datastore import version_files
from keel.ops.lineage import lineage_graph
from keel.ops.run import RunRequest, run_experiment
from keel.ops.workingcopy import DataCache, hash_file_pipelined
from keel.ops.workspace import Workspace
from tests.projects import git, make_demo_project

DATA_EXPERIMENTS = """\
  prep:
    command: python prep.py
    params: []
    inputs: [{dataset: raw}]
    outputs: [{path: out/features.txt, dataset: features}]
  fit:
    command: python fit.py
    params: []
    inputs: [{dataset: features, path: data/features.txt}]
"""

PREP_PY = """\
import os, pathlib, sys
raw = pathlib.Path("data/raw")
rows = [p.read_text().strip() for p in sorted(raw.rglob("*")) if p.is_file()]
if os.environ.get("FAIL"):
    sys.exit(3)
os.makedirs("out", exist_ok=True)
pathlib.Path("out/features.txt").write_text("\\n".join(rows) + "\\n")
if os.environ.get("TAMPER"):
    try:
        with open(raw / "a.txt", "a") as fh:
            fh.write("tampered\\n")
        print("wrote to the input")
    except OSError as exc:
        print("cannot write to the input:", exc.strerror)
"""

FIT_PY = 'print(open("data/features.txt").read())\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The demo project with two dataset experiments (prep reads raw, writes features)."""
    root = make_demo_project(tmp_path / "demo", commit=False)
    spec = root / "keel.yaml"
    spec.write_text(spec.read_text().replace("\nprofiles:", DATA_EXPERIMENTS + "\nprofiles:"))
    (root / "prep.py").write_text(PREP_PY)
    (root / "fit.py").write_text(FIT_PY)
    (root / ".gitignore").write_text(".keel/\nout/\ndata/raw\ndata/features.txt\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "Test")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


MakeWs = Callable[..., Workspace]


@pytest.fixture
def make_ws() -> MakeWs:
    """A workspace whose clock is far ahead, so files written now are not "racy" for caches."""

    def make(root: Path, **env: str) -> Workspace:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        environ.pop("PYTHONHASHSEED", None)
        environ.update(USER="alice", **env)
        clock = FixedClock(start=datetime(2100, 1, 1, tzinfo=UTC))
        return Workspace.open(root, profile="dev", environ=environ, clock=clock)

    return make


@pytest.fixture
def ws(project: Path, make_ws: MakeWs) -> Workspace:
    return make_ws(project)


def _folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return _folder(tmp_path / "raw", {"a.txt": "1\n", "sub/b.txt": "2\n"})


@pytest.fixture
def no_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if any file's content is read to compute a digest."""

    def refuse(path: object) -> tuple[Digest, int]:
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr("keel.ops.statcache.hash_file", refuse)
    monkeypatch.setattr("keel.ops.workingcopy.hash_file_pipelined", refuse)
    yield


def _refs(ws: Workspace, prefix: str) -> list[str]:
    return [name for name, _ in ws.objects.list_refs(prefix)]


# -- add / ls / show / checkout -----------------------------------------------------------------


def test_add_ls_show_checkout_round_trip_of_a_folder(ws: Workspace, raw: Path) -> None:
    outcome = add_dataset(ws, name="raw", path=raw, why="first drop")
    v = outcome.version
    assert outcome.created and v.kind == "dir" and (v.files, v.size) == (2, 4)
    assert v.digest == hash_path(raw)["digest"]  # the same tree digest as run inputs get
    assert v.version == Digest.parse(v.digest).hexdigest[:12]
    assert (v.who, v.why, v.lineage.run, v.lineage.inputs) == ("alice", "first drop", None, ())
    assert _refs(ws, "datasets/") == [f"datasets/raw/{v.version}"]
    assert dataset_names(ws) == ["raw"] and dataset_versions(ws, "raw") == [v]
    assert get_version(ws, "raw") == get_version(ws, f"raw@{v.version}") == v
    assert sorted(version_files(ws, v)) == ["a.txt", "sub/b.txt"]
    dest = ws.root / "copy"
    checkout_dataset(ws, f"raw@{v.version}", dest)
    assert (dest / "sub" / "b.txt").read_text() == "2\n"
    assert hash_path(dest)["digest"] == v.digest
    assert not os.access(dest / "a.txt", os.W_OK) or os.geteuid() == 0
    assert stat.S_IMODE(os.stat(dest / "a.txt").st_mode) == 0o444
    assert [p.name for p in ws.root.iterdir() if p.name.startswith(".copy")] == []


def test_a_version_record_is_canonical_json_naming_every_object_it_needs(
    ws: Workspace, raw: Path
) -> None:
    v = add_dataset(ws, name="raw", path=raw).version
    record_digest = ws.objects.get_ref(v.ref_name)
    assert record_digest is not None
    data = loads(ws.objects.get_bytes(record_digest))
    assert isinstance(data, dict) and data["kind_tag"] == "keel.dataset"
    assert data["lineage"] == {"run": None, "inputs": []}
    assert DatasetVersion.from_json(data) == v
    tree = loads(ws.objects.get_bytes(Digest.parse(v.digest)))
    assert isinstance(tree, dict)
    for entry in tree["entries"]:  # type: ignore[union-attr]
        assert ws.objects.has(Digest.parse(entry["digest"]))  # type: ignore[index]


def test_adding_identical_content_again_is_a_no_op(ws: Workspace, raw: Path) -> None:
    first = add_dataset(ws, name="raw", path=raw)
    objects = sorted(ws.objects.iter_digests())
    again = add_dataset(ws, name="raw", path=raw, why="ignored")
    copy = _folder(raw.parent / "copy", {"a.txt": "1\n", "sub/b.txt": "2\n"})
    elsewhere = add_dataset(ws, name="raw", path=copy)
    assert not again.created and not elsewhere.created
    assert again.version == elsewhere.version == first.version
    assert sorted(ws.objects.iter_digests()) == objects
    assert len(dataset_versions(ws, "raw")) == 1


def test_a_single_file_version_and_a_new_version_becomes_latest(
    ws: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "iris.csv"
    path.write_text("x,y\n1,2\n")
    v1 = add_dataset(ws, name="iris", path=path).version
    path.write_text("x,y\n1,2\n3,4\n")
    v2 = add_dataset(ws, name="iris", path=path, why="more rows").version
    assert (v1.kind, v1.files, v1.size) == ("file", 1, 8)
    assert v1.digest == str(hash_file(tmp_path / "iris.csv")[0]) or v2.digest != v1.digest
    assert [v.version for v in dataset_versions(ws, "iris")] == [v2.version, v1.version]
    assert get_version(ws, "iris") == get_version(ws, "iris@latest") == v2
    dest = tmp_path / "old.csv"
    checkout_dataset(ws, f"iris@{v1.version}", dest)
    assert dest.read_text() == "x,y\n1,2\n"
    assert list(version_files(ws, v1)) == ["iris.csv"]


def test_symlinks_and_empty_folders_are_not_part_of_a_version(ws: Workspace, raw: Path) -> None:
    before = add_dataset(ws, name="raw", path=raw).version
    (raw / "empty").mkdir()
    (raw / "link.txt").symlink_to(raw / "a.txt")
    (raw / "linked-dir").symlink_to(raw / "sub")
    after = add_dataset(ws, name="raw", path=raw)
    assert not after.created and after.version == before
    assert hash_path(raw)["digest"] == before.digest


def test_checkout_refuses_an_existing_path_unless_forced(ws: Workspace, raw: Path) -> None:
    v = add_dataset(ws, name="raw", path=raw).version
    dest = _folder(ws.root / "mine", {"keep.txt": "precious"})
    with pytest.raises(UserError, match=r"mine already exists; remove it, or pass --force"):
        checkout_dataset(ws, "raw", dest)
    assert (dest / "keep.txt").read_text() == "precious"
    checkout_dataset(ws, "raw", dest, force=True)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "sub"]
    writable = checkout_dataset(ws, v.ref, ws.root / "edit", copy=True)
    assert writable == v and os.access(ws.root / "edit" / "a.txt", os.W_OK)
    assert stat.S_IMODE(os.stat(ws.root / "edit" / "a.txt").st_mode) == 0o644


def test_checkout_never_replaces_the_project_or_the_store(ws: Workspace, raw: Path) -> None:
    add_dataset(ws, name="raw", path=raw)
    for dest in (ws.root, ws.root.parent, ws.store_root, ws.store_root / "objects" / "x"):
        with pytest.raises(UserError, match="refusing to write"):
            checkout_dataset(ws, "raw", dest, force=True)
    assert (ws.root / "keel.yaml").exists() and not (ws.store_root / "objects" / "x").exists()


def test_a_failed_checkout_leaves_the_destination_as_it_was(ws: Workspace, raw: Path) -> None:
    v = add_dataset(ws, name="raw", path=raw).version
    dest = _folder(ws.root / "mine", {"keep.txt": "precious"})
    files = version_files(ws, v)
    lost = ws.objects.object_path(Digest.parse(files["sub/b.txt"].digest))
    lost.unlink()
    with pytest.raises(UserError, match=r"raw@\w+: object blake3:\w+ is not in the store"):
        checkout_dataset(ws, "raw", dest, force=True)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    with pytest.raises(UserError, match="not in the store"):
        checkout_dataset(ws, "raw", ws.root / "fresh")
    assert sorted(p.name for p in ws.root.iterdir() if "fresh" in p.name) == []


def test_files_are_hard_links_to_the_store_when_nobody_can_write_through_them(
    ws: Workspace, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = add_dataset(ws, name="raw", path=raw).version
    obj = ws.objects.object_path(Digest.parse(version_files(ws, v)["a.txt"].digest))
    checkout_dataset(ws, "raw", ws.root / "copied")
    if os.geteuid() == 0:  # root writes through read-only files: keel copies instead
        assert os.stat(ws.root / "copied" / "a.txt").st_ino != os.stat(obj).st_ino
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for an ordinary user
    checkout_dataset(ws, "raw", ws.root / "linked")
    assert os.stat(ws.root / "linked" / "a.txt").st_ino == os.stat(obj).st_ino
    assert stat.S_IMODE(os.stat(obj).st_mode) == 0o444


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("../x", "a name is not a path", id="parent-path"),
        pytest.param("/etc/passwd", "a name is not a path", id="absolute"),
        pytest.param(".hidden", "not starting with '.'", id="dot"),
        pytest.param("a@b", "is not a valid dataset name", id="at-sign"),
        pytest.param("x" * 101, "at most 100", id="too-long"),
    ],
)
def test_a_dataset_name_must_be_a_simple_identifier(
    ws: Workspace, raw: Path, name: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        add_dataset(ws, name=name, path=raw)
    with pytest.raises(UserError, match=message if "@" not in name else "not a version of 'a'"):
        get_version(ws, name)
    assert _refs(ws, "datasets/") == []


def test_a_missing_path_an_empty_folder_and_a_fifo_are_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"nope does not exist; give the file or folder to add"):
        add_dataset(ws, name="x", path=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no files to version"):
        add_dataset(ws, name="x", path=tmp_path / "empty")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UserError, match="is not a regular file or a folder"):
        add_dataset(ws, name="x", path=tmp_path / "pipe")
    assert _refs(ws, "datasets/") == []


def test_an_unreadable_file_is_a_clean_error(
    ws: Workspace, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: object) -> tuple[Digest, int]:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("keel.ops.statcache.hash_file", denied)
    with pytest.raises(UserError, match=r"cannot read .*a.txt: Permission denied; check its"):
        add_dataset(ws, name="raw", path=raw)
    assert _refs(ws, "datasets/") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_a_clean_error(ws: Workspace, raw: Path) -> None:
    (raw / "a.txt").chmod(0)
    with pytest.raises(UserError, match="cannot read"):
        add_dataset(ws, name="raw", path=raw)


def test_unknown_datasets_and_versions_name_what_exists(ws: Workspace, raw: Path) -> None:
    with pytest.raises(UserError, match="no dataset named 'raw'; there are no datasets yet"):
        get_version(ws, "raw")
    v = add_dataset(ws, name="raw", path=raw).version
    with pytest.raises(UserError, match="no dataset named 'rwa'; did you mean 'raw'"):
        get_version(ws, "rwa@latest")
    with pytest.raises(UserError, match=rf"has no version 000000000000; its versions are "
                                        rf"{v.version} \(2100-01-01T00:00:\d\d\)"):  # fmt: skip
        get_version(ws, "raw@000000000000")
    with pytest.raises(UserError, match="'v1' is not a version of 'raw'"):
        get_version(ws, "raw@v1")


def test_a_version_is_never_partly_visible(
    ws: Workspace, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ws.objects.put_file
    calls: list[Path] = []

    def fail_second(path: Path) -> Digest:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(ws.objects, "put_file", fail_second)
    with pytest.raises(OSError, match="No space left"):
        add_dataset(ws, name="raw", path=raw)
    assert _refs(ws, "datasets/") == [] and dataset_versions(ws, "raw") == []


def test_content_is_checked_against_the_contract_before_anything_is_stored(
    ws: Workspace, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    seen: list[dict[str, object]] = []

    def validate_version(ws: Workspace, **kwargs: object) -> tuple[str | None, str | None]:
        seen.append(kwargs)
        if kwargs["breaking"] is None and len(seen) > 1:
            raise ValidationError([])
        return "blake3:" + "c" * 64, "blake3:" + "d" * 64

    fake = types.ModuleType("keel.ops.datacheck")
    fake.validate_version = validate_version  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keel.ops.datacheck", fake)
    first = add_dataset(ws, name="raw", path=raw, contract_file=Path("c.yaml")).version
    assert (first.contract, first.profile) == ("blake3:" + "c" * 64, "blake3:" + "d" * 64)
    assert seen[0] == {"name": "raw", "path": raw.absolute(), "contract_file": Path("c.yaml"),
                       "previous": None, "breaking": None}  # fmt: skip
    (raw / "a.txt").write_text("changed\n")
    objects = sorted(ws.objects.iter_digests())
    with pytest.raises(ValidationError):
        add_dataset(ws, name="raw", path=raw)
    assert seen[1]["previous"] == first
    assert sorted(ws.objects.iter_digests()) == objects
    second = add_dataset(ws, name="raw", path=raw, breaking="column renamed").version
    assert second.breaking == "column renamed"


# -- status and the caches ----------------------------------------------------------------------


def test_status_of_an_unchanged_copy_reads_no_file(
    ws: Workspace, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = add_dataset(ws, name="raw", path=raw).version
    counted: list[int] = []
    real = DataCache.save
    monkeypatch.setattr(DataCache, "save", lambda self: (counted.append(self.reads), real(self)))
    monkeypatch.setattr("keel.ops.statcache.hash_file", _refuse)
    status = dataset_status(ws, "raw")
    assert status.clean and status.state == "unchanged" and status.latest
    assert (status.reads, counted, status.path) == (0, [0], str(raw))
    assert status.expected == v


def _refuse(path: object) -> tuple[Digest, int]:
    raise AssertionError(f"{path} was read")


def test_status_lists_changed_added_and_removed_files(ws: Workspace, raw: Path) -> None:
    add_dataset(ws, name="raw", path=raw)
    (raw / "a.txt").write_text("9\n")  # same size: caught by mtime and ctime
    (raw / "new.txt").write_text("new")
    (raw / "sub" / "b.txt").unlink()
    cache = DataCache.open(ws)
    status = dataset_status(ws, "raw", cache=cache)
    assert status.state == "changed" and not status.clean
    assert status.changes == TreeChanges(changed=("a.txt",), added=("new.txt",),
                                         removed=("sub/b.txt",))  # fmt: skip
    assert status.reads == cache.reads == 2  # only the two files whose stat changed
    assert status.to_json()["changed"] == ["a.txt"]


def test_status_names_the_older_version_a_copy_holds(ws: Workspace, raw: Path) -> None:
    v1 = add_dataset(ws, name="raw", path=raw).version
    checkout_dataset(ws, "raw", ws.root / "data" / "raw")
    (raw / "c.txt").write_text("3\n")
    v2 = add_dataset(ws, name="raw", path=raw).version
    old = dataset_status(ws, "raw", ws.root / "data" / "raw")
    assert old.state == "changed" and old.matches == v1.version and old.expected == v2
    assert old.changes.removed == ("c.txt",) and old.path == "data/raw"
    assert dataset_status(ws, f"raw@{v1.version}", ws.root / "data" / "raw").clean
    missing = dataset_status(ws, "raw", ws.root / "nowhere")
    assert missing.state == "missing" and not missing.clean


def test_rehash_reads_every_file_whatever_the_cache_says(ws: Workspace, raw: Path) -> None:
    add_dataset(ws, name="raw", path=raw)
    dataset_status(ws, "raw")
    cache = DataCache.open(ws)
    status = dataset_status(ws, "raw", rehash=True, cache=cache)
    assert status.clean and status.reads == 2 and cache.rehashed == 2


def test_a_rewrite_that_keeps_size_and_mtime_is_still_caught(ws: Workspace, raw: Path) -> None:
    add_dataset(ws, name="raw", path=raw)
    assert dataset_status(ws, "raw").clean
    before = os.stat(raw / "a.txt")
    (raw / "a.txt").write_text("7\n")
    os.utime(raw / "a.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert dataset_status(ws, "raw").changes.changed == ("a.txt",)


def test_files_changed_moments_ago_are_never_trusted_from_the_cache(
    project: Path, raw: Path
) -> None:
    ws = Workspace.open(project)  # the real clock: the files were written just now
    add_dataset(ws, name="raw", path=raw)
    cache = DataCache.open(ws)
    assert dataset_status(ws, "raw", cache=cache).clean and cache.reads == 2


def test_pipelined_hashing_gives_the_plain_digest(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 2**20 + 17))
    small = tmp_path / "small.bin"
    small.write_bytes(b"tiny")
    for path in (big, small, tmp_path / "empty"):
        path.touch()
        assert hash_file_pipelined(path) == hash_file(path)
    with pytest.raises(IsADirectoryError):
        hash_file_pipelined(tmp_path)


# -- keel.yaml ----------------------------------------------------------------------------------


def test_dataset_inputs_default_to_data_slash_name(project: Path) -> None:
    from keel.spec.project import load_project

    prep = load_project(project / "keel.yaml").experiments["prep"]
    assert prep.inputs[0].path == "data/raw" == default_path("raw@0123456789ab")
    assert prep.inputs[0].dataset == "raw"
    assert prep.outputs[0] != "out/features.txt" and prep.output_paths == ("out/features.txt",)
    assert DatasetRef.parse("raw@latest") == DatasetRef("raw")


def test_bad_dataset_declarations_are_reported_with_their_lines(project: Path) -> None:
    from keel.spec.project import load_project

    spec = project / "keel.yaml"
    good = spec.read_text()
    spec.write_text(
        good.replace("inputs: [{dataset: raw}]", "inputs: [{dataset: ../raw, store: false}]")
        .replace("dataset: features}]", "dataset: features@0123456789ab}]")
        .replace("{dataset: features, path:", "{dataset: features@v2, path:")
    )
    with pytest.raises(ValidationError) as caught:
        load_project(spec)
    messages = [str(p) for p in caught.value.problems]
    assert messages[0].startswith("keel.yaml:51: experiments.prep.inputs[0].dataset: '../raw' "
                                  "is not a valid dataset name: use letters")  # fmt: skip
    assert "a name is not a path" in messages[0]
    assert messages[1] == ("keel.yaml:51: experiments.prep.inputs[0].store: a dataset input is "
                           "always stored; remove 'store'")  # fmt: skip
    assert messages[2].startswith("keel.yaml:52: experiments.prep.outputs[0].dataset: "
                                  "'features@0123456789ab' is not a valid dataset name")
    assert messages[2].endswith("; an output names a dataset, not a version")
    assert messages[3].startswith("keel.yaml:56: experiments.fit.inputs[0].dataset: 'v2' is not "
                                  "a version of 'features'")  # fmt: skip
    spec.write_text(good.replace("dataset: features}]", "dataset: features}, 7, {path: x}]"))
    with pytest.raises(ValidationError) as caught:
        load_project(spec)
    assert [str(p) for p in caught.value.problems] == [
        "keel.yaml:52: experiments.prep.outputs[1]: expected a path, or a mapping with path and "
        "dataset; got 7",
        "keel.yaml:52: experiments.prep.outputs[2].dataset: required key is missing",
    ]


def test_manifest_input_records_name_their_dataset_version_and_round_trip() -> None:
    plain = InputRecord(path="a.csv", kind="file", digest="blake3:" + "a" * 64)
    named = InputRecord(path="data/raw", kind="dir", digest="blake3:" + "b" * 64,
                        dataset="raw", version="b" * 12)  # fmt: skip
    from keel.model.records import to_json_value as _jsonable

    assert "dataset" not in json.dumps(_jsonable(plain))
    data = _jsonable(named)
    assert isinstance(data, dict) and (data["dataset"], data["version"]) == ("raw", "b" * 12)
    from keel.model.decode import Decoder

    assert Decoder().record(InputRecord, data) == named


# -- runs ---------------------------------------------------------------------------------------


def _run(ws: Workspace, experiment: str) -> tuple[Manifest, tuple[DatasetVersion, ...]]:
    outcome = run_experiment(ws, RunRequest(experiment=experiment))
    assert outcome.manifest.run.status is RunStatus.SUCCEEDED, outcome.manifest.flags
    return outcome.manifest, outcome.datasets


def test_a_dataset_input_is_materialised_read_only_and_recorded(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project, TAMPER="1")
    v = add_dataset(ws, name="raw", path=raw).version
    objects = {d: ws.objects.verify(d) for d in ws.objects.iter_digests()}
    m, _ = _run(ws, "prep")
    rec = m.inputs[0]
    assert (rec.path, rec.dataset, rec.version, rec.digest) == ("data/raw", "raw", v.version,
                                                                 v.digest)  # fmt: skip
    assert rec.stored and rec.kind == "dir" and rec.files == 2
    assert stat.S_IMODE(os.stat(project / "data" / "raw" / "a.txt").st_mode) == 0o444
    assert all(ws.objects.verify(d) for d in objects)  # the store is unchanged
    assert set(ws.objects.iter_digests()) >= set(objects)
    if os.geteuid() == 0:  # root could write to its copy: the change is flagged
        assert rec.changed_during_run and "input data/raw changed during run" in m.flags
    else:
        assert not rec.changed_during_run
    assert (project / "out" / "features.txt").read_text() == "1\n2\n"
    assert "dataset" in json.dumps(m.to_json())


def test_a_pinned_version_replaces_a_working_copy_of_another_version(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project)
    v1 = add_dataset(ws, name="raw", path=raw).version
    (raw / "c.txt").write_text("3\n")
    v2 = add_dataset(ws, name="raw", path=raw).version
    latest, _ = _run(ws, "prep")
    assert latest.inputs[0].version == v2.version
    assert (project / "out" / "features.txt").read_text() == "1\n3\n2\n"
    spec = project / "keel.yaml"
    spec.write_text(spec.read_text().replace("{dataset: raw}", f"{{dataset: raw@{v1.version}}}"))
    pinned, _ = _run(make_ws(project), "prep")
    assert (pinned.inputs[0].dataset, pinned.inputs[0].version) == ("raw", v1.version)
    assert (project / "out" / "features.txt").read_text() == "1\n2\n"
    assert not (project / "data" / "raw" / "c.txt").exists()


def test_an_unchanged_working_copy_costs_no_read_before_or_after_a_run(
    project: Path, make_ws: MakeWs, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_ws(project)
    add_dataset(ws, name="raw", path=raw)
    _run(ws, "prep")
    monkeypatch.setattr("keel.ops.statcache.hash_file", _refuse)
    m, _ = _run(make_ws(project), "prep")
    assert not m.inputs[0].changed_during_run and m.inputs[0].digest_after == m.inputs[0].digest


def test_a_working_copy_with_unsaved_changes_is_never_overwritten(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project)
    add_dataset(ws, name="raw", path=raw)
    mine = _folder(project / "data" / "raw", {"a.txt": "my edit\n"})
    with pytest.raises(UserError, match=r"data/raw holds content that is not a version of "
                                        r"dataset 'raw'.*keel data add raw data/raw"):  # fmt: skip
        run_experiment(ws, RunRequest(experiment="prep"))
    assert (mine / "a.txt").read_text() == "my edit\n"
    assert _refs(ws, "runs/") == [] and _refs(ws, "active/") == []


def test_unknown_datasets_and_versions_stop_the_run_before_anything_runs(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project)
    with pytest.raises(ValidationError, match=r"keel.yaml: experiments.prep.inputs\[0\]: no "
                                              r"dataset named 'raw'"):  # fmt: skip
        run_experiment(ws, RunRequest(experiment="prep"))
    v = add_dataset(ws, name="raw", path=raw).version
    spec = project / "keel.yaml"
    spec.write_text(spec.read_text().replace("{dataset: raw}", "{dataset: raw@0123456789ab}"))
    with pytest.raises(ValidationError, match=rf"has no version 0123456789ab; its versions are "
                                              rf"{v.version}"):  # fmt: skip
        run_experiment(make_ws(project), RunRequest(experiment="prep"))
    assert _refs(ws, "runs/") == [] and _refs(ws, "active/") == []
    assert not (project / "data" / "raw").exists() and not (project / "out").exists()


def test_an_output_becomes_a_version_whose_lineage_is_the_run(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project)
    v = add_dataset(ws, name="raw", path=raw).version
    m, made = _run(ws, "prep")
    features = get_version(ws, "features")
    assert made == (features,)
    assert features.lineage.run == m.run.id and features.lineage.inputs == (v.ref,)
    assert (features.kind, features.source_path) == ("file", "out/features.txt")
    assert features.digest == next(o.digest for o in m.outputs if o.path == "out/features.txt")
    assert features.why == f"output out/features.txt of run {m.run.id}"
    again, made_again = _run(make_ws(project), "prep")  # same content: the same version
    assert made_again == (features,) and len(dataset_versions(ws, "features")) == 1
    assert again.run.id != m.run.id


def test_a_failed_run_registers_nothing(project: Path, make_ws: MakeWs, raw: Path) -> None:
    ws = make_ws(project, FAIL="1")
    add_dataset(ws, name="raw", path=raw)
    outcome = run_experiment(ws, RunRequest(experiment="prep"))
    assert outcome.manifest.run.status is RunStatus.FAILED and outcome.datasets == ()
    assert dataset_names(ws) == ["raw"]


def test_an_output_that_breaks_its_contract_is_flagged_not_registered(
    project: Path, make_ws: MakeWs, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_ws(project)
    add_dataset(ws, name="raw", path=raw)

    def refuse(ws: Workspace, *, name: str, **kwargs: object) -> tuple[None, None]:
        if name == "features":
            raise UserError("column 'x' is missing")
        return None, None

    monkeypatch.setattr("keel.ops.datacheck.validate_version", refuse)
    outcome = run_experiment(ws, RunRequest(experiment="prep"))
    assert outcome.manifest.run.status is RunStatus.SUCCEEDED and outcome.datasets == ()
    assert ("output out/features.txt was not registered as dataset features: column 'x' is "
            "missing") in outcome.manifest.flags  # fmt: skip
    assert dataset_names(ws) == ["raw"]


def test_lineage_walks_from_a_version_and_from_a_run_both_ways(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project)
    raw_v = add_dataset(ws, name="raw", path=raw).version
    prep, _ = _run(ws, "prep")
    fit, _ = _run(make_ws(project), "fit")
    features = get_version(ws, "features")
    assert fit.inputs[0].version == features.version
    graph = lineage_graph(ws, f"features@{features.version}")
    assert graph.root == f"dataset:{features.ref}"
    assert graph.upstream == (f"run:{prep.run.id}", f"dataset:{raw_v.ref}")
    assert graph.downstream == (f"run:{fit.run.id}",)
    assert graph.nodes[f"run:{prep.run.id}"].attrs["experiment"] == "prep"
    from_run = lineage_graph(ws, prep.run.id)
    assert from_run.upstream == (f"dataset:{raw_v.ref}",)
    assert from_run.downstream == (f"dataset:{features.ref}", f"run:{fit.run.id}")
    relations = {(e.source, e.target, e.relation) for e in from_run.edges}
    assert (f"run:{prep.run.id}", f"dataset:{features.ref}", "output") in relations
    assert (f"dataset:{raw_v.ref}", f"run:{prep.run.id}", "input") in relations
    from_raw = lineage_graph(ws, "raw@latest")
    assert from_raw.upstream == () and len(from_raw.downstream) == 3
    assert lineage_graph(ws, "fit@latest").root == f"run:{fit.run.id}"
    with pytest.raises(UserError, match="no dataset named 'nope'"):
        lineage_graph(ws, "nope@0123456789ab")


def test_a_run_with_dataset_inputs_reproduces(project: Path, make_ws: MakeWs, raw: Path) -> None:
    from keel.ops.reproduce import ReproduceRequest, reproduce

    ws = make_ws(project)
    add_dataset(ws, name="raw", path=raw)
    m, _ = _run(ws, "prep")
    (raw / "c.txt").write_text("3\n")
    add_dataset(ws, name="raw", path=raw)  # a newer version must not be used
    result = reproduce(ws, ReproduceRequest(ref=m.run.id))
    assert result.exit_code == 0, result.to_json()
    assert result.outcome is not None
    rec = result.outcome.manifest.inputs[0]
    assert (rec.dataset, rec.version) == ("raw", m.inputs[0].version)
    assert rec.digest == m.inputs[0].digest


def test_a_dataset_input_git_does_not_ignore_is_flagged(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    (project / ".gitignore").write_text(".keel/\nout/\n")
    git(project, "commit", "-qam", "track data")
    ws = make_ws(project)
    add_dataset(ws, name="raw", path=raw)
    m, _ = _run(ws, "prep")
    assert ("dataset input data/raw is not git-ignored, so its files are also recorded as "
            "untracked code; add it to .gitignore") in m.flags  # fmt: skip


def test_damaged_caches_cost_a_read_never_a_wrong_answer(ws: Workspace, raw: Path) -> None:
    add_dataset(ws, name="raw", path=raw)
    assert dataset_status(ws, "raw").clean
    folder = ws.cache_dir / "data"
    signatures = json.loads((folder / "signatures.json").read_text())
    for entry in signatures["entries"].values():
        entry[1] = "not a digest"
    (folder / "signatures.json").write_text(json.dumps(signatures))
    (folder / "stat.json").write_text("{broken")
    cache = DataCache.open(ws)
    assert dataset_status(ws, "raw", cache=cache).clean and cache.reads == 2
    (folder / "signatures.json").write_text("[]")
    assert dataset_status(ws, "raw").clean


def test_the_plan_carries_dataset_inputs_and_outputs(project: Path) -> None:
    from keel.resolve.resolve import resolve_run
    from keel.spec.project import load_project

    plan = resolve_run(load_project(project / "keel.yaml"), experiment="prep")
    assert plan.inputs[0].dataset == "raw" and plan.inputs[0].path == "data/raw"
    assert plan.to_json()["inputs"] == [["data/raw", True, "raw"]]
    assert plan.outputs == ("out/features.txt",)
    assert plan.dataset_outputs == (("out/features.txt", "features"),)
    train = resolve_run(load_project(project / "keel.yaml"), experiment="train")
    assert train.to_json()["inputs"] == [["data/points.csv", True]]
    assert train.dataset_outputs == ()


def test_run_facts_for_the_graph_are_cached_by_manifest(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    ws = make_ws(project)
    add_dataset(ws, name="raw", path=raw)
    m, _ = _run(ws, "prep")
    first = lineage_graph(ws, m.run.id)
    cached = json.loads((ws.cache_dir / "data" / "runs.json").read_text())
    assert [entry["id"] for entry in cached.values()] == [m.run.id]
    assert lineage_graph(ws, m.run.id) == first


def test_a_record_that_is_not_a_readable_version_is_refused_with_advice(
    ws: Workspace, raw: Path
) -> None:
    data = add_dataset(ws, name="raw", path=raw).version.to_json()
    with pytest.raises(UserError, match="newer than this keel understands"):
        DatasetVersion.from_json({**data, "schema_version": 2})
    with pytest.raises(UserError, match="no valid schema_version"):
        DatasetVersion.from_json({**data, "schema_version": None})
    with pytest.raises(UserError, match="not a keel dataset record"):
        DatasetVersion.from_json({**data, "kind_tag": "keel.run"})
    with pytest.raises(UserError, match=r"raw@\w+ is not valid .*edited"):
        DatasetVersion.from_json({**data, "size": "big"})


def test_keel_lock_pins_the_dataset_version_and_check_names_a_newer_latest(
    project: Path, make_ws: MakeWs, raw: Path
) -> None:
    from keel.ops.check import check_drift
    from keel.ops.lock import lock_experiments
    from keel.spec.lockread import read_lock

    ws = make_ws(project)
    v1 = add_dataset(ws, name="raw", path=raw).version
    lock_experiments(ws, ["prep"])  # no working copy yet: the lock names the version anyway
    locked = read_lock(project / "keel.lock").experiments["prep"].inputs[0]
    assert (locked.dataset, locked.version, locked.digest) == ("raw", v1.version, v1.digest)
    assert f'version = "{v1.version}"' in (project / "keel.lock").read_text()
    assert not check_drift(make_ws(project), ["prep"]).items
    (raw / "c.txt").write_text("3\n")
    v2 = add_dataset(ws, name="raw", path=raw).version
    items = check_drift(make_ws(project), ["prep"]).items
    assert [i.message for i in items] == [
        f"input data/raw changed: dataset raw@{v1.version} → raw@{v2.version}"
    ]
