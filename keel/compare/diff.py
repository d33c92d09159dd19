"""What differs between two sealed runs: changes grouped by kind, ranked, and summarised.

Pure: this module reads two :class:`~keel.model.manifest.Manifest` values and facts the caller
gathered (git history in :class:`CodeFacts`, per-input content summaries); it never touches
git, the store or the file system.

Groups come in :class:`ChangeKind` order — code, config, seed, data, environment, hardware,
executor, outputs, metrics, run — and within a group the most telling change first (parameters
before the experiment's definition, the commit before the branch name).

Fields that differ between any two runs are *hidden*, reported only with ``all_fields=True``:
the run's id, created/started/ended times, duration and pid, the log digests, the code
fingerprint, the reproduction record (``reproduces``, ``reproduction``, ``allow_drift``), the
``not_captured`` summary (each facet says so itself), a parameter whose value is the same but
came from another layer, and the argv when the parameters, seed or template explain it.
Values compare as JSON does: ``1`` equals ``1.0`` (a float stored as canonical JSON reads back
as an int) but ``true`` never equals ``1``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keel.base.canonical import JsonValue
from keel.compare.change import (
    BEYOND_TOLERANCE,
    COMMITS_KEY,
    SPEC_KEY,
    UNTRACKED_PREFIX,
    Change,
    ChangeKind,
    Collector,
    ManifestDiff,
    captured_text,
    ordered_keys,
    plural,
    same,
)
from keel.compare.environment import compare_environment, compare_hardware
from keel.model.manifest import FileRecord, Manifest, MetricRecord, ParamValue
from keel.model.params import Layer

__all__ = [
    "Change",
    "ChangeKind",
    "CodeFacts",
    "Commit",
    "ManifestDiff",
    "diff_environment",
    "diff_manifests",
    "same",
]

_HIDDEN_RUN = ("id", "created_at", "started_at", "ended_at", "duration_s", "pid", "reproduces",
               "allow_drift")  # fmt: skip
_SHOWN_RUN = ("status", "exit_code", "signal", "experiment", "project", "host", "user", "why",
              "tags")  # fmt: skip
_EXPERIMENT_ORDER = ("command", "entrypoint", "params", "defaults", "inputs", "outputs",
                     "metrics_file", "metrics", "seed", "env", "tags", "why")  # fmt: skip
_CODE_HANDLED = ("captured", "reason", "commit", "dirty", "diff", "diff_files", "untracked",
                 "changed_during_run", "fingerprint")  # fmt: skip
_CODE_CONTEXT = ("branch", "remote", "repo_root", "project_subdir", "vcs")


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """A commit as listed in a diff: its id and the first line of its message."""

    id: str
    subject: str

    def __str__(self) -> str:
        return f"{self.id[:10]} {self.subject}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeFacts:
    """What the repository says about the commits of runs A and B (gathered by ``keel.ops``).

    ``ahead`` are the commits in B's history but not in A's (``git rev-list A..B``), ``behind``
    the reverse, each newest first and possibly cut short: ``ahead_count`` and
    ``behind_count`` are the full numbers. ``files`` changed between the two commits.
    ``missing`` lists recorded commits the repository no longer has; ``reason`` says why git
    could not be asked at all (no repository, git not installed).
    """

    ahead: tuple[Commit, ...] = ()
    behind: tuple[Commit, ...] = ()
    ahead_count: int = 0
    behind_count: int = 0
    files: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    reason: str | None = None


def diff_manifests(
    a: Manifest,
    b: Manifest,
    *,
    all_fields: bool = False,
    code_facts: CodeFacts | None = None,
    input_facts: Mapping[str, str] | None = None,
) -> ManifestDiff:
    """Every difference between runs ``a`` and ``b``, grouped and ranked.

    Args:
        all_fields: also report the fields that differ between any two runs (ids, times, ...).
        code_facts: what git says about the two commits; without it only the commits are shown.
        input_facts: per input path, a short summary of how its content changed
            (``"+3 rows −1 row"``), used in the note of that input's change.
    """
    sections = [
        _code(a.code, b.code, code_facts),
        _config(a, b),
        _seeds(a, b),
        _files(ChangeKind.DATA, a.inputs, b.inputs, input_facts or {}),
        _environment(a, b),
        _hardware(a, b),
        _executor(a, b),
        _outputs(a, b),
        _metrics(a.metrics, b.metrics),
        _run(a, b),
    ]
    return ManifestDiff(changes=tuple(c for s in sections for c in s.result(all_fields)))


def diff_environment(a: Mapping[str, JsonValue], b: Mapping[str, JsonValue]) -> tuple[Change, ...]:
    """Differences between two recorded ``environment`` facets, most important first.

    Packages are keyed by their normalised name, with a note such as ``package upgraded``;
    other keys are dotted (``python.version``, ``env.OMP_NUM_THREADS``, ``lock.uv.lock``).
    """
    out = Collector(ChangeKind.ENVIRONMENT)
    compare_environment(out, a, b)
    return tuple(out.shown)


# -- code -----------------------------------------------------------------------------------


def _code(a: dict[str, JsonValue], b: dict[str, JsonValue], facts: CodeFacts | None) -> Collector:
    out = Collector(ChangeKind.CODE)
    if not (a.get("captured") and b.get("captured")):
        out.compare("captured", captured_text(a), captured_text(b))
        return out
    _commits(out, a.get("commit"), b.get("commit"), facts)
    out.compare(
        "dirty",
        a.get("dirty"),
        b.get("dirty"),
        note="B has uncommitted changes" if b.get("dirty") else "A has uncommitted changes",
    )
    out.compare("patch", a.get("diff"), b.get("diff"), note=_patch_note(a, b))
    _untracked(out, a.get("untracked"), b.get("untracked"))
    out.compare("changed during run", a.get("changed_during_run"), b.get("changed_during_run"))
    for key in ordered_keys(a, b, first=_CODE_CONTEXT, skip=_CODE_HANDLED):
        out.compare(key.replace("_", " "), a.get(key), b.get(key))
    out.compare("fingerprint", a.get("fingerprint"), b.get("fingerprint"), hidden=True)
    return out


def _commits(out: Collector, a: JsonValue, b: JsonValue, facts: CodeFacts | None) -> None:
    if same(a, b):
        return
    if facts is None or not isinstance(a, str) or not isinstance(b, str):
        out.add("commit", a, b)
        return
    if facts.reason or facts.missing:
        gone = [f"{c[:10]} is not in the repository any more" for c in facts.missing]
        out.add("commit", a, b, note="; ".join(gone) or f"commits not compared: {facts.reason}")
        return
    out.add("commit", a, b, note=_history_note(facts))
    if facts.ahead_count or facts.behind_count:
        total = facts.ahead_count + facts.behind_count
        out.add(COMMITS_KEY, [str(c) for c in facts.behind], [str(c) for c in facts.ahead],
                note=f"{plural(total, 'commit')} between A and B")  # fmt: skip
    if facts.files:
        out.add("files changed", None, list(facts.files),
                note=f"{plural(len(facts.files), 'file')} changed between the commits")  # fmt: skip


def _history_note(facts: CodeFacts) -> str:
    ahead, behind = facts.ahead_count, facts.behind_count
    if ahead and behind:
        return f"histories diverged: B has {ahead} commits A lacks, A has {behind} B lacks"
    if ahead:
        return f"B is {plural(ahead, 'commit')} ahead of A"
    if behind:
        return f"B is {plural(behind, 'commit')} behind A"
    return "different commits with the same history"


def _patch_note(a: Mapping[str, JsonValue], b: Mapping[str, JsonValue]) -> str:
    def files(code: Mapping[str, JsonValue]) -> str:
        names = code.get("diff_files")
        listed = [str(n) for n in names] if isinstance(names, list) else []
        return ", ".join(listed[:5]) + (" …" if len(listed) > 5 else "") if listed else "none"

    return f"uncommitted changes differ (A: {files(a)}; B: {files(b)})"


def _untracked(out: Collector, a: JsonValue, b: JsonValue) -> None:
    def by_path(entries: JsonValue) -> dict[str, JsonValue]:
        found: dict[str, JsonValue] = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                found[str(entry.get("path"))] = entry.get("digest") or entry.get("link")
        return found

    left, right = by_path(a), by_path(b)
    for path in ordered_keys(left, right):
        if path not in right:
            out.add(UNTRACKED_PREFIX + path, left[path], None, note="untracked file only in A")
        elif path not in left:
            out.add(UNTRACKED_PREFIX + path, None, right[path], note="untracked file only in B")
        else:
            out.compare(
                UNTRACKED_PREFIX + path, left[path], right[path], note="untracked file changed"
            )


# -- config and seeds -----------------------------------------------------------------------


def _config(a: Manifest, b: Manifest) -> Collector:
    out = Collector(ChangeKind.CONFIG)
    ca, cb = a.config, b.config
    params_changed = False
    for name in ordered_keys(ca.params, cb.params):
        params_changed |= _param(out, name, ca.params.get(name), cb.params.get(name))
    out.mapping("experiment.", ca.experiment, cb.experiment, first=_EXPERIMENT_ORDER)
    template_changed = not same(ca.experiment.get("command"), cb.experiment.get("command"))
    explained = params_changed or template_changed or a.seeds.root != b.seeds.root
    argv_a: JsonValue = list(ca.command) if ca.command is not None else None
    argv_b: JsonValue = list(cb.command) if cb.command is not None else None
    out.compare("command", argv_a, argv_b, note="the resolved command line", hidden=explained)
    out.compare("entrypoint", ca.entrypoint, cb.entrypoint)
    out.compare("profile", a.run.profile, b.run.profile)
    out.mapping("profile.", ca.profile, cb.profile)
    out.compare(SPEC_KEY, ca.spec_digest, cb.spec_digest, note="keel.yaml was edited")
    out.compare("spec file", ca.spec_file, cb.spec_file)
    out.compare("cwd", ca.cwd, cb.cwd)
    return out


_LAYER_PHRASE = {
    Layer.CATALOG: "the catalog default",
    Layer.EXPERIMENT: "set by the experiment's defaults",
    Layer.PROFILE: "set by the profile",
    Layer.SWEEP: "set by the sweep",
    Layer.CLI: "overridden on the command line",
}
_SAME_LAYER = {
    Layer.CATALOG: "default changed in keel.yaml",
    Layer.EXPERIMENT: "experiment default changed in keel.yaml",
    Layer.PROFILE: "profile value changed",
    Layer.SWEEP: "sweep value differs",
    Layer.CLI: "set differently on the command line",
}


def _param(out: Collector, name: str, a: ParamValue | None, b: ParamValue | None) -> bool:
    """Record a parameter's change with the layers it came from; True when its value changed."""
    key = f"params.{name}"
    if a is None or b is None:
        only, pv = ("A", a) if b is None else ("B", b)
        assert pv is not None
        out.add(key, a.value if a else None, b.value if b else None,
                note=f"only in {only} (source {pv.source})")  # fmt: skip
        return True
    if same(a.value, b.value):
        if a.source != b.source:
            out.add(key, a.value, b.value, note=f"same value; source {a.source} → {b.source}",
                    hidden=True)  # fmt: skip
        return False
    out.add(key, a.value, b.value, note=_source_note(a.source, b.source))
    return True


