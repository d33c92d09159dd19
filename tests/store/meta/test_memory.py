"""MemoryRunIndex keeps the RunIndex contract."""

from __future__ import annotations

import pytest

from keel.store.meta.base import RunIndex
from keel.store.meta.memory import MemoryRunIndex
from tests.contracts.run_index import RunIndexContract


@pytest.fixture
def index() -> MemoryRunIndex:
    return MemoryRunIndex()


class TestMemoryRunIndex(RunIndexContract):
    """The contract, in memory."""


def test_memory_index_implements_the_port(index: MemoryRunIndex) -> None:
    port: RunIndex = index
    port.close()
