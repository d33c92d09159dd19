"""Datasets: named, immutable, content-addressed versions of a file or folder, and their lineage.

A version is a record (canonical JSON in the object store) that names its content by digest:
the file's digest, or the digest of the folder's tree object (``keel.capture.data``). Its
``version`` is the first 12 hex digits of that digest, so adding the same content again finds
the same version. The ref ``datasets/<name>/<version>`` points at the record; the newest
``created_at`` among a name's versions is its latest.

Every object a version needs is named by digest in its record (``digest``, ``contract``,
``profile``) or in the tree object it names, so reachability is found by scanning for digests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from keel.base.canonical import JsonValue
from keel.errors import UserError

SCHEMA_VERSION = 1
KIND_TAG = "keel.dataset"
REF_PREFIX = "datasets/"
VERSION_LENGTH = 12
LATEST = "latest"

NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
"""Shape of a dataset name: letters, digits, ``_ . -``; not starting with a dot; 100 at most."""

VERSION = re.compile(r"^[0-9a-f]{12}$")
"""Shape of a dataset version: the first 12 hex digits of its content digest."""

NAME_RULE = "use letters, digits, '_', '.' and '-' (not starting with '.'), at most 100"


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid dataset name, or None when it is."""
    if NAME.match(name) and name not in (".", ".."):
        return None
    looks_like_path = "/" in name or "\\" in name or name.startswith(("~", "."))
    hint = "; a name is not a path (`keel data add NAME PATH` takes the name first)"
    return f"'{name}' is not a valid dataset name: {NAME_RULE}" + (hint if looks_like_path else "")


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """``NAME`` (the latest version) or ``NAME@VERSION`` as written by a user."""

    name: str
    version: str | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        """Parse ``NAME``, ``NAME@latest`` or ``NAME@VERSION``.

        Raises:
            keel.errors.UserError: a bad name or version, saying what a good one looks like.
        """
        problem = ref_problem(text)
        if problem is not None:
            raise UserError(problem)
        name, _, version = text.strip().partition("@")
        return cls(name, None if version in ("", LATEST) else version)


def ref_problem(text: str) -> str | None:
    """Why ``text`` is not ``NAME``, ``NAME@latest`` or ``NAME@VERSION``; None when it is."""
    name, sep, version = text.strip().partition("@")
    problem = name_problem(name)
    if problem is not None:
        return problem
    if sep and version != LATEST and not VERSION.match(version):
        return (
            f"'{version}' is not a version of '{name}': a version is the 12 hex digits "
            f"`keel data ls {name}` shows, or 'latest'"
        )
    return None


def default_path(ref: str) -> str:
    """Where a run sees a dataset input that names no ``path``: ``data/<name>``."""
    return f"data/{ref.strip().partition('@')[0]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetLineage:
    """What a version came from: the run that produced it and that run's dataset inputs."""

    run: str | None = None
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetVersion:
    """One immutable version of a dataset, stored as canonical JSON and named by a ref."""

    name: str
    version: str
    digest: str
    kind: Literal["file", "dir"]
    size: int
    files: int
    created_at: str
    who: str
    why: str | None = None
    source_path: str | None = None
    lineage: DatasetLineage = field(default_factory=DatasetLineage)
    contract: str | None = None
    profile: str | None = None
    breaking: str | None = None
    schema_version: int = SCHEMA_VERSION
    kind_tag: Literal["keel.dataset"] = "keel.dataset"

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def ref_name(self) -> str:
        """The object-store ref that points at this record."""
        return version_ref_name(self.name, self.version)

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON form that is canonicalised and stored."""
        from keel.model.records import to_json_value

        data = to_json_value(self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_json(cls, data: JsonValue) -> DatasetVersion:
        """Read a stored record.

        Raises:
            keel.errors.UserError: the data is not a dataset record this keel can read.
        """
        from keel.model.records import check_header, decode_record

        remedy = "run `keel verify`"
        record = check_header(data, tag_key="kind_tag", tag=KIND_TAG, current=SCHEMA_VERSION,
                              what="dataset record", remedy=remedy)  # fmt: skip
        what = f"dataset record {record.get('name')}@{record.get('version')}"
        edited = "it was not written by this keel version or was edited"
        return decode_record(cls, record, what=what, remedy=edited)


def version_ref_name(name: str, version: str) -> str:
    """``datasets/<name>/<version>``."""
    return f"{REF_PREFIX}{name}/{version}"


def newest_first(versions: Iterable[DatasetVersion]) -> list[DatasetVersion]:
    """Versions sorted newest first (by ``created_at``, then version for a stable order)."""
    return sorted(versions, key=lambda v: (v.created_at, v.version), reverse=True)


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file of a folder version: its digest and size."""

    digest: str
    size: int


