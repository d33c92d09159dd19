"""Content-addressed object store: the source of truth for manifests, outputs and logs."""

from keel.store.objects.base import ObjectStore
from keel.store.objects.local import LocalObjectStore
from keel.store.objects.memory import MemoryObjectStore

__all__ = ["LocalObjectStore", "MemoryObjectStore", "ObjectStore"]
