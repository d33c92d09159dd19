"""LocalObjectStore: the contract, plus what only a folder can show (layout, modes, processes)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat
import tempfile
from pathlib import Path

import pytest

from keel.base.digest import CHUNK, Digest, hash_bytes
from keel.errors import CorruptObject, ObjectNotFound, StoreUnavailable
from keel.store.objects.base import ObjectStore
from keel.store.objects.local import LocalObjectStore
from tests.contracts.object_store import Damage, ObjectStoreContract


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


@pytest.fixture
def damage(store: LocalObjectStore) -> Damage:
    def flip(digest: Digest) -> None:
        path = store.object_path(digest)
        data = path.read_bytes()
        path.chmod(0o644)
        path.write_bytes(bytes([data[0] ^ 1]) + data[1:])

    return flip


class TestLocalObjectStore(ObjectStoreContract):
    """The contract, on disk."""


def test_objects_are_fanned_out_by_the_first_two_hex_digits(store: LocalObjectStore) -> None:
    digest = store.put_bytes(b"layout")
    hexdigest = digest.hexdigest
    path = store.root / "objects" / "blake3" / hexdigest[:2] / hexdigest[2:]
    assert path.read_bytes() == b"layout"
    assert store.object_path(digest) == path


def test_objects_are_read_only(store: LocalObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"file")
    for digest in (store.put_bytes(b"bytes"), store.put_file(src)):
        assert stat.S_IMODE(store.object_path(digest).stat().st_mode) == 0o444


def test_refs_are_text_files_holding_the_digest(store: LocalObjectStore) -> None:
    digest = store.put_bytes(b"x")
    store.set_ref("runs/abc", digest)
    assert (store.root / "refs" / "runs" / "abc").read_text() == f"{digest}\n"


def test_url_is_the_file_url_of_the_root(tmp_path: Path) -> None:
    assert LocalObjectStore(tmp_path).url == tmp_path.as_uri()


def test_no_temp_files_are_left_after_writes(store: LocalObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"f" * (CHUNK + 1))
    store.put_file(src)
    store.put_file(src)
    store.put_bytes(b"b")
    store.set_ref("runs/a", store.put_bytes(b"a"), create_only=True)
    store.set_ref("runs/a", store.put_bytes(b"a"), create_only=True)
    assert os.listdir(store.root / "tmp") == []


def test_a_failed_put_leaves_no_temp_file_and_no_object(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes(b"make the folders")

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StoreUnavailable, match="Input/output error"):
        store.put_bytes(b"never stored")
    monkeypatch.undo()
    assert os.listdir(store.root / "tmp") == []
    assert not store.has(hash_bytes(b"never stored"))


def test_a_failed_put_file_leaves_no_temp_file(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x" * (3 * CHUNK))
    store.put_bytes(b"make the folders")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StoreUnavailable, match="free some disk space"):
        store.put_file(src)
    monkeypatch.undo()
    assert os.listdir(store.root / "tmp") == []


def test_corrupt_object_error_names_the_path(store: LocalObjectStore, damage: Damage) -> None:
    digest = store.put_bytes(b"evidence")
    damage(digest)
    with pytest.raises(CorruptObject) as info:
        store.get_bytes(digest)
    assert str(store.object_path(digest)) in str(info.value)


def test_a_ref_file_without_a_digest_is_reported_as_corrupt(store: LocalObjectStore) -> None:
    store.set_ref("runs/a", store.put_bytes(b"a"))
    (store.root / "refs" / "runs" / "a").write_bytes(b"\xffgarbage")
    with pytest.raises(CorruptObject, match="keel verify"):
        store.get_ref("runs/a")


def test_stray_files_are_ignored_by_listings(store: LocalObjectStore) -> None:
    digest = store.put_bytes(b"a")
    store.set_ref("runs/a", digest)
    (store.root / "refs" / "runs" / ".a.tmp").write_text("junk")
    (store.object_path(digest).parent / "junk").write_text("junk")
    (store.root / "objects" / "blake3" / "zz").mkdir()
    assert [n for n, _ in store.list_refs("")] == ["runs/a"]
    assert list(store.iter_digests()) == [digest]


def test_a_missing_root_is_created_by_the_first_write(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "a" / "b" / ".keel")
    assert not store.has(hash_bytes(b"x"))
    assert list(store.iter_digests()) == []
    assert list(store.list_refs("runs/")) == []
    assert store.get_ref("runs/x") is None
    with pytest.raises(ObjectNotFound):
        store.get_bytes(hash_bytes(b"x"))
    store.set_ref("runs/x", store.put_bytes(b"x"))
    assert store.get_ref("runs/x") == hash_bytes(b"x")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.put_bytes(b"x"), id="put_bytes"),
        pytest.param(lambda s: s.has(hash_bytes(b"x")), id="has"),
        pytest.param(lambda s: s.get_bytes(hash_bytes(b"x")), id="get_bytes"),
        pytest.param(lambda s: list(s.iter_digests()), id="iter_digests"),
        pytest.param(lambda s: s.set_ref("runs/a", hash_bytes(b"x")), id="set_ref"),
        pytest.param(lambda s: s.get_ref("runs/a"), id="get_ref"),
        pytest.param(lambda s: list(s.list_refs("runs/")), id="list_refs"),
        pytest.param(lambda s: s.delete_ref("runs/a"), id="delete_ref"),
    ],
)
def test_a_missing_root_that_must_exist_is_store_unavailable(tmp_path: Path, call: object) -> None:
    root = tmp_path / "mount" / "store"
    store = LocalObjectStore(root, create=False)
    with pytest.raises(StoreUnavailable, match="does not exist") as info:
        call(store)  # type: ignore[operator]
    assert str(root) in str(info.value)
    assert not root.exists()


def test_a_file_in_the_way_of_the_root_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a folder")
    store = LocalObjectStore(tmp_path / "blocker" / "store")
    with pytest.raises(StoreUnavailable, match="blocker") as info:
        store.put_bytes(b"x")
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        pytest.param(errno.EACCES, "permissions", id="EACCES"),
        pytest.param(errno.EPERM, "permissions", id="EPERM"),
        pytest.param(errno.ENOSPC, "disk space", id="ENOSPC"),
        pytest.param(errno.EDQUOT, "quota", id="EDQUOT"),
        pytest.param(errno.EROFS, "read-only", id="EROFS"),
        pytest.param(errno.EIO, "reachable", id="EIO"),
    ],
)
def test_every_os_error_on_write_becomes_store_unavailable_with_a_hint(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch, code: int, hint: str
) -> None:
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(code, os.strerror(code), str(store.root / "tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    for call in (
        lambda: store.put_bytes(b"x"),
        lambda: store.set_ref("runs/a", hash_bytes(b"x")),
    ):
        with pytest.raises(StoreUnavailable, match=hint) as info:
            call()
        assert str(store.root / "tmp") in str(info.value)
        assert isinstance(info.value.__cause__, OSError)


def test_an_unreadable_object_is_store_unavailable(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.put_bytes(b"x")
    path = store.object_path(digest)

    def denied(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(StoreUnavailable, match="permissions") as info:
        store.get_bytes(digest)
    assert str(path) in str(info.value)


def _put_same_objects(root: str, blob: bytes, src: str) -> tuple[str, str]:
    store = LocalObjectStore(Path(root))
    return str(store.put_bytes(blob)), str(store.put_file(Path(src)))


def _claim(root: str, name: str, value: bytes) -> bool:
    store = LocalObjectStore(Path(root))
    return store.set_ref(name, store.put_bytes(value), create_only=True)


def test_concurrent_puts_of_one_object_from_several_processes_all_succeed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    blob = os.urandom(3 * CHUNK + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2 * CHUNK))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_put_same_objects, [(str(root), blob, str(src))] * 8)
    assert len(set(results)) == 1
    store = LocalObjectStore(root)
    assert len(list(store.iter_digests())) == 2
    assert all(store.verify(d) for d in store.iter_digests())
    assert os.listdir(root / "tmp") == []


def test_create_only_refs_have_one_winner_across_processes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        won = pool.starmap(_claim, [(str(root), "runs/x", f"v{i}".encode()) for i in range(8)])
    assert won.count(True) == 1
    winner = won.index(True)
    assert LocalObjectStore(root).get_ref("runs/x") == hash_bytes(f"v{winner}".encode())


def test_put_file_and_copy_to_use_constant_memory(store: LocalObjectStore, tmp_path: Path) -> None:
    import tracemalloc

    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        for _ in range(48):
            fh.write(os.urandom(CHUNK))
    tracemalloc.start()
    try:
        digest = store.put_file(src)
        store.copy_to(digest, tmp_path / "copy.bin")
        assert store.verify(digest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * CHUNK  # a 48-chunk file never held in memory
    assert (tmp_path / "copy.bin").stat().st_size == 48 * CHUNK


def test_local_store_implements_the_port(store: LocalObjectStore) -> None:
    port: ObjectStore = store
    assert port.url == store.url
