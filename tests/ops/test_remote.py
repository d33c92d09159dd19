"""Push and pull between two clones of a project, through a folder remote and S3 (moto's server
on loopback): round trips, only-missing transfers, create-only writes, verified downloads,
interrupted transfers resumed, refs that move forward, and errors that say what to do."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.base.digest import Digest
from keel.errors import StoreUnavailable, UserError
from keel.model.run import RunStatus
from keel.ops.baseline import set_baseline
from keel.ops.listing import list_runs, show_run
from keel.ops.reachability import reachable
from keel.ops.remote import TransferProgress, pull, push, select_remote
from keel.ops.reproduce import ReproduceRequest, reproduce
from keel.ops.run import RunOutcome, RunRequest, run_experiment
from keel.ops.verify import verify_remote
from keel.ops.workspace import Workspace
from keel.store.objects.remote import FsspecObjectStore
from tests.cli.test_cli import keel
from tests.projects import git, make_demo_project

MakeWs = Callable[..., Workspace]


@dataclass(frozen=True)
class Clones:
    """Two clones of one project (same keel.yaml, same commits) sharing a remote."""

    a: Path
    b: Path
    url: str

    def remote(self) -> FsspecObjectStore:
        return FsspecObjectStore(self.url, name="origin", environ=os.environ)


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "remote")
    server = request.getfixturevalue("s3_server")
    return f"s3://{server.make_bucket()}/team/keel"


def _clones(tmp_path: Path, url: str, extra: str = "") -> Clones:
    a = make_demo_project(tmp_path / "a")
    spec = a / "keel.yaml"
    spec.write_text(spec.read_text() + f"remotes:\n  origin: {url}\n{extra}")
    git(a, "commit", "-qam", "share runs")
    subprocess.run(["git", "clone", "-q", str(a), str(tmp_path / "b")], check=True)
    return Clones(a=a, b=tmp_path / "b", url=url)


@pytest.fixture
def clones(tmp_path: Path, remote_url: str) -> Clones:
    return _clones(tmp_path, remote_url)


def _run(ws: Workspace, **overrides: str) -> RunOutcome:
    outcome = run_experiment(ws, RunRequest(experiment="train", overrides=overrides))
    assert outcome.manifest.run.status is RunStatus.SUCCEEDED
    return outcome


def _objects(ws: Workspace, digest: Digest) -> set[Digest]:
    return set(reachable(ws.objects, [digest]).nodes)


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every object a remote store is asked to write (put_bytes or put_file)."""
    calls: list[str] = []
    put_bytes, put_file = FsspecObjectStore.put_bytes, FsspecObjectStore.put_file

    def counting_bytes(self: FsspecObjectStore, data: bytes) -> Digest:
        calls.append("bytes")
        return put_bytes(self, data)

    def counting_file(self: FsspecObjectStore, path: Path) -> Digest:
        calls.append("file")
        return put_file(self, path)

    monkeypatch.setattr(FsspecObjectStore, "put_bytes", counting_bytes)
    monkeypatch.setattr(FsspecObjectStore, "put_file", counting_file)
    yield calls


class Interrupted(Exception):
    """Stands for Ctrl-C or a dropped connection in the middle of a transfer."""


def _interrupt_after(n: int) -> Callable[[TransferProgress], None]:
    def progress(p: TransferProgress) -> None:
        if p.objects >= n:
            raise Interrupted

    return progress


# -- round trips ----------------------------------------------------------------------------


def test_a_pushed_run_is_pulled_by_another_clone_and_listed(
    clones: Clones, make_workspace: MakeWs
) -> None:
    wa, wb = make_workspace(clones.a), make_workspace(clones.b)
    outcome = _run(wa)
    needed = _objects(wa, outcome.digest)
    pushed = push(wa, [outcome.run_id])
    assert pushed and pushed.moved == len(needed) and pushed.refs == (f"runs/{outcome.run_id}",)
    pulled = pull(wb, everything=True)
    assert pulled and pulled.moved == len(needed) and pulled.refs == pushed.refs
    assert [r.id for r in list_runs(wb)] == [outcome.run_id]
    view = show_run(wb, outcome.run_id)
    assert view.digest == str(outcome.digest) and "training on 2 rows" in view.log_tail
    assert _objects(wb, outcome.digest) == needed
    assert pull(wb, everything=True).moved == 0


