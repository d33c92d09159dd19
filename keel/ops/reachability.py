"""What objects a set of digests reaches: one generic walk for push, pull, verify and gc.

keel never needs to know what an object is to find what it names. Every object that is JSON
(manifests, dataset records, trees, baselines, noise profiles, ...) is parsed, and every string
in it that contains ``blake3:<64 hex>`` names another object; the walk follows those. An object
that is not JSON, or is larger than :data:`JSON_LIMIT`, is a leaf.

Some digests named in JSON are hashes of things that were never stored (the digest of
keel.yaml, an input that was only hashed). The walk reports them as ``missing``: they are not an
error by themselves, and only the caller knows whether a missing digest matters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keel.base.digest import ALGORITHM, Digest
from keel.errors import ObjectNotFound, StoreError
from keel.store.objects.base import ObjectStore

JSON_LIMIT = 16 << 20  # objects above this are never parsed: they are data, not records
DIGEST = re.compile(rf"{ALGORITHM}:([0-9a-f]{{64}})")


@dataclass(frozen=True, slots=True)
class Node:
    """One stored object: its size and the digests its JSON names (none for a leaf)."""

    size: int
    children: tuple[Digest, ...] = ()
    json: bool = False


Expand = Callable[[Sequence[Digest]], Mapping[Digest, Node | None]]
"""Look up a batch of digests: a Node for each stored one, None for one that is not stored.

A digest left out of the answer failed (the expander records why); the walk does not follow it.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """The objects a walk reached and how they link.

    ``nodes`` are the stored objects reached; ``missing`` the digests named but not stored;
    ``failed`` those that could not be read, so their children are unknown.
    """

    roots: tuple[Digest, ...]
    nodes: Mapping[Digest, Node]
    missing: frozenset[Digest] = frozenset()
    failed: frozenset[Digest] = frozenset()

    @property
    def size(self) -> int:
        """Total bytes of the stored objects reached."""
        return sum(node.size for node in self.nodes.values())

    def children_first(self) -> list[list[Digest]]:
        """The stored objects in layers: each object comes after every object it names.

        Writing layer by layer keeps the invariant that a stored record's children are stored.
        """
        height: dict[Digest, int] = {}
        for root in self.roots:
            self._heights(root, height)
        layers: list[list[Digest]] = [[] for _ in range(max(height.values(), default=-1) + 1)]
        for digest, h in sorted(height.items()):
            layers[h].append(digest)
        return layers

    def _heights(self, root: Digest, height: dict[Digest, int]) -> None:
        """Longest distance to a leaf for every node below ``root`` (iterative post-order)."""
        stack: list[tuple[Digest, bool]] = [(root, False)]
        while stack:
            digest, expanded = stack.pop()
            node = self.nodes.get(digest)
            if node is None or digest in height:
                continue
            if expanded:
                below = [height.get(c, -1) for c in node.children if c in self.nodes]
                height[digest] = 1 + max(below, default=-1)
                continue
            stack.append((digest, True))
            stack.extend((c, False) for c in node.children if c not in height)

    def tainted(self, bad: Iterable[Digest]) -> set[Digest]:
        """Every reached digest whose objects include one of ``bad`` (``bad`` included)."""
        parents: dict[Digest, list[Digest]] = {}
        for digest, node in self.nodes.items():
            for child in node.children:
                parents.setdefault(child, []).append(digest)
        out = set(bad)
        todo = list(out)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in out:
                    out.add(parent)
                    todo.append(parent)
        return out

    def closure(self, root: Digest) -> set[Digest]:
        """The digests reachable from ``root`` (``root`` included), stored or not."""
        seen = {root}
        todo = [root]
        while todo:
            node = self.nodes.get(todo.pop())
            for child in node.children if node else ():
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen


HEAD = 64  # bytes enough to tell a JSON record from data


def looks_like_json(head: bytes) -> bool:
    """True when an object starting with ``head`` may be a JSON record (an object or array)."""
    return head[:HEAD].lstrip().startswith((b"{", b"["))


def references(data: bytes) -> tuple[Digest, ...] | None:
    """The digests a JSON object names, in order of first mention; None when it is not JSON."""
    if not looks_like_json(data) or len(data) > JSON_LIMIT:
        return None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    found: dict[Digest, None] = {}
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            for match in DIGEST.finditer(item):
                found.setdefault(Digest(ALGORITHM, match.group(1)))
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return tuple(found)


def digests_in(text: str) -> tuple[Digest, ...]:
    """Every digest written anywhere in ``text`` (a lock file, a note), in order."""
    seen = dict.fromkeys(Digest(ALGORITHM, m.group(1)) for m in DIGEST.finditer(text))
    return tuple(seen)


def walk(roots: Iterable[Digest], expand: Expand) -> Graph:
    """Breadth-first from ``roots``, one ``expand`` call per level (so levels can be batched)."""
    start = tuple(dict.fromkeys(roots))
    nodes: dict[Digest, Node] = {}
    missing: set[Digest] = set()
    failed: set[Digest] = set()
    level = list(start)
    while level:
        answer = expand(level)
        following: dict[Digest, None] = {}
        for digest in level:
            if digest not in answer:
                failed.add(digest)
                continue
            node = answer[digest]
            if node is None:
                missing.add(digest)
                continue
            nodes[digest] = node
            for child in node.children:
                if child not in nodes and child not in missing and child not in failed:
                    following.setdefault(child)
        level = [d for d in following if d not in nodes]
    return Graph(roots=start, nodes=nodes, missing=frozenset(missing), failed=frozenset(failed))


@dataclass(slots=True)
class StoreExpander:
    """Expand digests by reading a store: JSON objects are read in full (verified) and parsed.

    Objects that cannot be read (corrupt, unreadable) are left out of the answer and recorded in
    ``errors`` when ``tolerant``; otherwise the error propagates (gc must fail closed).
    """

    store: ObjectStore
    tolerant: bool = False
    errors: dict[Digest, str] = field(default_factory=dict)

    def __call__(self, batch: Sequence[Digest]) -> dict[Digest, Node | None]:
        """Look up each digest of ``batch`` in the store."""
        out: dict[Digest, Node | None] = {}
        for digest in batch:
            try:
                out[digest] = self.node(digest)
            except ObjectNotFound:
                out[digest] = None
            except StoreError as exc:
                if not self.tolerant:
                    raise
                self.errors[digest] = str(exc)
        return out

    def node(self, digest: Digest) -> Node:
        """The node of one stored object (raises ObjectNotFound when it is not stored)."""
        size = self.store.size(digest)
        if size > JSON_LIMIT:
            return Node(size=size)
        children = references(self.store.get_bytes(digest))
        return Node(size=size, children=children or (), json=children is not None)


def reachable(store: ObjectStore, roots: Iterable[Digest], *, tolerant: bool = False) -> Graph:
    """Walk ``store`` from ``roots``.

    Raises:
        keel.errors.CorruptObject: an object's bytes do not match its digest (unless
            ``tolerant``: it is then in ``failed``).
        keel.errors.StoreUnavailable: the store cannot be read (unless ``tolerant``).
    """
    return walk(roots, StoreExpander(store, tolerant=tolerant))
