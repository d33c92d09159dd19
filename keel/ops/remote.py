"""Push and pull: move refs, and every object they reach, between the store and a remote.

A remote is a named fsspec URL (``remotes:`` in keel.yaml or a profile): ``s3://bucket/prefix``,
or a folder. The default is the remote named ``origin``, else the first declared.

What moves: the selected refs (``runs/<id>``, ``datasets/<name>/<version>``, ``baselines/...``,
``noise/...``; ``--all`` means every ref but the local bookkeeping under ``active/`` and
``pending/``) and every object they reach (:mod:`keel.ops.reachability`).

How it moves, so that an interrupted transfer is finished by running it again:

- Only missing objects move. What the remote holds is learnt with as few requests as the
  question needs (:class:`~keel.ops.transfer.RemoteIndex`): a few digests are checked one by one;
  more are answered by listings, either of the whole store (S3 returns 1,000 names a request)
  or of the fan-out folders involved, whichever the size of the remote makes cheaper.
- Objects are written children first and refs last, each write atomic and create-only, so a
  ref on either side never names an object that is not there, and nothing is ever replaced.
- Downloads are verified by digest before anything is stored: a corrupt remote object is named
  in the report and never stored locally; refs that reach it are not set.
- A ref that exists on both sides moves only forward: it is replaced when the old value is
  among the objects the new one reaches (a newer baseline names the one before it); when the
  destination is ahead nothing changes; otherwise the ref is reported as a conflict.

Pulled runs are marked ``pending/<id>``, so the next command that reads the index (``keel ls``)
ingests them. Progress is reported through a callback; the library never prints.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from keel.base.digest import Digest
from keel.base.suggest import did_you_mean
from keel.errors import CorruptObject, RunRefError, UserError
from keel.ops.reachability import Node, StoreExpander, reachable, references, walk
from keel.ops.transfer import (
    Phase,
    ProgressCallback,
    RefUpdate,
    Remote,
    RemoteIndex,
    Tally,
    TransferProgress,
    TransferReport,
    each,
    no_progress,
    parallel_map,
)
from keel.ops.workspace import Workspace
from keel.store.objects.remote import SMALL, FsspecObjectStore

__all__ = [
    "IMMUTABLE",
    "LOCAL_ONLY",
    "Remote",
    "TransferProgress",
    "TransferReport",
    "configured_remotes",
    "fetch_missing",
    "open_remote",
    "pull",
    "pull_run",
    "push",
    "select_remote",
]


LOCAL_ONLY = ("active/", "pending/")  # bookkeeping of this clone: never sent, never fetched
IMMUTABLE = ("runs/", "datasets/")  # refs that are set once: same name, same value
JOBS = 8  # concurrent requests; moto and S3 both stop gaining past about 8 here
_RUN_ID = re.compile(r"^[0-9a-z]{2,32}$")
_DATASET = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9._-]*)@([A-Za-z0-9_][A-Za-z0-9._-]*)$")
_RUN_TAGS = ("latest", "baseline")


# -- remotes --------------------------------------------------------------------------------


def configured_remotes(ws: Workspace) -> dict[str, str]:
    """Remote name -> URL under the workspace's profile; folders are made absolute."""
    return {n: _absolute(ws.root, u) for n, u in ws.facts.remotes_for(ws.profile).items()}


def select_remote(ws: Workspace, name: str | None = None) -> Remote:
    """The remote called ``name``, or the default one (``origin``, else the first declared).

    Raises:
        keel.errors.UserError: no remote is configured, or none has that name.
    """
    remotes = configured_remotes(ws)
    if not remotes:
        raise UserError(
            f"no remote is configured for profile '{ws.profile}': add "
            "`remotes: {origin: s3://bucket/prefix}` (or a folder path) to keel.yaml"
        )
    if not name:
        name = "origin" if "origin" in remotes else next(iter(remotes))
    elif name not in remotes:
        raise UserError(f"unknown remote '{name}'; " + did_you_mean(name, remotes))
    return Remote(name=name, url=remotes[name])


def open_remote(
    ws: Workspace, name: str | None = None, *, create: bool = False
) -> tuple[Remote, FsspecObjectStore]:
    """Select a remote and open its store (``create``: a missing folder may be created)."""
    remote = select_remote(ws, name)
    if "://" not in remote.url and Path(remote.url).resolve() == ws.store_root:
        raise UserError(f"remote '{remote.name}' is this project's own store ({remote.url})")
    store = FsspecObjectStore(remote.url, name=remote.name, environ=ws.environ, create=create)
    return remote, store


