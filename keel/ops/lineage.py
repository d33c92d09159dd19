"""Datasets in runs: the versions a run reads (resolved, put in place, recorded in its manifest),
the versions it writes (outputs registered after it succeeds), and the graph they form.

A run's manifest names each dataset input's version; a version registered from an output names
its run (and that run's dataset inputs) in its lineage. `keel lineage` walks both directions:
upstream from a version to the run that produced it and on to that run's inputs, downstream
from a version to the runs that read it and the versions those produced.

Facts read from run manifests are cached by manifest digest in ``.keel/cache/data/runs.json``
(manifests are immutable, so an entry never goes stale).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue, loads
from keel.base.clock import iso
from keel.base.digest import Digest
from keel.errors import KeelError, Problem, RunRefError, UserError, ValidationError
from keel.model.dataset import (
    VERSION,
    DatasetLineage,
    DatasetVersion,
    LineageEdge,
    LineageGraph,
    LineageNode,
    name_problem,
)
from keel.model.manifest import FileRecord, InputRecord, Manifest
from keel.model.run import RunStatus
from keel.ops.data import check_version, dataset_versions, get_version, version_holding
from keel.ops.datastore import load_version, materialise, publish_version
from keel.ops.workingcopy import DataCache, working_digest

if TYPE_CHECKING:
    from keel.model.plan import RunPlan
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
RUNS_CACHE = "runs.json"

# -- inputs -------------------------------------------------------------------------------------


def resolve_dataset_inputs(ws: Workspace, plan: RunPlan) -> dict[int, DatasetVersion]:
    """The version each dataset input of ``plan`` uses, by input position.

    Raises:
        keel.errors.ValidationError: every unknown dataset or version, at once (the versions
            there are are listed).
    """
    found: dict[int, DatasetVersion] = {}
    problems: list[Problem] = []
    for index, spec in enumerate(plan.inputs):
        if spec.dataset is None:
            continue
        try:
            found[index] = get_version(ws, spec.dataset)
        except UserError as exc:
            key = f"experiments.{plan.experiment}.inputs[{index}]"
            problems.append(Problem(file=plan.spec_file.name, key=key, message=str(exc)))
    if problems:
        raise ValidationError(problems)
    return found


def prepare_dataset_inputs(
    ws: Workspace, plan: RunPlan, found: Mapping[int, DatasetVersion], cache: DataCache
) -> dict[int, InputRecord]:
    """Put each dataset input's version at its path; return its manifest records.

    A working copy already holding the version is left alone (one stat per file when it is
    unchanged); one holding another stored version of the dataset is replaced; anything else is
    never overwritten.

    Raises:
        keel.errors.UserError: a path holds content that is not a version of its dataset.
    """
    records: dict[int, InputRecord] = {}
    for index, version in sorted(found.items()):
        rel = plan.inputs[index].path
        _put_in_place(ws, version, plan.project_root / rel, rel=rel, cache=cache)
        _check_contract(ws, version, plan.project_root / rel)
        records[index] = InputRecord(
            path=rel, kind=version.kind, digest=version.digest, size=version.size,
            files=version.files if version.kind == "dir" else None, stored=True,
            dataset=version.name, version=version.version,
        )  # fmt: skip
    return records


def _put_in_place(
    ws: Workspace, version: DatasetVersion, target: Path, *, rel: str, cache: DataCache
) -> None:
    digest = working_digest(target, cache)
    if digest == version.digest:
        return
    if digest is not None and version_holding(ws, version.name, digest) is None:
        raise UserError(
            f"{rel} holds content that is not a version of dataset '{version.name}', so keel "
            f"will not replace it with {version.ref}: save it as a version with `keel data add "
            f"{version.name} {rel}`, or discard it with `keel data checkout {version.ref} {rel} "
            "--force`"
        )
    materialise(ws, version, target.absolute(), writable=False)


def _check_contract(ws: Workspace, version: DatasetVersion, path: Path) -> None:
    """Check a dataset input against its version's contract before the run reads it.

    The content is the version's own (``_put_in_place`` made sure), so a check that passed for
    this content and contract is remembered in the project cache and not repeated.
    """
    if version.contract is None:
        return
    marker = ws.cache_dir / "datachecks" / f"{version.digest}-{version.contract}"
    if marker.exists():
        return
    from keel.ops.datacheck import check_before_run

    check_before_run(ws, name=version.name, version_record=version, path=path)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # only a cache


def recheck_dataset_input(root: Path, rec: InputRecord, cache: DataCache) -> str | None:
    """The digest of a dataset input's working copy after the run (None when it is gone).

    Raises:
        keel.errors.UserError: the working copy cannot be read.
    """
    return working_digest(root / rec.path, cache)


def untracked_dataset_flags(plan: RunPlan, code: Mapping[str, JsonValue]) -> tuple[str, ...]:
    """A flag for each dataset input that git also sees as untracked files."""
    untracked = code.get("untracked")
    entries = untracked if isinstance(untracked, list) else []
    paths = [str(u.get("path")) for u in entries if isinstance(u, dict)]
    subdir = code.get("project_subdir")
    prefix = "" if subdir in (None, "", ".") else f"{subdir}/"
    flags = []
    for spec in plan.inputs:
        where = prefix + spec.path.rstrip("/")
        if spec.dataset and any(p == where or p.startswith(where + "/") for p in paths):
            flags.append(f"dataset input {spec.path} is not git-ignored, so its files are also "
                         "recorded as untracked code; add it to .gitignore")  # fmt: skip
    return tuple(flags)


# -- outputs ------------------------------------------------------------------------------------


def register_outputs(
    ws: Workspace, plan: RunPlan, manifest: Manifest
) -> tuple[Manifest, tuple[DatasetVersion, ...]]:
    """Make each dataset output of a succeeded run a version whose lineage names the run.

    An output that cannot be registered (not produced, empty, or refused by the dataset's
    contract) is flagged in the manifest; the run itself is not failed.
    """
    if manifest.run.status is not RunStatus.SUCCEEDED or not plan.dataset_outputs:
        return manifest, ()
    lineage = DatasetLineage(
        run=manifest.run.id,
        inputs=tuple(f"{r.dataset}@{r.version}" for r in manifest.inputs if r.dataset),
    )
    outputs = {o.path: o for o in manifest.outputs}
    flags: list[str] = []
    made: list[DatasetVersion] = []
    for rel, name in plan.dataset_outputs:
        try:
            made.append(_register(ws, plan, manifest, rel=rel, name=name, lineage=lineage,
                                  record=outputs.get(rel)))  # fmt: skip
        except UserError as exc:
            flags.append(f"output {rel} was not registered as dataset {name}: {exc}")
    return replace(manifest, flags=(*manifest.flags, *flags)), tuple(made)


def _register(
    ws: Workspace,
    plan: RunPlan,
    manifest: Manifest,
    *,
    rel: str,
    name: str,
    lineage: DatasetLineage,
    record: FileRecord | None,
) -> DatasetVersion:
    if record is None or record.kind == "missing" or not record.digest:
        raise UserError("the run did not produce it")
    if record.kind == "dir" and not record.files:
        raise UserError("it is an empty folder")
    version = Digest.parse(record.digest).hexdigest[:12]
    for existing in dataset_versions(ws, name):
        if existing.version == version:
            return existing
    contract, profile = check_version(
        ws, name=name, path=plan.project_root / rel, contract_file=None, breaking=None
    )
    new = DatasetVersion(
        name=name, version=version, digest=record.digest, kind=record.kind,
        size=record.size or 0, files=record.files or 1, created_at=iso(ws.clock.now()),
        who=manifest.run.user, why=f"output {rel} of run {manifest.run.id}",
        source_path=rel, lineage=lineage, contract=contract, profile=profile,
    )  # fmt: skip
    return publish_version(ws, new).version


# -- the graph ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _RunFacts:
    id: str
    experiment: str
    status: str
    created_at: str
    inputs: tuple[str, ...]


def lineage_graph(ws: Workspace, ref: str) -> LineageGraph:
    """Everything upstream and downstream of a run or a dataset version.

    ``ref`` is ``NAME@VERSION`` or ``NAME@latest`` of a dataset (a dataset wins over an
    experiment of the same name), or any run reference (`keel show` accepts the same).

    Raises:
        keel.errors.UserError: ``ref`` names no run and no dataset version.
    """
    root = _root(ws, ref)
    versions = _all_versions(ws)
    runs = _run_facts(ws)
    edges = _edges(versions.values(), runs.values())
    parents: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}
    for edge in edges:
        parents.setdefault(edge.target, set()).add(edge.source)
        children.setdefault(edge.source, set()).add(edge.target)
    upstream = _reach(root, parents)
    downstream = _reach(root, children)
    keep = {root, *upstream, *downstream}
    return LineageGraph(
        root=root,
        nodes={n: _node(n, versions, runs) for n in keep},
        edges=tuple(
            sorted(
                (e for e in edges if e.source in keep and e.target in keep),
                key=lambda e: (e.source, e.target),
            )
        ),
        upstream=tuple(upstream),
        downstream=tuple(downstream),
    )


def _root(ws: Workspace, ref: str) -> str:
    from keel.ops.refs import resolve_ref

    name, sep, tag = ref.strip().partition("@")
    is_dataset = name_problem(name) is None and bool(dataset_versions(ws, name)) if name else False
    if sep and (VERSION.match(tag) or (is_dataset and tag != "baseline")):
        return f"dataset:{get_version(ws, ref).ref}"
    try:
        return f"run:{resolve_ref(ws, ref).id}"
    except RunRefError:
        if not sep and is_dataset:
            return f"dataset:{get_version(ws, name).ref}"
        raise


def _reach(start: str, links: Mapping[str, set[str]]) -> list[str]:
    """Nodes reachable from ``start`` along ``links``, nearest first (breadth first)."""
    seen = {start}
    order: list[str] = []
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(links.get(node, ())):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
                    following.append(nxt)
        frontier = following
    return order


def _edges(versions: Iterable[DatasetVersion], runs: Iterable[_RunFacts]) -> set[LineageEdge]:
    edges: set[LineageEdge] = set()
    for run in runs:
        for used in run.inputs:
            edges.add(LineageEdge(source=f"dataset:{used}", target=f"run:{run.id}",
                                  relation="input"))  # fmt: skip
    for version in versions:
        if version.lineage.run is None:
            continue
        producer = f"run:{version.lineage.run}"
        edges.add(LineageEdge(source=producer, target=f"dataset:{version.ref}", relation="output"))
        for used in version.lineage.inputs:
            edges.add(LineageEdge(source=f"dataset:{used}", target=producer, relation="input"))
    return edges


def _node(
    node: str, versions: Mapping[str, DatasetVersion], runs: Mapping[str, _RunFacts]
) -> LineageNode:
    kind, _, label = node.partition(":")
    if kind == "run":
        run = runs.get(label)
        attrs: dict[str, JsonValue] = {"missing": True} if run is None else {
            "experiment": run.experiment, "status": run.status, "created_at": run.created_at}
        return LineageNode(id=node, type="run", label=label, attrs=attrs)  # fmt: skip
    found = versions.get(label)
    attrs = {"missing": True} if found is None else {
        "name": found.name, "version": found.version, "kind": found.kind, "size": found.size,
        "files": found.files, "created_at": found.created_at}  # fmt: skip
    return LineageNode(id=node, type="dataset", label=label, attrs=attrs)


def _all_versions(ws: Workspace) -> dict[str, DatasetVersion]:
    found: dict[str, DatasetVersion] = {}
    for _, digest in ws.objects.list_refs("datasets/"):
        version = load_version(ws, digest)
        found[version.ref] = version
    return found


def _run_facts(ws: Workspace) -> dict[str, _RunFacts]:
    """What the graph needs from every sealed run, cached by manifest digest."""
    path = ws.cache_dir / "data" / RUNS_CACHE
    cached = _read_cache(path)
    fresh: dict[str, JsonValue] = {}
    facts: dict[str, _RunFacts] = {}
    for _, digest in ws.objects.list_refs("runs/"):
        entry = cached.get(str(digest))
        if not isinstance(entry, dict):
            entry = _facts_of(ws, digest)
        if entry is None:
            continue
        fresh[str(digest)] = entry
        inputs = entry.get("inputs")
        facts[str(entry["id"])] = _RunFacts(
            id=str(entry["id"]), experiment=str(entry["experiment"]),
            status=str(entry["status"]), created_at=str(entry["created_at"]),
            inputs=tuple(str(i) for i in inputs) if isinstance(inputs, list) else (),
        )  # fmt: skip
    if fresh.keys() != cached.keys():
        try:
            atomic_write_bytes(path, json.dumps(fresh, sort_keys=True).encode(), durable=False)
        except OSError as exc:
            log.debug("run facts not cached in %s: %s", path, exc)
    return facts


def _read_cache(path: Path) -> dict[str, JsonValue]:
    try:
        data = loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _facts_of(ws: Workspace, digest: Digest) -> dict[str, JsonValue] | None:
    """Id, experiment, status, creation time and dataset inputs of a stored manifest."""
    try:
        data = loads(ws.objects.get_bytes(digest))
    except (KeelError, ValueError) as exc:
        log.warning("run manifest %s skipped in the lineage graph: %s", digest, exc)
        return None
    run = data.get("run") if isinstance(data, dict) else None
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(run, dict) or not isinstance(run.get("id"), str):
        log.warning("object %s is not a run manifest; skipped in the lineage graph", digest)
        return None
    used: list[JsonValue] = [
        f"{i['dataset']}@{i['version']}"
        for i in (inputs if isinstance(inputs, list) else [])
        if isinstance(i, dict) and i.get("dataset") and i.get("version")
    ]
    return {"id": run.get("id"), "experiment": run.get("experiment"),
            "status": run.get("status"), "created_at": run.get("created_at"),
            "inputs": used}  # fmt: skip
