"""The transfer machinery: how the remote is asked what it holds, threads, and interrupts."""

from __future__ import annotations

import threading
import time

import pytest

from keel.base.digest import Digest, hash_bytes
from keel.errors import CorruptObject, ObjectNotFound, StoreUnavailable
from keel.ops.transfer import HEAD_LIMIT, RemoteIndex, each, parallel_map


class _Listing:
    """Stands for a remote holding ``held``; records the requests it is asked."""

    def __init__(self, held: dict[Digest, int]) -> None:
        self.held = held
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _note(self, call: str) -> None:
        with self.lock:
            self.calls.append(call)

    def size(self, digest: Digest) -> int:
        self._note("head")
        if digest not in self.held:
            raise ObjectNotFound(str(digest))
        return self.held[digest]

    def object_sizes(self, fan: str | None = None) -> dict[Digest, int]:
        self._note(f"list {fan or 'all'}")
        return {d: n for d, n in self.held.items() if fan is None or d.hexdigest[:2] == fan}


def _digests(n: int, tag: str = "") -> list[Digest]:
    return [hash_bytes(f"{tag}{i}".encode()) for i in range(n)]


def test_a_few_digests_are_checked_one_by_one() -> None:
    wanted = _digests(HEAD_LIMIT)
    remote = _Listing({d: 1 for d in wanted[:5]})
    found = RemoteIndex(remote, jobs=4).lookup(wanted)  # type: ignore[arg-type]
    assert {d for d, size in found.items() if size is not None} == set(wanted[:5])
    assert remote.calls == ["head"] * HEAD_LIMIT


def test_many_digests_on_a_small_remote_take_one_listing_of_everything() -> None:
    wanted = _digests(500)
    remote = _Listing({d: 2 for d in wanted[::2]})
    index = RemoteIndex(remote, jobs=4)  # type: ignore[arg-type]
    found = index.lookup(wanted)
    assert sum(size is not None for size in found.values()) == 250
    assert len(remote.calls) == 2 and remote.calls[1] == "list all"
    index.lookup(_digests(100, "other"))  # the whole listing answers every later question
    assert len(remote.calls) == 2


def test_many_digests_on_a_huge_remote_list_only_their_fan_out_folders() -> None:
    wanted = _digests(40)
    held = {d: 3 for d in _digests(300_000, "big")}
    remote = _Listing(held)
    found = RemoteIndex(remote, jobs=4).lookup(wanted)  # type: ignore[arg-type]
    assert all(size is None for size in found.values())
    fans = {d.hexdigest[:2] for d in wanted}
    assert sorted(remote.calls) == sorted(f"list {f}" for f in fans)


def test_each_reports_a_corrupt_object_and_goes_on() -> None:
    items = _digests(6)

    def work(d: Digest) -> None:
        if d == items[2]:
            raise CorruptObject(f"object {d} is corrupt")

    seen: list[Digest] = []
    failed = each(items, work, jobs=3, done=seen.append)
    assert set(failed) == {items[2]} and "corrupt" in failed[items[2]]
    assert set(seen) == set(items) - {items[2]}


def test_each_stops_at_an_unavailable_store_and_at_an_interrupt() -> None:
    items = _digests(50)
    started: list[Digest] = []

    def work(d: Digest) -> None:
        started.append(d)
        time.sleep(0.001)
        if d == items[3]:
            raise StoreUnavailable("cannot reach remote 'origin'")

    with pytest.raises(StoreUnavailable):
        each(items, work, jobs=2, done=lambda d: None)
    assert len(started) < len(items)

    class Stop(Exception):
        pass

    def stop(d: Digest) -> None:
        raise Stop

    started.clear()
    with pytest.raises(Stop):
        each(items, lambda d: started.append(d), jobs=2, done=stop)
    assert len(started) <= 5


def test_parallel_map_keeps_the_items_order_and_propagates_the_first_error() -> None:
    assert parallel_map([3, 1, 2], lambda x: x * 10, jobs=2) == {3: 30, 1: 10, 2: 20}
    with pytest.raises(ZeroDivisionError):
        parallel_map([1, 0, 2], lambda x: 1 // x, jobs=2)