def _absolute(root: Path, url: str) -> str:
    if "://" in url and not url.startswith("file://"):
        return url
    path = Path(url.removeprefix("file://")).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


# -- push -----------------------------------------------------------------------------------


def push(
    ws: Workspace,
    targets: Sequence[str] = (),
    *,
    everything: bool = False,
    remote: str | None = None,
    on_progress: ProgressCallback = no_progress,
    jobs: int = JOBS,
) -> TransferReport:
    """Send refs and the objects they reach to a remote; only what it lacks is sent.

    ``targets`` are run references (``06g0q``, ``train@latest``) and dataset versions
    (``NAME@VERSION``); ``everything`` sends every ref but ``active/`` and ``pending/``.

    Raises:
        keel.errors.UserError: nothing selected, an unknown remote, run or dataset version.
        keel.errors.StoreUnavailable: the remote cannot be reached, read or written.
    """
    chosen, store = open_remote(ws, remote, create=True)
    selected = _local_selection(ws, targets, everything)
    theirs, there = _remote_values(store, selected, everything=everything, jobs=jobs)
    todo = {n: d for n, d in selected.items() if not (_immutable(n) and n in there)}
    expander = StoreExpander(ws.objects, tolerant=True)
    graph = walk(todo.values(), expander)
    have = RemoteIndex(store, jobs=jobs).lookup(list(graph.nodes))
    layers = [[d for d in layer if have[d] is None] for layer in graph.children_first()]
    tally = Tally(Phase.UPLOADING, on_progress)
    tally.grow(sum(map(len, layers)), sum(graph.nodes[d].size for ds in layers for d in ds))
    failed = dict(expander.errors)
    for layer in layers:  # children first: a record never arrives before what it names
        send = [d for d in layer if d not in graph.tainted(failed)] if failed else layer
        failed.update(each(send, lambda d: _upload(ws, store, d, graph.nodes[d].size),
                           jobs=jobs, done=lambda d: tally.step(graph.nodes[d].size)))  # fmt: skip
    refs = RefUpdate(graph=graph, failed=failed, local=ws.objects,
                     unchanged=len(selected) - len(todo))  # fmt: skip
    refs.apply_all([(n, d, theirs.get(n)) for n, d in todo.items()], store, jobs=jobs)
    return refs.report(chosen, tally, present=len(graph.nodes) - tally.total)


def _local_selection(ws: Workspace, targets: Sequence[str], everything: bool) -> dict[str, Digest]:
    if everything:
        return {n: d for n, d in ws.objects.list_refs("") if not n.startswith(LOCAL_ONLY)}
    if not targets:
        raise UserError("say what to send: RUN, NAME@VERSION, or --all")
    out: dict[str, Digest] = {}
    for target in targets:
        name = _local_ref_name(ws, target.strip())
        digest = ws.objects.get_ref(name)
        if digest is None:
            raise UserError(f"{target}: {name} is not in the store at {ws.store_root}")
        out[name] = digest
    return out


def _local_ref_name(ws: Workspace, target: str) -> str:
    dataset = _DATASET.match(target)
    if dataset and dataset.group(2) not in _RUN_TAGS:
        name = f"datasets/{dataset.group(1)}/{dataset.group(2)}"
        if ws.objects.get_ref(name) is None:
            known = [_as_target(n) for n, _ in ws.objects.list_refs("datasets/")]
            raise UserError(f"no dataset version {target} here; " + did_you_mean(target, known))
        return name
    from keel.ops.refs import resolve_ref

    summary = resolve_ref(ws, target)
    if summary.manifest is None:
        raise UserError(
            f"run {summary.id} is still {summary.status.value}; push it once it has ended"
        )
    return f"runs/{summary.id}"