def test_only_missing_objects_move(
    clones: Clones, make_workspace: MakeWs, uploads: list[str]
) -> None:
    wa, wb = make_workspace(clones.a), make_workspace(clones.b)
    first = _run(wa)
    push(wa, [first.run_id])
    assert len(uploads) == len(_objects(wa, first.digest))
    second = _run(wa, lr="0.2")
    uploads.clear()
    report = push(wa, everything=True)
    new = _objects(wa, second.digest) - _objects(wa, first.digest)
    assert len(uploads) == report.moved == len(new) > 0
    assert report.refs == (f"runs/{second.run_id}",) and report.refs_unchanged == 1
    uploads.clear()
    assert push(wa, everything=True).moved == 0 and uploads == []
    pull(wb, [first.run_id])
    assert pull(wb, everything=True).moved == len(new)


def test_runs_are_found_by_id_prefix_and_dataset_versions_by_name_at_version(
    clones: Clones, make_workspace: MakeWs
) -> None:
    wa, wb = make_workspace(clones.a), make_workspace(clones.b)
    outcome = _run(wa)
    tree = wa.objects.put_bytes(
        canonical_json(
            {
                "entries": [
                    {
                        "path": "points.csv",
                        "digest": str(wa.objects.put_bytes(b"x,y\n1,2\n")),
                        "size": 8,
                    }
                ]
            }
        )
    )
    record = wa.objects.put_bytes(canonical_json({"kind": "keel.dataset", "digest": str(tree)}))
    wa.objects.set_ref(f"datasets/points/{tree.hexdigest[:12]}", record)  # fmt: skip
    target = f"points@{tree.hexdigest[:12]}"
    assert push(wa, [target, "train@latest"]).moved > 0
    assert pull(wb, [target, outcome.run_id[:8]]).refs == (
        f"datasets/points/{tree.hexdigest[:12]}",
        f"runs/{outcome.run_id}",
    )
    assert wb.objects.get_bytes(tree) == wa.objects.get_bytes(tree)
    with pytest.raises(UserError, match=r"has no dataset version points@000000000000"):
        pull(wb, ["points@000000000000"])
    with pytest.raises(UserError, match="no run matches 'zz9'"):
        pull(wb, ["zz9"])


# -- never overwrite, verify downloads ------------------------------------------------------


def _plant(clones: Clones, digest: Digest, data: bytes) -> None:
    """Put ``data`` on the remote under ``digest``'s key, as a damaged upload would."""
    store = clones.remote()
    path = store._path(digest)
    if store._kind == "local":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    else:
        store._fs.pipe_file(path, data)


def test_a_corrupt_remote_object_is_never_replaced_refused_on_pull_and_found_by_verify(
    clones: Clones, make_workspace: MakeWs
) -> None:
    wa, wb = make_workspace(clones.a), make_workspace(clones.b)
    outcome = _run(wa)
    log = Digest.parse(outcome.manifest.logs["stdout"].digest)
    good = wa.objects.get_bytes(log)
    bad = bytes([good[0] ^ 1]) + good[1:]
    _plant(clones, log, bad)
    report = push(wa, [outcome.run_id])
    assert report.present == 1 and report.refs
    assert clones.remote()._fs.cat_file(clones.remote()._path(log)) == bad  # not replaced

    pulled = pull(wb, everything=True)
    assert not pulled
    assert [d for d, _ in pulled.failed] == [str(log)] and "corrupt" in pulled.failed[0][1]
    assert pulled.held_back == (f"runs/{outcome.run_id}",)
    assert not wb.objects.has(log) and wb.objects.get_ref(f"runs/{outcome.run_id}") is None
    assert list_runs(wb) == []

    assert verify_remote(wa)  # same size: only reading the data shows it
    found = verify_remote(wa, read_data=True)
    assert not found and [d for d, _ in found.corrupt] == [str(log)]
    _plant(clones, log, good[:-1])
    truncated = verify_remote(wa)
    assert [d for d, _ in truncated.corrupt] == [str(log)]
    assert "bytes on the remote" in truncated.corrupt[0][1]