def _source_note(a: str, b: str) -> str:
    la, lb = _layer(a), _layer(b)
    if a == b:
        return f"{_SAME_LAYER[la] if la else 'value differs'} (source {a} in both)"
    if la is None or lb is None:
        return f"source {a} → {b}"
    if lb.rank >= la.rank:
        return f"source {a} → {b}: {_LAYER_PHRASE[lb]} in B"
    return f"source {a} → {b}: {_LAYER_PHRASE[la]} in A"


def _layer(source: str) -> Layer | None:
    try:
        return Layer(source)
    except ValueError:
        return None


def _seeds(a: Manifest, b: Manifest) -> Collector:
    out = Collector(ChangeKind.SEED)
    sa, sb = a.seeds, b.seeds
    if sa.root != sb.root:
        where = sa.source if sa.source == sb.source else f"{sa.source} → {sb.source}"
        out.add("root", sa.root, sb.root, note=f"root seed (source {where})")
    else:
        out.compare("source", sa.source, sb.source, note="same root seed from another source")
    out.compare("PYTHONHASHSEED", sa.pythonhashseed, sb.pythonhashseed)
    out.compare("PYTHONHASHSEED source", sa.pythonhashseed_source, sb.pythonhashseed_source)
    out.compare(
        "seeded", list(sa.seeded), list(sb.seeded), note="what keel.seed_everything() seeded"
    )
    out.compare("derivation", sa.derivation, sb.derivation)
    return out