def tree_entries(data: JsonValue, *, digest: str) -> dict[str, TreeEntry]:
    """The files of a parsed tree object, by POSIX path.

    Raises:
        keel.errors.UserError: the tree names an unsafe path or is malformed.
    """
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UserError(f"tree object {digest} is malformed; run `keel verify`")
    found: dict[str, TreeEntry] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise UserError(f"tree object {digest} is malformed; run `keel verify`")
        path, file_digest, size = entry.get("path"), entry.get("digest"), entry.get("size")
        rel = PurePosixPath(str(path))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or str(rel) != path:
            raise UserError(f"tree object {digest} names an unsafe path {path!r}")
        if not isinstance(file_digest, str) or not isinstance(size, int):
            raise UserError(f"tree object {digest} is malformed; run `keel verify`")
        found[str(path)] = TreeEntry(file_digest, size)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeChanges:
    """Files that differ between a version and a working copy; falsy when there are none."""

    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    @classmethod
    def between(cls, old: Mapping[str, str], new: Mapping[str, str]) -> TreeChanges:
        """Compare ``{path: digest}`` of a version (``old``) with a working copy (``new``)."""
        return cls(
            changed=tuple(sorted(p for p, d in new.items() if p in old and old[p] != d)),
            added=tuple(sorted(p for p in new if p not in old)),
            removed=tuple(sorted(p for p in old if p not in new)),
        )

    def to_json(self) -> dict[str, JsonValue]:
        """``{"changed": [...], "added": [...], "removed": [...]}``."""
        return {"changed": list(self.changed), "added": list(self.added),
                "removed": list(self.removed)}  # fmt: skip


StatusState = Literal["unchanged", "changed", "missing"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetStatus:
    """Whether the working copy at ``path`` holds ``expected``, and what differs if not.

    ``matches`` is another stored version the working copy holds, when it holds one; ``reads``
    counts the files whose content had to be read to answer (0 when every stat was unchanged).
    """

    expected: DatasetVersion
    latest: bool
    path: str
    state: StatusState
    changes: TreeChanges = field(default_factory=TreeChanges)
    matches: str | None = None
    digest: str | None = None
    reads: int = 0

    @property
    def clean(self) -> bool:
        """True when the working copy holds exactly the expected version."""
        return self.state == "unchanged"

    def to_json(self) -> dict[str, JsonValue]:
        """The ``keel data status --json`` shape."""
        return {
            "name": self.expected.name,
            "version": self.expected.version,
            "latest": self.latest,
            "path": self.path,
            "state": self.state,
            "digest": self.digest,
            "matches": self.matches,
            **self.changes.to_json(),
            "reads": self.reads,
        }


NodeType = Literal["run", "dataset"]
Relation = Literal["input", "output"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageNode:
    """A run (``run:<id>``) or a dataset version (``dataset:<name>@<version>``) in a graph."""

    id: str
    type: NodeType
    label: str
    attrs: dict[str, JsonValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        """``{"id", "type", "label", **attrs}``."""
        return {**self.attrs, "id": self.id, "type": self.type, "label": self.label}


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageEdge:
    """Data flow: a dataset ``input`` of a run, or a dataset a run produced (``output``)."""

    source: str
    target: str
    relation: Relation


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageGraph:
    """Everything upstream and downstream of ``root``; edges always point along the data flow."""

    root: str
    nodes: dict[str, LineageNode]
    edges: tuple[LineageEdge, ...]
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()

    def parents(self, node: str) -> list[str]:
        """Nodes with an edge into ``node``, sorted."""
        return sorted({e.source for e in self.edges if e.target == node})

    def children(self, node: str) -> list[str]:
        """Nodes ``node`` has an edge to, sorted."""
        return sorted({e.target for e in self.edges if e.source == node})

    def to_json(self) -> dict[str, JsonValue]:
        """The ``keel lineage --json`` shape."""
        return {
            "root": self.root,
            "nodes": [self.nodes[k].to_json() for k in sorted(self.nodes)],
            "edges": [
                {"source": e.source, "target": e.target, "relation": e.relation}
                for e in self.edges
            ],
            "upstream": list(self.upstream),
            "downstream": list(self.downstream),
        }