def _remote_values(
    store: FsspecObjectStore, selected: dict[str, Digest], *, everything: bool, jobs: int
) -> tuple[dict[str, Digest], set[str]]:
    """The remote's values of the selected refs, and the names it has.

    With ``everything`` the names come from one listing, and refs that are set once are not
    read: a name that is there was written after everything it reaches, with the same value.
    """
    if everything:
        there = set(store.ref_names("")) & set(selected)
        wanted = [n for n in selected if n in there and not _immutable(n)]
    else:
        there, wanted = set(), list(selected)
    values = {
        n: d for n, d in parallel_map(wanted, store.get_ref, jobs=jobs).items() if d is not None
    }
    return values, there if everything else set()


def _upload(ws: Workspace, store: FsspecObjectStore, digest: Digest, size: int) -> None:
    if size <= SMALL:
        store.put_bytes(ws.objects.get_bytes(digest))  # get_bytes refuses corrupt bytes
        return
    sent = store.put_file(ws.objects.object_path(digest))
    if sent != digest:
        raise CorruptObject(
            f"object {digest} in {ws.store_root} is corrupt (its bytes hash to {sent}); "
            "it was not pushed under its name: run `keel verify`"
        )


# -- pull -----------------------------------------------------------------------------------


def pull(
    ws: Workspace,
    targets: Sequence[str] = (),
    *,
    everything: bool = False,
    remote: str | None = None,
    on_progress: ProgressCallback = no_progress,
    jobs: int = JOBS,
) -> TransferReport:
    """Fetch refs from a remote with every object they reach that is not here yet.

    ``targets`` are run ids (or unique id prefixes) and dataset versions (``NAME@VERSION``) as
    the remote knows them; ``everything`` fetches every ref but ``active/`` and ``pending/``.

    Raises:
        keel.errors.UserError: nothing selected, an unknown remote, run or dataset version.
        keel.errors.StoreUnavailable: the remote cannot be reached or read.
    """
    chosen, store = open_remote(ws, remote)
    selected, unchanged = _remote_selection(ws, store, targets, everything, jobs=jobs)
    fetcher = _Fetcher(ws=ws, store=store, jobs=jobs, on_progress=on_progress)
    graph = walk(selected.values(), fetcher)
    refs = RefUpdate(graph=graph, failed=fetcher.errors, local=ws.objects, unchanged=unchanged)
    for name, digest in selected.items():
        if refs.apply(name, digest, ws.objects.get_ref(name), ws.objects):
            _mark_pending(ws, name, digest)
    return refs.report(chosen, fetcher.tally, present=len(graph.nodes) - fetcher.tally.total)


def fetch_missing(
    ws: Workspace,
    roots: Iterable[Digest],
    *,
    remote: str | None = None,
    on_progress: ProgressCallback = no_progress,
) -> TransferReport | None:
    """Fetch from the (default) remote what ``roots`` reach and this store lacks; no refs move.

    Returns None, without contacting anything, when nothing is missing or no remote is
    configured.

    Raises:
        keel.errors.CorruptObject: an object could not be fetched intact (named).
        keel.errors.StoreUnavailable: the remote cannot be reached or read.
    """
    roots = tuple(roots)
    if not configured_remotes(ws):
        return None
    local = reachable(ws.objects, roots, tolerant=True)
    if not (local.missing or local.failed):
        return None
    chosen, store = open_remote(ws, remote)
    fetcher = _Fetcher(ws=ws, store=store, jobs=JOBS, on_progress=on_progress)
    graph = walk(roots, fetcher)
    if fetcher.errors:
        digest, reason = next(iter(fetcher.errors.items()))
        raise CorruptObject(f"cannot fetch {digest} from remote '{chosen.name}': {reason}")
    return RefUpdate(graph=graph, failed={}, local=ws.objects).report(
        chosen, fetcher.tally, present=len(graph.nodes) - fetcher.tally.total
    )


def pull_run(ws: Workspace, run_id: str, *, remote: str | None = None) -> bool:
    """Fetch the run with this id (or unique id prefix) from the default remote, if any.

    Returns True when it was fetched; False when no remote is configured or it has no such run.
    """
    if not configured_remotes(ws) or not _RUN_ID.match(run_id):
        return False
    try:
        report = pull(ws, [run_id], remote=remote)
    except RunRefError:
        return False
    return bool(report.refs)


