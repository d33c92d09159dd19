"""MemoryObjectStore keeps the ObjectStore contract."""

from __future__ import annotations

import pytest

from keel.base.digest import Digest
from keel.store.objects.base import ObjectStore
from keel.store.objects.memory import MemoryObjectStore
from tests.contracts.object_store import Damage, ObjectStoreContract


@pytest.fixture
def store() -> MemoryObjectStore:
    return MemoryObjectStore()


@pytest.fixture
def damage(store: MemoryObjectStore) -> Damage:
    def flip(digest: Digest) -> None:
        data = store._objects[digest]
        store._objects[digest] = bytes([data[0] ^ 1]) + data[1:]

    return flip


class TestMemoryObjectStore(ObjectStoreContract):
    """The contract, in memory."""


def test_each_memory_store_has_its_own_url() -> None:
    a, b = MemoryObjectStore(), MemoryObjectStore()
    assert a.url.startswith("memory://")
    assert a.url != b.url


def test_memory_store_implements_the_port(store: MemoryObjectStore) -> None:
    port: ObjectStore = store
    assert port.url == store.url
