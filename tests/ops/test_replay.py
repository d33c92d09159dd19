"""Where sandboxes are made: the user's choice first, memory only when it has room."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keel.ops.replay import SHM, sandbox_parent


def test_keel_sandbox_dir_wins(tmp_path: Path) -> None:
    assert sandbox_parent({"KEEL_SANDBOX_DIR": str(tmp_path)}, need_bytes=0) == tmp_path


def test_a_tmpdir_chosen_by_the_user_is_respected(tmp_path: Path) -> None:
    assert sandbox_parent({"TMPDIR": str(tmp_path)}, need_bytes=0) is None


@pytest.mark.skipif(not os.path.isdir(SHM), reason="no /dev/shm here")
def test_memory_folder_is_used_only_when_it_has_room() -> None:
    free = os.statvfs(SHM).f_bavail * os.statvfs(SHM).f_frsize
    assert sandbox_parent({}, need_bytes=free) is None
    if free > 2 << 30:
        assert sandbox_parent({}, need_bytes=0) == Path(SHM)