def _remote_selection(
    ws: Workspace,
    store: FsspecObjectStore,
    targets: Sequence[str],
    everything: bool,
    *,
    jobs: int,
) -> tuple[dict[str, Digest], int]:
    """The remote refs to fetch, and how many were skipped as already here."""
    if everything:
        names = [n for n in store.ref_names("") if not n.startswith(LOCAL_ONLY)]
    elif targets:
        names = [_remote_ref_name(store, t.strip()) for t in targets]
    else:
        raise UserError("say what to fetch: RUN (an id or id prefix), NAME@VERSION, or --all")
    wanted = [n for n in names if not (_immutable(n) and ws.objects.get_ref(n) is not None)]
    values = parallel_map(wanted, store.get_ref, jobs=jobs)
    return {n: d for n, d in values.items() if d is not None}, len(names) - len(wanted)


def _remote_ref_name(store: FsspecObjectStore, target: str) -> str:
    where = f"remote '{store.name}'"
    dataset = _DATASET.match(target)
    if dataset and dataset.group(2) not in _RUN_TAGS:
        name = f"datasets/{dataset.group(1)}/{dataset.group(2)}"
        if store.get_ref(name) is None:
            known = [_as_target(n) for n in store.ref_names("datasets/")]
            raise UserError(f"{where} has no dataset version {target}; "
                            + did_you_mean(target, known))  # fmt: skip
        return name
    if not _RUN_ID.match(target):
        raise UserError(
            f"cannot fetch {target!r}: name a run by id or id prefix, a dataset version as "
            "NAME@VERSION, or use --all"
        )
    found = store.ref_names(f"runs/{target}")
    exact = f"runs/{target}"
    if exact in found or len(found) == 1:
        return exact if exact in found else found[0]
    if not found:
        raise RunRefError(f"no run matches {target!r} on {where}")
    listed = ", ".join(n.removeprefix("runs/") for n in found[:10])
    raise RunRefError(f"run reference {target!r} is ambiguous on {where}; it matches: {listed}")


def _mark_pending(ws: Workspace, name: str, digest: Digest) -> None:
    """Ask the index to ingest a pulled run (the next `keel ls` does)."""
    if name.startswith("runs/"):
        ws.objects.set_ref("pending/" + name.removeprefix("runs/"), digest)


class _Fetcher:
    """Expands a level of a pull: objects here are read here, the rest are downloaded."""

    def __init__(
        self, *, ws: Workspace, store: FsspecObjectStore, jobs: int, on_progress: ProgressCallback
    ) -> None:
        self.ws = ws
        self.store = store
        self.jobs = jobs
        self.local = StoreExpander(ws.objects, tolerant=True)
        self.index = RemoteIndex(store, jobs=jobs)
        self.tally = Tally(Phase.DOWNLOADING, on_progress)
        self.errors = self.local.errors

    def __call__(self, batch: Sequence[Digest]) -> dict[Digest, Node | None]:
        here = {d for d in batch if self.ws.objects.has(d)}
        out = self.local([d for d in batch if d in here])
        sizes = self.index.lookup([d for d in batch if d not in here])
        todo = [d for d, size in sizes.items() if size is not None]
        out.update({d: None for d, size in sizes.items() if size is None})
        self.tally.grow(len(todo), sum(sizes[d] or 0 for d in todo))
        fetched: dict[Digest, Node] = {}

        def fetch(digest: Digest) -> None:
            fetched[digest] = self._download(digest, sizes[digest] or 0)

        self.errors.update(each(todo, fetch, jobs=self.jobs,
                                 done=lambda d: self.tally.step(sizes[d] or 0)))  # fmt: skip
        out.update(fetched)
        return out

    def _download(self, digest: Digest, size: int) -> Node:
        """Fetch one object (verified before it is stored) and parse what it names."""
        if size <= SMALL:
            data = self.store.get_bytes(digest)
            self.ws.objects.put_bytes(data)
            children = references(data)
            return Node(size=size, children=children or (), json=children is not None)
        folder = self.ws.cache_dir / "transfer"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="get-", suffix=".tmp")
        os.close(fd)
        try:
            self.store.copy_to(digest, Path(name))
            self.ws.objects.put_file(Path(name))
        finally:
            Path(name).unlink(missing_ok=True)
        return Node(size=size)


def _immutable(name: str) -> bool:
    return name.startswith(IMMUTABLE)


def _as_target(name: str) -> str:
    """``datasets/iris/v2`` -> ``iris@v2``."""
    _, dataset, version = name.split("/", 2)
    return f"{dataset}@{version}"