# -- data and outputs -----------------------------------------------------------------------


def _files(
    kind: ChangeKind,
    a: Sequence[FileRecord],
    b: Sequence[FileRecord],
    summaries: Mapping[str, str],
    *,
    label: str = "",
) -> Collector:
    out = Collector(kind)
    left, right = {r.path: r for r in a}, {r.path: r for r in b}
    for path in ordered_keys(left, right):
        ra, rb = left.get(path), right.get(path)
        note = _file_note(ra, rb, summaries.get(path))
        if note is not None:
            out.add(label + path, ra.digest if ra else None, rb.digest if rb else None, note=note)
    return out


def _file_note(a: FileRecord | None, b: FileRecord | None, summary: str | None) -> str | None:
    """How a file record changed, or None when it did not."""
    if a is None or b is None:
        return "only in A" if b is None else "only in B"
    notes = []
    if a.kind != b.kind:
        notes.append(f"{a.kind} → {b.kind}")
    elif a.digest != b.digest:
        notes.append(f"content changed: {summary}" if summary else _size_note(a, b))
    during_a, during_b = _during(a), _during(b)
    if during_a != during_b:
        notes.append(f"changed during run in {'B' if during_b else 'A'}")
    return "; ".join(notes) or None


def _size_note(a: FileRecord, b: FileRecord) -> str:
    parts = []
    if a.size is not None and b.size is not None and a.size != b.size:
        parts.append(f"{a.size} → {b.size} bytes")
    if a.files is not None and b.files is not None and a.files != b.files:
        parts.append(f"{a.files} → {b.files} files")
    return "content changed" + (f" ({', '.join(parts)})" if parts else "")


