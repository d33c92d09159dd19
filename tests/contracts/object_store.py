"""The behaviour every ObjectStore must have. Subclass and provide ``store`` and ``damage``.

``store`` is an empty store; ``damage(digest)`` changes the stored bytes of an object so that
they no longer match its digest (as a disk error or a stray edit would).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.base.digest import CHUNK, Digest, hash_bytes, hash_file
from keel.errors import CorruptObject, ObjectNotFound, UserError
from keel.store.objects.base import ObjectStore

Damage = Callable[[Digest], None]
ABSENT = hash_bytes(b"never stored")


class ObjectStoreContract:
    """Conformance suite for :class:`keel.store.objects.base.ObjectStore`."""

    # -- objects ----------------------------------------------------------------------------

    def test_put_bytes_then_get_bytes_round_trips(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"hello keel")
        assert digest == hash_bytes(b"hello keel")
        assert store.get_bytes(digest) == b"hello keel"
        assert store.has(digest)
        assert store.size(digest) == len(b"hello keel")

    def test_empty_object_round_trips(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"")
        assert store.get_bytes(digest) == b""
        assert store.size(digest) == 0

    def test_put_is_idempotent_for_same_digest(self, store: ObjectStore) -> None:
        first = store.put_bytes(b"same")
        second = store.put_bytes(b"same")
        assert first == second
        assert list(store.iter_digests()) == [first]
        assert store.get_bytes(first) == b"same"

    def test_put_file_streams_a_file_larger_than_the_chunk(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        data = os.urandom(2 * CHUNK + 12345)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        digest = store.put_file(src)
        assert digest == hash_file(src)[0] == hash_bytes(data)
        assert store.size(digest) == len(data)
        assert store.get_bytes(digest) == data
        assert store.verify(digest)

    def test_put_file_and_put_bytes_agree(self, store: ObjectStore, tmp_path: Path) -> None:
        src = tmp_path / "f.txt"
        src.write_bytes(b"content")
        assert store.put_file(src) == store.put_bytes(b"content")
        assert len(list(store.iter_digests())) == 1

    def test_put_file_of_a_missing_file_names_it(self, store: ObjectStore, tmp_path: Path) -> None:
        missing = tmp_path / "nope.bin"
        with pytest.raises(UserError, match=r"nope\.bin"):
            store.put_file(missing)

    def test_has_is_false_for_an_absent_object(self, store: ObjectStore) -> None:
        assert not store.has(ABSENT)

    def test_iter_digests_lists_every_object(self, store: ObjectStore) -> None:
        digests = {store.put_bytes(f"object {i}".encode()) for i in range(20)}
        assert set(store.iter_digests()) == digests

    def test_copy_to_writes_the_object_creating_folders(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        data = os.urandom(CHUNK + 7)
        digest = store.put_bytes(data)
        dest = tmp_path / "out" / "nested" / "copy.bin"
        store.copy_to(digest, dest)
        assert dest.read_bytes() == data
        assert os.listdir(dest.parent) == ["copy.bin"]

    def test_copy_to_replaces_an_existing_file(self, store: ObjectStore, tmp_path: Path) -> None:
        dest = tmp_path / "copy.txt"
        dest.write_bytes(b"old")
        store.copy_to(store.put_bytes(b"new"), dest)
        assert dest.read_bytes() == b"new"

    @pytest.mark.parametrize(
        "read",
        [
            pytest.param(lambda s, d, p: s.get_bytes(d), id="get_bytes"),
            pytest.param(lambda s, d, p: s.copy_to(d, p / "out" / "x"), id="copy_to"),
            pytest.param(lambda s, d, p: s.size(d), id="size"),
            pytest.param(lambda s, d, p: s.verify(d), id="verify"),
        ],
    )
    def test_missing_object_raises_object_not_found_naming_the_digest(
        self,
        store: ObjectStore,
        tmp_path: Path,
        read: Callable[[ObjectStore, Digest, Path], object],
    ) -> None:
        with pytest.raises(ObjectNotFound, match=ABSENT.hexdigest) as info:
            read(store, ABSENT, tmp_path)
        assert isinstance(info.value, KeyError)
        assert not (tmp_path / "out").exists()

    def test_get_bytes_detects_corruption_and_never_returns_bad_bytes(
        self, store: ObjectStore, damage: Damage
    ) -> None:
        digest = store.put_bytes(b"precious result")
        damage(digest)
        with pytest.raises(CorruptObject, match=digest.hexdigest) as info:
            store.get_bytes(digest)
        assert "keel verify" in str(info.value)

    def test_copy_to_detects_corruption_and_leaves_dest_untouched(
        self, store: ObjectStore, damage: Damage, tmp_path: Path
    ) -> None:
        digest = store.put_bytes(os.urandom(CHUNK + 99))
        damage(digest)
        dest = tmp_path / "out" / "dest.bin"
        dest.parent.mkdir()
        dest.write_bytes(b"previous content")
        with pytest.raises(CorruptObject, match="keel verify"):
            store.copy_to(digest, dest)
        assert dest.read_bytes() == b"previous content"
        assert os.listdir(dest.parent) == ["dest.bin"]

    def test_verify_is_true_for_an_intact_object_and_false_for_a_damaged_one(
        self, store: ObjectStore, damage: Damage
    ) -> None:
        intact = store.put_bytes(b"intact")
        damaged = store.put_bytes(b"will be damaged")
        damage(damaged)
        assert store.verify(intact)
        assert not store.verify(damaged)

    def test_a_digest_of_another_algorithm_is_rejected(self, store: ObjectStore) -> None:
        with pytest.raises(UserError, match="not a keel digest"):
            store.has(Digest("sha256", "0" * 64))

    # -- refs -------------------------------------------------------------------------------

    def test_refs_round_trip_and_overwrite(self, store: ObjectStore) -> None:
        a, b = store.put_bytes(b"a"), store.put_bytes(b"b")
        assert store.set_ref("runs/abc", a)
        assert store.get_ref("runs/abc") == a
        assert store.set_ref("runs/abc", b)
        assert store.get_ref("runs/abc") == b

    def test_create_only_refuses_an_existing_ref_and_keeps_it(self, store: ObjectStore) -> None:
        a, b = store.put_bytes(b"a"), store.put_bytes(b"b")
        assert store.set_ref("runs/abc", a, create_only=True)
        assert not store.set_ref("runs/abc", b, create_only=True)
        assert store.get_ref("runs/abc") == a

    def test_create_only_race_has_exactly_one_winner(self, store: ObjectStore) -> None:
        digests = [store.put_bytes(f"writer {i}".encode()) for i in range(8)]
        barrier = threading.Barrier(len(digests))
        results: dict[int, bool] = {}

        def race(i: int) -> None:
            barrier.wait()
            results[i] = store.set_ref("runs/contested", digests[i], create_only=True)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(digests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, won in results.items() if won]
        assert len(winners) == 1
        assert store.get_ref("runs/contested") == digests[winners[0]]

    def test_get_ref_of_a_missing_ref_is_none(self, store: ObjectStore) -> None:
        assert store.get_ref("runs/missing") is None

    def test_delete_ref_removes_it_and_a_missing_ref_is_fine(self, store: ObjectStore) -> None:
        store.set_ref("active/x", store.put_bytes(b"x"))
        store.delete_ref("active/x")
        assert store.get_ref("active/x") is None
        store.delete_ref("active/x")
        store.delete_ref("never/there")

    def test_list_refs_filters_by_prefix_and_sorts_by_name(self, store: ObjectStore) -> None:
        d = store.put_bytes(b"d")
        for name in ["runs/b2", "runs/a1", "pending/a1", "runs/a0/deeper", "runsx", "runs/b1"]:
            store.set_ref(name, d)
        assert [n for n, _ in store.list_refs("runs/")] == [
            "runs/a0/deeper",
            "runs/a1",
            "runs/b1",
            "runs/b2",
        ]
        assert [n for n, _ in store.list_refs("runs/b")] == ["runs/b1", "runs/b2"]
        assert [n for n, _ in store.list_refs("runs")][-1] == "runsx"
        assert len(list(store.list_refs(""))) == 6
        assert list(store.list_refs("nothing/")) == []
        assert all(digest == d for _, digest in store.list_refs(""))

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("../escape", id="parent"),
            pytest.param("runs/../../etc", id="parent-inside"),
            pytest.param("/etc/passwd", id="absolute"),
            pytest.param("runs//x", id="empty-part"),
            pytest.param("runs/x/", id="trailing-slash"),
            pytest.param("runs/.hidden", id="dot-part"),
            pytest.param("runs/a b", id="space"),
            pytest.param("runs\\x", id="backslash"),
            pytest.param("runs/\u00e9", id="non-ascii"),
        ],
    )
    def test_invalid_ref_names_are_rejected_naming_the_name(
        self, store: ObjectStore, name: str
    ) -> None:
        d = store.put_bytes(b"d")
        for call in (
            lambda: store.set_ref(name, d),
            lambda: store.get_ref(name),
            lambda: store.delete_ref(name),
        ):
            with pytest.raises(UserError, match="invalid ref name") as info:
                call()
            assert repr(name) in str(info.value)

    def test_list_refs_rejects_a_prefix_that_leaves_the_refs(self, store: ObjectStore) -> None:
        with pytest.raises(UserError, match="invalid ref name"):
            list(store.list_refs("../"))

    def test_valid_ref_names_with_every_allowed_character(self, store: ObjectStore) -> None:
        d = store.put_bytes(b"d")
        store.set_ref("Runs/a-b_c.d@e/0.9", d)
        assert store.get_ref("Runs/a-b_c.d@e/0.9") == d

    def test_a_ref_cannot_also_be_a_folder_of_refs(self, store: ObjectStore) -> None:
        d = store.put_bytes(b"d")
        store.set_ref("runs/a", d)
        with pytest.raises(UserError, match="clashes"):
            store.set_ref("runs/a/b", d)
        store.set_ref("runs/c/d", d)
        with pytest.raises(UserError, match="clashes"):
            store.set_ref("runs/c", d, create_only=True)
        assert store.get_ref("runs/c") is None
        assert store.get_ref("runs/a/b") is None

    def test_set_ref_rejects_a_malformed_digest(self, store: ObjectStore) -> None:
        with pytest.raises(UserError, match="not a keel digest"):
            store.set_ref("runs/x", Digest("blake3", "xyz"))
