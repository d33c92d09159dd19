"""`keel diff A B`: resolve two runs, gather what git and the store can add, compare them.

The comparison itself is pure (:mod:`keel.compare.diff`); this use case brings the facts it
cannot fetch: the commits between the two recorded commits and the files they changed (git, in
the recorded repository), and how a changed text or CSV input differs (the stored objects).

Speed: `keel diff` is meant to answer in well under 200 ms. Opening the metadata index costs
~0.45 s here (SQLAlchemy and the schema check) and validating two manifests with pydantic
~0.15 s, so a run id or unique id prefix is looked up in the object store's refs, and a sealed
manifest is decoded straight into the model types (:mod:`keel.ops.decode`).
``EXPERIMENT@latest``, ``@latest`` and any reference the refs cannot settle (no match, several)
go through :func:`keel.ops.refs.resolve_ref`, so its answers and one-line errors are unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath

from keel.base.canonical import JsonValue, loads
from keel.base.digest import Digest
from keel.compare.change import plural
from keel.compare.diff import CodeFacts, ManifestDiff, diff_manifests
from keel.errors import CorruptObject, ObjectNotFound, UserError
from keel.model.manifest import FileRecord, Manifest
from keel.model.run import RunSummary
from keel.ops.refs import resolve_ref
from keel.ops.sync import load_manifest, summarize
from keel.ops.workspace import Workspace
from keel.store.objects.base import is_ref_name

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 5 * 2**20  # inputs above this are compared by digest only
_TABULAR = (".csv", ".tsv")
_LISTED = 3  # file names listed per kind of change in a folder summary


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDiff:
    """Two runs and what differs between them."""

    a: RunSummary
    b: RunSummary
    diff: ManifestDiff
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        """``{"a", "b", "summary", "warnings", "changes": [{kind, key, a, b, note}]}``."""
        return {
            "a": self.a.id,
            "b": self.b.id,
            "summary": self.diff.summary(),
            "warnings": list(self.warnings),
            "changes": [c.to_json() for c in self.diff.changes],
        }


def diff_runs(ws: Workspace, ref_a: str, ref_b: str, *, all_fields: bool = False) -> RunDiff:
    """Compare the runs ``ref_a`` and ``ref_b`` name (ids, unique prefixes, ``EXP@latest``).

    Raises:
        keel.errors.RunRefError: a reference matches no run, or several (they are listed).
    """
    (summary_a, a), (summary_b, b) = _load(ws, ref_a), _load(ws, ref_b)
    warnings = _warnings(a, b)
    inputs, store_warnings = _input_facts(ws, a, b)
    changes = diff_manifests(
        a, b, all_fields=all_fields, code_facts=_code_facts(ws, a, b), input_facts=inputs
    )
    return RunDiff(a=summary_a, b=summary_b, diff=changes, warnings=(*warnings, *store_warnings))


def _load(ws: Workspace, ref: str) -> tuple[RunSummary, Manifest]:
    digest = _sealed_by_refs(ws, ref)
    if digest is not None:
        manifest = load_manifest(ws, digest)
        return summarize(manifest, str(digest)), manifest
    summary = resolve_ref(ws, ref)
    found = summary.manifest or ws.objects.get_ref(f"active/{summary.id}")
    found = found or ws.objects.get_ref(f"runs/{summary.id}")
    if found is None:
        raise UserError(
            f"run {summary.id} is in the index but its record is not in the store at "
            f"{ws.objects.url}; run `keel reindex` to bring the index in line with the store"
        )
    return summary, load_manifest(ws, Digest.parse(str(found)))


def _sealed_by_refs(ws: Workspace, ref: str) -> Digest | None:
    """The manifest of the one sealed run ``ref`` names by id or prefix, else None.

    None also when a running run matches too: the index decides then, as it does for `show`.
    """
    ref = ref.strip()
    if len(ref) < 2 or "/" in ref or "@" in ref or not is_ref_name(f"runs/{ref}"):
        return None
    exact = ws.objects.get_ref(f"runs/{ref}")
    if exact is not None:
        return exact
    sealed = list(ws.objects.list_refs(f"runs/{ref}"))
    running = {n.removeprefix("active/") for n, _ in ws.objects.list_refs(f"active/{ref}")}
    running -= {n.removeprefix("runs/") for n, _ in sealed}
    if len(sealed) == 1 and not running:
        return sealed[0][1]
    return None


def _warnings(a: Manifest, b: Manifest) -> list[str]:
    found = []
    if a.run.id == b.run.id:
        found.append(f"A and B are the same run ({a.run.id})")
    if a.run.experiment != b.run.experiment:
        found.append(
            f"the runs are of different experiments (A: {a.run.experiment}, "
            f"B: {b.run.experiment}); their definitions differ as well as their results"
        )
    if a.run.project != b.run.project:
        found.append(f"the runs are of different projects ({a.run.project}, {b.run.project})")
    for label, m in (("A", a), ("B", b)):
        if not m.run.status.finished:
            found.append(f"run {label} ({m.run.id}) is still {m.run.status}: its record is partial")
    return found


def _code_facts(ws: Workspace, a: Manifest, b: Manifest) -> CodeFacts | None:
    commit_a, commit_b = a.code.get("commit"), b.code.get("commit")
    if not isinstance(commit_a, str) or not isinstance(commit_b, str) or commit_a == commit_b:
        return None
    from keel.ops.gitfacts import code_facts  # subprocess is imported only when git is asked

    roots = [str(m.code.get("repo_root")) for m in (a, b) if m.code.get("repo_root")]
    return code_facts(commit_a, commit_b, roots=[*roots, str(ws.root)])


# -- how a changed input differs, from the stored objects --------------------------------------


def _input_facts(ws: Workspace, a: Manifest, b: Manifest) -> tuple[dict[str, str], list[str]]:
    """Per changed, stored input: a short summary of the change; and warnings about the store."""
    before = {r.path: r for r in a.inputs}
    summaries: dict[str, str] = {}
    warnings: list[str] = []
    for rb in b.inputs:
        ra = before.get(rb.path)
        if ra is None or ra.digest == rb.digest or ra.kind != rb.kind:
            continue
        if not (ra.stored and rb.stored and ra.digest and rb.digest):
            continue
        try:
            summary = _summarise(ws, ra, rb)
        except ObjectNotFound:
            log.debug("input %s: stored content not available", rb.path, exc_info=True)
            continue
        except CorruptObject as exc:
            warnings.append(f"input {rb.path}: {exc}")
            continue
        if summary:
            summaries[rb.path] = summary
    return summaries, warnings


def _summarise(ws: Workspace, a: FileRecord, b: FileRecord) -> str | None:
    assert a.digest is not None and b.digest is not None
    da, db = Digest.parse(a.digest), Digest.parse(b.digest)
    if a.kind == "dir":
        return _tree_summary(ws.objects.get_bytes(da), ws.objects.get_bytes(db))
    sizes = (a.size, b.size)
    if any(s is None or s > MAX_TEXT_BYTES for s in sizes):
        return None
    return text_summary(a.path, ws.objects.get_bytes(da), ws.objects.get_bytes(db))


def text_summary(path: str, a: bytes, b: bytes) -> str | None:
    """``+3 rows −1 row, 1 row changed (2 → 4 rows)`` for CSV/TSV, lines for other text.

    None for content that is not UTF-8 text.
    """
    try:
        text_a, text_b = a.decode("utf-8"), b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in text_a or "\0" in text_b:
        return None
    lines_a, lines_b = text_a.splitlines(), text_b.splitlines()
    tabular = PurePosixPath(path).suffix.lower() in _TABULAR
    unit = "row" if tabular else "line"
    parts = []
    if tabular and lines_a and lines_b:
        if lines_a[0] != lines_b[0]:
            parts.append("header changed")
        lines_a, lines_b = lines_a[1:], lines_b[1:]
    added, removed, changed = _line_changes(lines_a, lines_b)
    signed = []
    if added:
        signed.append(f"+{plural(added, unit)}")
    if removed:
        signed.append(f"−{plural(removed, unit)}")
    if signed:
        parts.append(" ".join(signed))
    if changed:
        parts.append(f"{plural(changed, unit)} changed")
    if not parts:
        return "same lines; whitespace or line endings differ"
    return f"{', '.join(parts)} ({len(lines_a)} → {plural(len(lines_b), unit)})"


def _line_changes(a: list[str], b: list[str]) -> tuple[int, int, int]:
    """Lines added, removed and changed in place (a replaced block pairs lines off)."""
    import difflib

    added = removed = changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag == "replace":
            paired = min(i2 - i1, j2 - j1)
            changed += paired
            removed += i2 - i1 - paired
            added += j2 - j1 - paired
        elif tag == "delete":
            removed += i2 - i1
        elif tag == "insert":
            added += j2 - j1
    return added, removed, changed


def _tree_summary(a: bytes, b: bytes) -> str | None:
    """Which files of a stored folder changed, from its two tree objects."""
    left, right = _tree_entries(a), _tree_entries(b)
    kinds = {
        "changed": [p for p in left if p in right and left[p] != right[p]],
        "added": [p for p in right if p not in left],
        "removed": [p for p in left if p not in right],
    }
    parts = []
    for kind, paths in kinds.items():
        if paths:
            names = ", ".join(sorted(paths)[:_LISTED]) + (" …" if len(paths) > _LISTED else "")
            parts.append(f"{plural(len(paths), 'file')} {kind} ({names})")
    return "; ".join(parts) or None


def _tree_entries(data: bytes) -> dict[str, str]:
    tree = loads(data)
    entries = tree.get("entries") if isinstance(tree, dict) else None
    found: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            found[str(entry.get("path"))] = str(entry.get("digest"))
    return found