def _during(record: FileRecord) -> bool:
    return bool(getattr(record, "changed_during_run", False))


def _outputs(a: Manifest, b: Manifest) -> Collector:
    out = _files(ChangeKind.OUTPUTS, a.outputs, b.outputs, {})
    artifacts = _files(ChangeKind.OUTPUTS, a.artifacts, b.artifacts, {}, label="artifact ")
    out.shown += artifacts.shown
    return out


def _environment(a: Manifest, b: Manifest) -> Collector:
    out = Collector(ChangeKind.ENVIRONMENT)
    compare_environment(out, a.environment, b.environment)
    out.compare("keel.version", a.run.keel_version, b.run.keel_version)
    return out


def _hardware(a: Manifest, b: Manifest) -> Collector:
    out = Collector(ChangeKind.HARDWARE)
    compare_hardware(out, a.hardware, b.hardware)
    return out


def _executor(a: Manifest, b: Manifest) -> Collector:
    out = Collector(ChangeKind.EXECUTOR)
    ea, eb = a.run.executor, b.run.executor
    out.compare("name", ea.name, eb.name)
    out.compare("parallelism", ea.parallelism, eb.parallelism)
    out.compare("worker", ea.worker, eb.worker)
    return out


# -- metrics and the run itself ----------------------------------------------------------------


def _metrics(a: Mapping[str, MetricRecord], b: Mapping[str, MetricRecord]) -> Collector:
    out = Collector(ChangeKind.METRICS)
    declared = sorted(n for n in a.keys() | b.keys() if (a.get(n) or b[n]).goal is not None)
    for name in [*declared, *ordered_keys(a, b, skip=declared)]:
        ma, mb = a.get(name), b.get(name)
        if ma is None or mb is None:
            out.add(name, ma.value if ma else None, mb.value if mb else None,
                    note="only in A" if mb is None else "only in B")  # fmt: skip
        elif not same(ma.value, mb.value):
            out.add(name, ma.value, mb.value, note=_metric_note(ma, mb))
        elif not same(
            [(p.step, p.value) for p in ma.series], [(p.step, p.value) for p in mb.series]
        ):
            out.add(f"{name} series", len(ma.series), len(mb.series),
                    note="series differ (points logged); the final value is the same")  # fmt: skip
    return out


def _metric_note(a: MetricRecord, b: MetricRecord) -> str:
    delta = b.value - a.value
    # The delta itself is b - a; the note gives what a table column cannot: the relative size.
    parts = [f"{delta / abs(a.value):+.2%}" if a.value else f"{delta:+.6g} from 0"]
    # A is the reference: its declaration decides, B's only when A declared none.
    goal = a.goal or b.goal
    if goal is not None:
        parts.append("better" if (delta > 0) == (goal == "max") else "worse")
    tolerance = a.tolerance if a.tolerance is not None else b.tolerance
    if tolerance is None:
        parts.append("no tolerance declared")
    else:
        verdict = "within tolerance" if abs(delta) <= tolerance else BEYOND_TOLERANCE
        parts.append(f"{verdict} {tolerance:g}")
    return ", ".join(parts)


def _run(a: Manifest, b: Manifest) -> Collector:
    out = Collector(ChangeKind.RUN)
    ra, rb = a.run, b.run
    for key in _SHOWN_RUN:
        out.compare(key, _plain(getattr(ra, key)), _plain(getattr(rb, key)))
    only_a = [f for f in a.flags if f not in b.flags]
    only_b = [f for f in b.flags if f not in a.flags]
    if only_a or only_b:
        out.add("flags", list(only_a), list(only_b), note="flags raised in one run only")
    for key in _HIDDEN_RUN:
        out.compare(key, getattr(ra, key), getattr(rb, key), hidden=True)
    for name in ordered_keys(a.logs, b.logs):
        la, lb = a.logs.get(name), b.logs.get(name)
        out.compare(f"logs.{name}", la.digest if la else None, lb.digest if lb else None,
                    hidden=True)  # fmt: skip
    out.compare("not_captured", dict(a.not_captured), dict(b.not_captured), hidden=True)
    out.compare("reproduction", a.reproduction, b.reproduction, hidden=True)
    return out


def _plain(value: object) -> JsonValue:
    """A run field as JSON: enums by value, tuples as lists."""
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    assert value is None or isinstance(value, str | int | float | bool), value
    return value