def test_verify_remote_names_objects_the_remote_lost(
    clones: Clones, make_workspace: MakeWs
) -> None:
    wa = make_workspace(clones.a)
    outcome = _run(wa)
    push(wa, [outcome.run_id])
    log = Digest.parse(outcome.manifest.logs["stdout"].digest)
    store = clones.remote()
    store._fs.rm_file(store._path(log))
    report = verify_remote(wa)
    assert not report and report.missing == (str(log),)


# -- interrupted transfers ------------------------------------------------------------------


def test_an_interrupted_push_is_finished_by_running_it_again(
    clones: Clones, make_workspace: MakeWs, uploads: list[str]
) -> None:
    wa = make_workspace(clones.a)
    outcome = _run(wa)
    total = len(_objects(wa, outcome.digest))
    with pytest.raises(Interrupted):
        push(wa, [outcome.run_id], on_progress=_interrupt_after(2), jobs=1)
    store = clones.remote()
    assert store.get_ref(f"runs/{outcome.run_id}") is None
    there = len(store.object_sizes())
    assert 2 <= there < total
    report = push(wa, [outcome.run_id])
    assert report and report.refs == (f"runs/{outcome.run_id}",)
    assert report.moved == total - there and report.present == there
    assert len(uploads) == total  # every object was sent exactly once


def test_an_interrupted_pull_leaves_no_partial_file_and_is_finished_by_running_it_again(
    clones: Clones, make_workspace: MakeWs
) -> None:
    wa, wb = make_workspace(clones.a), make_workspace(clones.b)
    outcome = _run(wa)
    push(wa, [outcome.run_id])
    total = len(_objects(wa, outcome.digest))
    with pytest.raises(Interrupted):
        pull(wb, everything=True, on_progress=_interrupt_after(2), jobs=1)
    assert wb.objects.get_ref(f"runs/{outcome.run_id}") is None
    got = set(wb.objects.iter_digests())
    assert 2 <= len(got) < total
    assert all(wb.objects.verify(d) for d in got)
    assert not any((wb.store_root / "tmp").glob("*"))
    report = pull(wb, everything=True)
    assert report and report.moved == total - len(got)
    assert [r.id for r in list_runs(wb)] == [outcome.run_id]


# -- refs that move forward -----------------------------------------------------------------


def test_baselines_travel_and_move_forward(clones: Clones, make_workspace: MakeWs) -> None:
    wa, wb = make_workspace(clones.a), make_workspace(clones.b)
    first, second = _run(wa), _run(wa, lr="0.2")
    set_baseline(wa, first.run_id, why="first")
    push(wa, everything=True)
    pull(wb, everything=True)
    assert wb.objects.get_ref("baselines/train") == wa.objects.get_ref("baselines/train")
    set_baseline(wa, second.run_id, why="better")
    assert push(wa, everything=True).refs == ("baselines/train",)
    assert pull(wb, everything=True).refs == ("baselines/train",)
    assert wb.objects.get_ref("baselines/train") == wa.objects.get_ref("baselines/train")
    # a side that is ahead keeps its value; diverged sides are reported, never overwritten
    older = wb.objects.get_ref("baselines/train")
    assert older is not None
    unrelated = wb.objects.put_bytes(b'{"kind": "keel.baseline", "why": "elsewhere"}')
    wb.objects.set_ref("baselines/train", unrelated)
    report = push(wb, everything=True)
    assert not report and "baselines/train" in report.conflicts[0]
    assert clones.remote().get_ref("baselines/train") == older


# -- reproduce ------------------------------------------------------------------------------


def test_reproduce_fetches_the_run_and_its_inputs_from_the_default_remote(
    tmp_path: Path, make_workspace: MakeWs
) -> None:
    clones = _clones(tmp_path, str(tmp_path / "remote"))
    wa = make_workspace(clones.a)
    (clones.a / "scratch.txt").write_text("untracked helper\n")  # travels with the run
    outcome = _run(wa)
    push(wa, [outcome.run_id])
    wb = make_workspace(clones.b)
    result = reproduce(wb, ReproduceRequest(ref=outcome.run_id))
    assert result.exit_code == 0, result.record
    assert {r.id for r in list_runs(wb)} >= {outcome.run_id}


