"""The stat cache reuses digests only while a file's stat is unchanged, and never a racy one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from keel.base.digest import hash_file
from keel.capture.data import hash_path
from keel.ops.statcache import CACHE_FILE, RACY_NS, StatCache, digest_path


def _later() -> int:
    """A clock far enough ahead that files written now are not racy."""
    return time.time_ns() + 10 * RACY_NS


def _file(tmp_path: Path, text: str = "a,b\n1,2\n") -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_a_digest_is_reused_while_the_stat_is_unchanged(tmp_path: Path) -> None:
    path = _file(tmp_path)
    cache = StatCache.open(tmp_path / "cache", now_ns=_later)
    assert cache.digest(path) == hash_file(path)
    cache.save()
    again = StatCache.open(tmp_path / "cache", now_ns=_later)
    assert again.digest(path) == hash_file(path)
    assert (again.hits, again.misses) == (1, 0)


def test_a_same_size_rewrite_with_the_old_mtime_is_caught_by_ctime(tmp_path: Path) -> None:
    path = _file(tmp_path, "1,2\n")
    cache = StatCache.open(tmp_path / "cache", now_ns=_later)
    cache.digest(path)
    before = os.stat(path)
    time.sleep(0.02)  # let the ctime clock tick
    path.write_text("3,4\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert cache.digest(path) == hash_file(path)
    assert cache.misses == 2


def test_a_recently_changed_file_is_hashed_but_not_remembered(tmp_path: Path) -> None:
    path = _file(tmp_path)
    cache = StatCache.open(tmp_path / "cache")  # the real clock: the file is seconds old at most
    cache.digest(path)
    cache.digest(path)
    assert cache.misses == 2
    cache.save()
    assert not (tmp_path / "cache" / CACHE_FILE).exists()


@pytest.mark.parametrize("content", [b"not json", b'{"version": 1, "entries": {"x": [1]}}', b"[]"])
def test_a_damaged_cache_file_is_ignored(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / CACHE_FILE).write_bytes(content)
    path = _file(tmp_path)
    cache = StatCache.open(tmp_path / "cache", now_ns=_later)
    assert cache.digest(path) == hash_file(path)


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    path = _file(tmp_path)
    cache = StatCache.open(tmp_path / "cache", now_ns=_later)
    cache.digest(path)
    cache._entries[str(path)][5] = "not-a-digest"
    assert cache.digest(path) == hash_file(path) and cache.misses == 2


def test_digest_path_equals_hash_path_for_files_folders_and_missing_paths(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("bb")
    cache = StatCache.open(tmp_path / "cache", now_ns=_later)
    for path in (folder, folder / "a.txt", tmp_path / "missing"):
        assert digest_path(path, cache) == hash_path(path)
    assert cache.hits == 1  # a.txt, hashed while walking the folder
    assert digest_path(folder, cache) == hash_path(folder)
    assert cache.hits == 1  # the folder's answer is remembered for this process
    cache.save()
    again = StatCache.open(tmp_path / "cache", now_ns=_later)
    assert digest_path(folder, again) == hash_path(folder) and again.hits == 2
