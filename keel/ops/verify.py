"""Re-hash every stored object and check that every ref points at an intact object; or check a
remote: every object its refs reach is there with the right size (and, reading the data, the
right bytes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keel.base.digest import Digest
from keel.errors import CorruptObject, ObjectNotFound
from keel.ops.reachability import (
    HEAD,
    JSON_LIMIT,
    Node,
    StoreExpander,
    looks_like_json,
    references,
    walk,
)
from keel.ops.transfer import parallel_map
from keel.ops.workspace import Workspace
from keel.store.objects.remote import FsspecObjectStore


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """What `keel verify` found. Truthy when everything is intact."""

    checked: int
    corrupt: tuple[str, ...]
    dangling_refs: tuple[tuple[str, str], ...]

    def __bool__(self) -> bool:
        return not self.corrupt and not self.dangling_refs


def _no_progress(done: int, total: int) -> None:
    """Default progress callback: nothing."""


def verify_store(
    ws: Workspace, *, on_progress: Callable[[int, int], None] = _no_progress
) -> VerifyReport:
    """Re-hash every object (streamed) and check refs; nothing is modified."""
    digests = sorted(ws.objects.iter_digests())
    corrupt: list[str] = []
    for n, digest in enumerate(digests, 1):
        if not ws.objects.verify(digest):
            corrupt.append(str(digest))
        on_progress(n, len(digests))
    dangling: list[tuple[str, str]] = []
    present = set(digests)
    for name, digest in ws.objects.list_refs(""):
        if digest not in present:
            dangling.append((name, str(digest)))
    return VerifyReport(checked=len(digests), corrupt=tuple(corrupt), dangling_refs=tuple(dangling))


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteVerifyReport:
    """What `keel verify --remote` found. Truthy when everything is intact.

    ``corrupt`` pairs a digest with what is wrong with it (size or bytes); ``missing`` lists
    objects the remote's refs reach that this store has but the remote lacks; ``unresolved``
    counts digests found in neither (hashes of files that were never stored, usually).
    """

    remote: str
    url: str
    checked: int
    read_data: bool
    corrupt: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]
    dangling_refs: tuple[tuple[str, str], ...]
    unresolved: int

    def __bool__(self) -> bool:
        return not self.corrupt and not self.missing and not self.dangling_refs


def verify_remote(
    ws: Workspace,
    *,
    remote: str | None = None,
    read_data: bool = False,
    on_progress: Callable[[int, int], None] = _no_progress,
) -> RemoteVerifyReport:
    """Check every object a remote's refs reach: present, the right size, and with
    ``read_data`` the right bytes (downloaded and re-hashed). Nothing is written anywhere.

    Records are read from this store when it has them (same digest, same bytes), else from the
    remote (verified). Sizes are compared with this store's copy where there is one.

    Raises:
        keel.errors.UserError: unknown remote.
        keel.errors.StoreUnavailable: the remote cannot be reached or listed.
    """
    from keel.ops.remote import JOBS, LOCAL_ONLY, open_remote

    chosen, store = open_remote(ws, remote)
    names = [n for n in store.ref_names("") if not n.startswith(LOCAL_ONLY)]
    refs = {n: d for n, d in parallel_map(names, store.get_ref, jobs=JOBS).items() if d}
    listing = store.object_sizes()
    check = _RemoteCheck(ws=ws, store=store, listing=listing, read_data=read_data,
                         on_progress=on_progress)  # fmt: skip
    graph = walk(refs.values(), check)
    missing = sorted(str(d) for d in graph.missing if ws.objects.has(d))
    return RemoteVerifyReport(
        remote=chosen.name,
        url=chosen.url,
        checked=len(graph.nodes) + len(check.corrupt),
        read_data=read_data,
        corrupt=tuple(sorted((str(d), why) for d, why in check.corrupt.items())),
        missing=tuple(missing),
        dangling_refs=tuple((n, str(d)) for n, d in refs.items() if d in graph.missing),
        unresolved=len(graph.missing) - len(missing),
    )


class _RemoteCheck:
    """Expands a level of the remote's graph, checking each object on the way."""

    def __init__(
        self,
        *,
        ws: Workspace,
        store: FsspecObjectStore,
        listing: dict[Digest, int],
        read_data: bool,
        on_progress: Callable[[int, int], None],
    ) -> None:
        self.ws = ws
        self.store = store
        self.listing = listing
        self.read_data = read_data
        self.on_progress = on_progress
        self.local = StoreExpander(ws.objects, tolerant=True)
        self.corrupt: dict[Digest, str] = {}
        self.done = 0
        self.jobs = 8

    def __call__(self, batch: Sequence[Digest]) -> dict[Digest, Node | None]:
        out: dict[Digest, Node | None] = {d: None for d in batch if d not in self.listing}
        here = [d for d in batch if d in self.listing]
        for digest, result in parallel_map(here, self._check, jobs=self.jobs).items():
            if isinstance(result, str):
                self.corrupt[digest] = result
            else:
                out[digest] = result
            self.done += 1
            self.on_progress(self.done, len(self.listing))
        return out

    def _check(self, digest: Digest) -> Node | str | None:
        """The node of an intact object, what is wrong with a damaged one, None if it is gone."""
        try:
            return self._node(digest, self.listing[digest])
        except CorruptObject as exc:
            return str(exc)
        except ObjectNotFound:
            return None  # deleted since the listing

    def _node(self, digest: Digest, size: int) -> Node:
        mine = self._local(digest)
        if mine is not None and mine.size != size:
            raise CorruptObject(f"{size} bytes on the remote, {mine.size} in this store")
        if self.read_data and not self.store.verify(digest):
            raise CorruptObject("its bytes do not match the digest")
        if mine is not None:
            return mine
        if size > JSON_LIMIT or not looks_like_json(self.store.read_head(digest, HEAD)):
            return Node(size=size)
        children = references(self.store.get_bytes(digest))  # verified: a bad record is named
        return Node(size=size, children=children or (), json=children is not None)

    def _local(self, digest: Digest) -> Node | None:
        if not self.ws.objects.has(digest):
            return None
        return self.local([digest]).get(digest)