def test_reproduce_without_a_remote_contacts_nothing(
    demo: Path, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(demo)
    outcome = _run(ws)

    def no_remote(*args: object, **kwargs: object) -> None:
        raise AssertionError("no remote is configured")

    monkeypatch.setattr(FsspecObjectStore, "__init__", no_remote)
    assert reproduce(ws, ReproduceRequest(ref=outcome.run_id)).exit_code == 0


# -- choosing a remote, and failing well ----------------------------------------------------


def test_the_default_remote_is_origin_else_the_first_declared(
    tmp_path: Path, make_workspace: MakeWs
) -> None:
    root = make_demo_project(tmp_path / "p", commit=False)
    spec = root / "keel.yaml"
    text = spec.read_text().replace(
        "profiles:\n", "remotes:\n  zeta: /z\n  origin: /o\nprofiles:\n"
    )
    text = text.replace("  prod:\n", "  prod:\n    remotes: {backup: shared/backup}\n")
    spec.write_text(text)
    assert select_remote(make_workspace(root)).name == "origin"
    prod = select_remote(make_workspace(root, profile="prod"))
    assert prod.name == "origin"
    assert select_remote(make_workspace(root, profile="prod"), "backup").url == str(
        root / "shared" / "backup"
    )
    spec.write_text(text.replace("  origin: /o\n", ""))
    assert select_remote(make_workspace(root)).name == "zeta"


def test_an_unknown_remote_name_suggests_the_closest(
    clones: Clones, make_workspace: MakeWs
) -> None:
    with pytest.raises(UserError, match="unknown remote 'orign'; did you mean 'origin'"):
        push(make_workspace(clones.a), everything=True, remote="orign")


def test_without_remotes_the_error_says_how_to_declare_one(
    demo: Path, make_workspace: MakeWs
) -> None:
    with pytest.raises(UserError, match=r"add `remotes: \{origin: s3://bucket/prefix\}`"):
        pull(make_workspace(demo), everything=True)


def _store_files(ws: Workspace) -> list[Path]:
    root = ws.store_root
    return (
        [p for p in root.rglob("*") if p.is_file() and "cache" not in p.parts]
        if root.exists()
        else []
    )


def test_a_missing_folder_remote_is_named_and_nothing_is_written(
    tmp_path: Path, make_workspace: MakeWs
) -> None:
    clones = _clones(tmp_path, str(tmp_path / "no" / "such" / "remote"))
    wb = make_workspace(clones.b)
    with pytest.raises(StoreUnavailable, match=r"remote 'origin'.*does not exist"):
        pull(wb, everything=True)
    assert _store_files(wb) == []


@pytest.mark.s3
def test_an_unreachable_remote_is_named_and_nothing_is_written(
    tmp_path: Path, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("s3fs.S3FileSystem.retries", 1)
    clones = _clones(tmp_path, "s3://keel-unreachable/team")
    wb = make_workspace(clones.b, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreUnavailable, match="cannot reach remote 'origin'"):
        pull(wb, everything=True)
    assert _store_files(wb) == []


@pytest.mark.s3
def test_missing_credentials_name_the_variables_and_nothing_is_written(
    tmp_path: Path, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch, s3_server: object
) -> None:
    clones = _clones(tmp_path, "s3://keel-creds/team")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    wb = make_workspace(clones.b)
    with pytest.raises(StoreUnavailable, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        pull(wb, everything=True)
    assert _store_files(wb) == []


def test_push_needs_something_to_send(clones: Clones, make_workspace: MakeWs) -> None:
    with pytest.raises(UserError, match="say what to send"):
        push(make_workspace(clones.a))


# -- the commands ---------------------------------------------------------------------------


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", ["push", "pull", "gc"])
def test_each_command_has_help_with_examples(command: str) -> None:
    out = keel(command, "--help", check=True).stdout
    assert f"Usage: keel {command}" in out and "Examples:" in out
    assert command in keel("--help", check=True).stdout


def test_push_and_pull_commands_round_trip_and_print_one_summary_line(clones: Clones) -> None:
    keel("-C", str(clones.a), "run", "train", check=True)
    pushed = keel("-C", str(clones.a), "push", "--all", check=True)
    assert pushed.stdout.startswith("pushed 7 objects") and pushed.stderr == ""
    pulled = keel("-C", str(clones.b), "pull", "--all", check=True)
    assert pulled.stdout.startswith("pulled 7 objects") and "1 ref from origin" in pulled.stdout
    listed = json.loads(keel("-C", str(clones.b), "ls", "--json", check=True).stdout)
    assert len(listed) == 1 and listed[0]["status"] == "succeeded"
    checked = keel("-C", str(clones.b), "verify", "--remote", "--read-data", check=True).stdout
    assert "checked 7 objects on origin" in checked and "downloaded and re-hashed" in checked
    again = json.loads(keel("-C", str(clones.b), "pull", "--all", "--json", check=True).stdout)
    assert again["moved"] == 0 and again["ok"]


def test_a_corrupt_remote_object_fails_the_pull_command_naming_it(clones: Clones) -> None:
    keel("-C", str(clones.a), "run", "train", check=True)
    keel("-C", str(clones.a), "push", "--all", check=True)
    store = clones.remote()
    victim = sorted(store.object_sizes())[0]
    _plant(clones, victim, b"not what was pushed")
    result = keel("-C", str(clones.b), "pull", "--all")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"FAILED {victim}" in result.stderr and "NOT SET runs/" in result.stderr
    checked = keel("-C", str(clones.a), "verify", "--remote", "origin")
    assert checked.returncode == 1 and f"CORRUPT {victim}" in checked.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("push", "--all", "--remote", "orign"), "did you mean 'origin'", id="typo"),
        pytest.param(("push",), "say what to send", id="nothing"),
        pytest.param(("pull", "not/a/run"), "name a run by id", id="bad-target"),
        pytest.param(("verify", "--remote", "nope"), "unknown remote 'nope'", id="verify"),
    ],
)
def test_bad_input_is_a_one_line_error(
    clones: Clones, args: tuple[str, ...], expected: str
) -> None:
    assert expected in _one_line(keel("-C", str(clones.b), *args))


