"""`keel gc`: unreferenced old objects go; referenced or young ones stay; it fails closed."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.base.digest import Digest
from keel.errors import CorruptObject, StoreUnavailable, UserError
from keel.ops.gc import gc, parse_grace
from keel.ops.listing import show_run
from keel.ops.reachability import reachable
from keel.ops.run import RunOutcome, RunRequest, run_experiment
from keel.ops.verify import verify_store
from keel.ops.workspace import Workspace
from tests.cli.test_cli import keel

MakeWs = Callable[..., Workspace]
DAY = 86400


def _age(ws: Workspace, seconds: float = 2 * DAY) -> None:
    """Make every stored object look ``seconds`` old."""
    then = time.time() - seconds
    for path in (ws.store_root / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


@pytest.fixture
def ws(demo: Path, make_workspace: MakeWs) -> Workspace:
    return make_workspace(demo)


@pytest.fixture
def run(ws: Workspace) -> RunOutcome:
    return run_experiment(ws, RunRequest(experiment="train"))


def _stored(ws: Workspace) -> set[Digest]:
    return set(ws.objects.iter_digests())


def _garbage(ws: Workspace) -> set[Digest]:
    """What a run leaves unreferenced (its start record, replaced by the sealed manifest)."""
    refs = [d for _, d in ws.objects.list_refs("")]
    return _stored(ws) - set(reachable(ws.objects, refs).nodes)


def test_unreferenced_old_objects_go_and_referenced_and_young_ones_stay(
    ws: Workspace, run: RunOutcome
) -> None:
    orphan = ws.objects.put_bytes(b"left behind by an aborted run")
    garbage = _garbage(ws)
    referenced = _stored(ws) - garbage
    freed = sum(ws.objects.size(d) for d in garbage)
    _age(ws)
    young = ws.objects.put_bytes(b"written a moment ago")
    report = gc(ws, delete=True)
    assert {d for d, _ in report.doomed} == garbage and orphan in garbage and report.deleted
    assert report.doomed_bytes == freed
    assert report.young == 1 and report.referenced == len(referenced)
    assert _stored(ws) == referenced | {young}
    assert verify_store(ws)
    assert show_run(ws, run.run_id).digest == str(run.digest)


def test_a_dry_run_deletes_nothing(ws: Workspace, run: RunOutcome) -> None:
    orphan = ws.objects.put_bytes(b"orphan")
    _age(ws)
    before = _stored(ws)
    report = gc(ws)
    assert orphan in {d for d, _ in report.doomed} and not report.deleted
    assert _stored(ws) == before


def test_the_grace_period_keeps_recent_orphans(ws: Workspace, run: RunOutcome) -> None:
    orphan = ws.objects.put_bytes(b"orphan")
    _age(ws, 3600)
    assert gc(ws, grace=timedelta(hours=24), delete=True).doomed == ()
    assert (orphan, 6) in gc(ws, grace=timedelta(minutes=30), delete=True).doomed
    assert not ws.objects.has(orphan)


def test_locks_baselines_datasets_running_jobs_and_any_ref_keep_what_they_reach(
    ws: Workspace, run: RunOutcome
) -> None:
    pinned = ws.objects.put_bytes(b"an input keel.lock pins")
    (ws.root / "keel.lock").write_text(f'[experiments.train.inputs]\ndigest = "{pinned}"\n')
    kept: dict[str, Digest] = {}
    for ref in ("active/06running", "datasets/iris/0123456789ab", "noise/train", "notes/x"):
        leaf = ws.objects.put_bytes(f"file of {ref}".encode())
        tree = ws.objects.put_bytes(canonical_json({"entries": [{"digest": str(leaf)}]}))
        record = ws.objects.put_bytes(canonical_json({"kind": ref, "content": f"see {tree}"}))
        ws.objects.set_ref(ref, record)
        kept.update({f"{ref} leaf": leaf, f"{ref} tree": tree, ref: record})
    _age(ws)
    gone = {d for d, _ in gc(ws, delete=True).doomed}
    assert not gone & (set(kept.values()) | {pinned})
    assert set(kept.values()) | {pinned} <= _stored(ws)


def test_an_unreadable_manifest_aborts_and_deletes_nothing(ws: Workspace, run: RunOutcome) -> None:
    ws.objects.put_bytes(b"orphan")
    _age(ws)
    path = ws.objects.object_path(run.digest)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"succeeded", b"SUCCEEDED"))
    before = _stored(ws)
    with pytest.raises(CorruptObject, match="deleted nothing") as info:
        gc(ws, delete=True)
    assert str(run.digest) in str(info.value)
    assert _stored(ws) == before


def test_a_ref_to_a_record_that_is_not_json_aborts(ws: Workspace, run: RunOutcome) -> None:
    ws.objects.set_ref("datasets/broken/0123456789ab", ws.objects.put_bytes(b"\x00binary"))
    ws.objects.put_bytes(b"orphan")
    _age(ws)
    with pytest.raises(CorruptObject, match=r"datasets/broken.*not a readable record"):
        gc(ws, delete=True)
    assert len(_stored(ws)) == len(set(ws.objects.iter_digests()))


def test_a_ref_to_a_missing_object_aborts(ws: Workspace, run: RunOutcome) -> None:
    ws.objects.set_ref("runs/ghost", Digest.parse("blake3:" + "ab" * 32))
    orphan = ws.objects.put_bytes(b"orphan")
    _age(ws)
    with pytest.raises(CorruptObject, match=r"'runs/ghost'.*not in the store.*nothing was deleted"):
        gc(ws, delete=True)
    assert orphan in _stored(ws)


def test_a_listing_error_aborts_and_deletes_nothing(
    ws: Workspace, run: RunOutcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = ws.objects.put_bytes(b"orphan")
    _age(ws)

    def broken() -> Iterator[Digest]:
        yield orphan
        raise StoreUnavailable("cannot list objects/blake3/ab: Input/output error")

    monkeypatch.setattr(ws.objects, "iter_digests", broken)
    with pytest.raises(StoreUnavailable, match=r"Input/output error.*gc deleted nothing"):
        gc(ws, delete=True)
    monkeypatch.undo()
    assert orphan in _stored(ws)


def test_refs_that_change_while_gc_looks_abort_the_deletion(
    ws: Workspace, run: RunOutcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = ws.objects.put_bytes(b"soon referenced")
    _age(ws)
    listings = iter([list(ws.objects.list_refs("")), [("runs/new", orphan)]])
    monkeypatch.setattr(ws.objects, "list_refs", lambda prefix: iter(next(listings)))
    with pytest.raises(StoreUnavailable, match=r"refs changed.*nothing was deleted"):
        gc(ws, delete=True)
    assert orphan in _stored(ws)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("24h", DAY, id="hours"),
        pytest.param("30m", 1800, id="minutes"),
        pytest.param("7d", 7 * DAY, id="days"),
        pytest.param("2w", 14 * DAY, id="weeks"),
        pytest.param("90s", 90, id="seconds"),
        pytest.param("0", 0, id="zero"),
        pytest.param("1.5h", 5400, id="fraction"),
    ],
)
def test_grace_durations(text: str, seconds: int) -> None:
    assert parse_grace(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "-1h", "1y", "soon", "24 hours"])
def test_a_bad_grace_says_what_is_expected(text: str) -> None:
    with pytest.raises(UserError, match="expected a duration such as 30m, 24h or 7d"):
        parse_grace(text)


def test_the_gc_command_is_a_dry_run_unless_yes(demo: Path) -> None:
    keel("-C", str(demo), "run", "train", check=True)
    ws = Workspace.open(demo, environ={})
    orphan = ws.objects.put_bytes(b"orphan")
    _age(ws)
    dry = keel("-C", str(demo), "gc", check=True).stdout
    assert f"would delete {orphan}" in dry and "run `keel gc --yes`" in dry
    assert ws.objects.has(orphan)
    listed = json.loads(keel("-C", str(demo), "gc", "--json", check=True).stdout)
    assert {"digest": str(orphan), "size": 6} in listed["objects"] and not listed["deleted"]
    done = keel("-C", str(demo), "gc", "--yes", "--grace", "1h", check=True).stdout
    assert f"deleted {orphan}" in done and not ws.objects.has(orphan)


def test_the_gc_command_fails_closed_in_one_line(demo: Path) -> None:
    keel("-C", str(demo), "run", "train", check=True)
    ws = Workspace.open(demo, environ={})
    ws.objects.set_ref("runs/ghost", Digest.parse("blake3:" + "cd" * 32))
    result = keel("-C", str(demo), "gc", "--yes")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "nothing was deleted" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad = keel("-C", str(demo), "gc", "--grace", "soon")
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
