"""Data digests: files and folders, hashed or stored and restored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from memory_sink import MemoryBlobSink

from keel.base.canonical import JsonValue, canonical_json, loads
from keel.base.digest import CHUNK, hash_bytes
from keel.capture.data import hash_path, restore_path, store_path
from keel.errors import CorruptObject, UserError

FILES = {"b.txt": b"bee\n", "a/z.bin": b"\x00\x01", "a/b/c.csv": b"x,y\n1,2\n", "a-c": b"dash"}


def _write(root: Path, files: dict[str, bytes], order: list[str] | None = None) -> Path:
    for rel in order or list(files):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[rel])
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_file_record(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"content")
    assert hash_path(path) == {"kind": "file", "digest": str(hash_bytes(b"content")), "size": 7}


def test_missing_path(tmp_path: Path) -> None:
    assert hash_path(tmp_path / "nope") == {"kind": "missing"}
    assert store_path(tmp_path / "nope", MemoryBlobSink()) == {"kind": "missing"}


def test_folder_digest_is_the_digest_of_its_sorted_tree(tmp_path: Path) -> None:
    root = _write(tmp_path / "d", FILES)
    record = hash_path(root)
    entries = sorted(
        ({"path": rel, "digest": str(hash_bytes(b)), "size": len(b)} for rel, b in FILES.items()),
        key=lambda e: str(e["path"]),
    )
    assert record == {
        "kind": "dir",
        "digest": str(hash_bytes(canonical_json({"entries": entries}))),
        "size": sum(len(b) for b in FILES.values()),
        "files": len(FILES),
    }


def test_folder_digest_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    first = _write(tmp_path / "one", FILES)
    second = _write(tmp_path / "two", FILES, order=sorted(FILES, reverse=True))
    assert hash_path(first) == hash_path(second)
    assert hash_path(first) == hash_path(first)


@pytest.mark.parametrize("rel", ["b.txt", "a/b/c.csv"])
def test_a_one_byte_change_changes_the_digest(tmp_path: Path, rel: str) -> None:
    root = _write(tmp_path / "d", FILES)
    before = hash_path(root)
    file_before = hash_path(root / rel)
    content = bytearray(FILES[rel])
    content[0] ^= 1
    (root / rel).write_bytes(bytes(content))
    assert hash_path(root)["digest"] != before["digest"]
    assert hash_path(root / rel)["digest"] != file_before["digest"]


def test_symlinks_inside_a_folder_are_skipped(tmp_path: Path) -> None:
    root = _write(tmp_path / "d", FILES)
    plain = hash_path(root)
    os.symlink(root / "b.txt", root / "link.txt")
    os.symlink(root / "a", root / "linkdir")
    assert hash_path(root) == plain


def test_folder_round_trip_through_the_store(tmp_path: Path, sink: MemoryBlobSink) -> None:
    root = _write(tmp_path / "d", FILES)
    record = store_path(root, sink)
    assert record == {**hash_path(root), "stored": True}
    tree = loads(sink.objects[str(record["digest"])])
    assert isinstance(tree, dict) and len(tree["entries"]) == len(FILES)  # type: ignore[arg-type]
    dest = tmp_path / "restored"
    restore_path(record, dest, sink.fetch, sink.copy)
    assert _tree(dest) == FILES


def test_file_round_trip_through_the_store(tmp_path: Path, sink: MemoryBlobSink) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    record = store_path(path, sink)
    assert record == {**hash_path(path), "stored": True}
    restore_path(record, tmp_path / "out" / "model.bin", sink.fetch, sink.copy)
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"weights"


def test_large_file_is_hashed_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = os.urandom(CHUNK) * 2 + b"tail"
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    reads: list[int] = []
    real_open = open

    class CountingFile:
        def __init__(self, fh: object) -> None:
            self._fh = fh

        def readinto(self, buf: memoryview) -> int:
            n: int = self._fh.readinto(buf)  # type: ignore[attr-defined]
            reads.append(n)
            return n

        def __enter__(self) -> CountingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()  # type: ignore[attr-defined]

    monkeypatch.setattr("keel.base.digest.open", lambda *a, **k: CountingFile(real_open(*a, **k)),
                        raising=False)  # fmt: skip
    record = hash_path(path)
    assert record == {"kind": "file", "digest": str(hash_bytes(payload)), "size": len(payload)}
    assert max(reads) <= CHUNK
    assert len([n for n in reads if n]) == 3


def test_hashed_only_record_cannot_be_restored(tmp_path: Path, sink: MemoryBlobSink) -> None:
    root = _write(tmp_path / "d", FILES)
    with pytest.raises(UserError, match="hashed but not stored"):
        restore_path(hash_path(root), tmp_path / "out", sink.fetch, sink.copy)


def test_tampered_tree_object_is_refused(tmp_path: Path, sink: MemoryBlobSink) -> None:
    record = store_path(_write(tmp_path / "d", FILES), sink)
    sink.objects[str(record["digest"])] = b'{"entries":[]}'
    with pytest.raises(CorruptObject):
        restore_path(record, tmp_path / "out", sink.fetch, sink.copy)


def test_tree_with_an_escaping_path_is_refused(tmp_path: Path, sink: MemoryBlobSink) -> None:
    evil = canonical_json({"entries": [{"path": "../evil", "digest": "x", "size": 1}]})
    digest = str(sink.put_bytes(evil))
    record: dict[str, JsonValue] = {
        "kind": "dir", "digest": digest, "size": 1, "files": 1, "stored": True,
    }  # fmt: skip
    with pytest.raises(UserError, match="unsafe path"):
        restore_path(record, tmp_path / "out", sink.fetch, sink.copy)
    assert not (tmp_path / "evil").exists()