def test_no_remote_configured_is_a_one_line_error(demo: Path) -> None:
    assert "add `remotes:" in _one_line(keel("-C", str(demo), "pull", "--all"))


@pytest.mark.s3
def test_unreachable_remote_and_missing_credentials_are_one_line_errors(
    tmp_path: Path, s3_server: object
) -> None:
    clones = _clones(tmp_path, "s3://keel-nowhere/team")
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    err = _one_line(keel("-C", str(clones.b), "pull", "--all", env=env))
    assert "cannot reach remote 'origin'" in err and "AWS_ENDPOINT_URL" in err
    none = str(tmp_path / "none")
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_CONFIG_FILE": none}  # fmt: skip
    err = _one_line(keel("-C", str(clones.b), "push", "--all", env=env))
    assert "remote 'origin'" in err and "AWS_ACCESS_KEY_ID" in err
    assert not (clones.b / ".keel" / "objects").exists()


def test_remotes_are_validated_with_their_lines(tmp_path: Path) -> None:
    from keel.errors import ValidationError
    from keel.spec.project import load_project

    spec = tmp_path / "keel.yaml"
    spec.write_text(
        "project: p\n"
        "remotes:\n"
        "  'bad name': s3://b/p\n"
        "  empty: ''\n"
        "profiles:\n"
        "  prod:\n"
        "    remotes: {origin: 3}\n"
    )
    with pytest.raises(ValidationError) as caught:
        load_project(spec)
    assert [str(p) for p in caught.value.problems] == [
        "keel.yaml:3: remotes.bad name: 'bad name' is not a valid remote name; "
        "use letters, digits, _ and -",
        "keel.yaml:4: remotes.empty: the remote location is empty; write an fsspec URL such as "
        "s3://bucket/prefix, or a folder path",
        "keel.yaml:7: profiles.prod.remotes.origin: expected a string, got 3",
    ]


def test_remotes_are_not_part_of_the_profile_a_run_records(
    clones: Clones, make_workspace: MakeWs
) -> None:
    outcome = _run(make_workspace(clones.a))
    assert "remotes" not in outcome.manifest.config.profile
