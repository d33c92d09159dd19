"""The pipeline keel.yaml defines, cached so that `keel status` never loads or resolves keel.yaml.

Every experiment is a stage. Building the pipeline resolves each one under the workspace's
profile (nothing is checked on disk: a stage's inputs may not exist until its upstream ran),
digests its resolved configuration, lists what may be its code and builds the graph
(:mod:`keel.ops.pipeline_graph`). The result is kept in ``.keel/cache/pipeline/<key>.json``,
``key`` being the digest of keel's version, the profile, the project folder and keel.yaml's
bytes; each stage's full resolved configuration (needed only to explain a change) sits in a
second file beside it, read on demand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from keel import __version__
from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue
from keel.errors import Problem, ValidationError
from keel.ops.pipeline_graph import Graph, StageDecl, build_graph, norm

if TYPE_CHECKING:
    from keel.model.plan import RunPlan
    from keel.ops.workspace import Workspace

log = logging.getLogger(__name__)
FOLDER = "pipeline"
MAX_ENTRIES = 16
_VERSION = 2


class StageDef(NamedTuple):
    """One stage as its cache key needs it.

    ``candidates`` are the command's arguments that may name project files (relative to
    ``cwd``): whichever exists when the key is computed is code. ``modules`` are the modules it
    runs (``python -m``, an entrypoint); ``deps`` its declared extra code files and folders.

    A NamedTuple, not a frozen dataclass: `keel status` builds 10,000 of them per call, and a
    frozen dataclass sets each field through ``object.__setattr__`` (3x slower, measured).
    """

    name: str
    config: str
    params: dict[str, JsonValue]
    cwd: str
    candidates: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    datasets: tuple[tuple[str, str], ...] = ()  # (path, NAME or NAME@VERSION)
    outputs: tuple[str, ...] = ()
    registers: tuple[str, ...] = ()  # datasets its outputs are registered as
    upstream: tuple[str, ...] = ()

    def to_json(self) -> list[JsonValue]:
        """A compact form (a list: 10,000 stages load faster without repeated keys)."""
        return [
            self.name, self.config, self.params, self.cwd, list(self.candidates),
            list(self.modules), list(self.deps), list(self.inputs),
            [f"{p}\0{ref}" for p, ref in self.datasets], list(self.outputs), list(self.registers),
            list(self.upstream),
        ]  # fmt: skip

    @classmethod
    def from_json(cls, row: list[JsonValue]) -> StageDef:
        """Inverse of :meth:`to_json`; ValueError/TypeError when malformed.

        The file is keel's own (named by a digest): only its shape is checked, so that 10,000
        rows load in a few tens of milliseconds.
        """
        if type(row) is not list or len(row) != len(_FIELDS):
            raise ValueError("not a stage row")
        name, config, params, cwd, *lists = row
        if not all(type(v) is list for v in lists) or not isinstance(params, dict):
            raise TypeError("not a stage row")
        cand, mods, deps, inputs, datasets, outputs, regs, up = map(_texts, lists)
        return cls(str(name), str(config), params, str(cwd), cand, mods, deps, inputs,
                   tuple(map(_pair, datasets)), outputs, regs, up)  # fmt: skip


_FIELDS = ("name", "config", "params", "cwd", "candidates", "modules", "deps", "inputs",
           "datasets", "outputs", "registers", "upstream")  # fmt: skip


def _pair(text: str) -> tuple[str, str]:
    path, sep, ref = text.partition("\0")
    if not sep:
        raise ValueError("not a dataset input")
    return path, ref


def _texts(value: JsonValue) -> tuple[str, ...]:
    # Only the shape is checked: the file is keel's own, and 10,000 rows must load fast.
    return tuple(value) if isinstance(value, list) else ()  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline:
    """Every stage, in topological order, and the graph."""

    key: str
    stages: Mapping[str, StageDef]
    graph: Graph
    configs_file: Path

    def configs(self) -> dict[str, JsonValue]:
        """``{stage: resolved config}`` (read from disk; empty when that file is gone)."""
        try:
            data = json.loads(self.configs_file.read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def load_pipeline(ws: Workspace) -> Pipeline:
    """The workspace's pipeline, from the cache when keel.yaml and the profile are unchanged.

    Raises:
        keel.errors.ValidationError: keel.yaml is invalid, a stage cannot be resolved, outputs
            overlap, or the stages form a cycle (every problem at once).
    """
    key = pipeline_key(ws)
    folder = ws.cache_dir / FOLDER
    cached = _read(folder, key)
    if cached is not None:
        return cached
    stages, decls, configs = _build(ws)
    graph = build_graph(decls, spec_file=ws.facts.spec_file.name)
    by_name = {s.name: _with_upstream(s, graph.upstream[s.name]) for s in stages}
    pipeline = Pipeline(
        key=key,
        stages={n: by_name[n] for n in graph.order},
        graph=graph,
        configs_file=folder / f"{key}.configs.json",
    )
    _write(folder, pipeline, configs=configs)
    return pipeline


def pipeline_key(ws: Workspace) -> str:
    """The cache key of the workspace's pipeline: keel's version, profile, folder, keel.yaml."""
    raw = f"{_VERSION}\0{__version__}\0{ws.profile}\0{ws.root}\0{ws.facts.digest}"
    return key_digest(raw.encode())


def _decl(stage: StageDef) -> StageDecl:
    return StageDecl(
        name=stage.name,
        inputs=stage.inputs,
        outputs=stage.outputs,
        dataset_inputs=tuple(ref.partition("@")[0] for _, ref in stage.datasets),
        dataset_outputs=stage.registers,
    )


def _with_upstream(stage: StageDef, upstream: tuple[str, ...]) -> StageDef:
    return stage._replace(upstream=upstream)


def _build(ws: Workspace) -> tuple[list[StageDef], list[StageDecl], dict[str, JsonValue]]:
    """Resolve every experiment; gather every problem before raising."""
    from keel.resolve.resolve import resolve_run

    project = ws.project
    problems: list[Problem] = []
    stages: list[StageDef] = []
    decls: list[StageDecl] = []
    configs: dict[str, JsonValue] = {}
    for name in project.experiments:
        try:
            plan = resolve_run(project, experiment=name, profile=ws.profile, check_inputs=False)
        except ValidationError as exc:
            problems.extend(
                Problem(file=p.file, line=p.line,
                        key=f"stage {name}" + (f" ({p.key})" if p.key else ""),
                        message=p.message, hint=p.hint)
                for p in exc.problems
            )  # fmt: skip
            continue
        config = resolved_config(plan)
        configs[name] = config
        stages.append(_stage(plan, config))
        decls.append(_decl(stages[-1]))
    if problems:
        raise ValidationError(problems)
    return stages, decls, configs


def resolved_config(plan: RunPlan) -> dict[str, JsonValue]:
    """What a stage's config component covers: everything resolved that can change its result.

    The command (parameters filled in) or entrypoint, the parameter values (not the layer they
    came from), the seed, the declared inputs and outputs, the environment allow-list, the
    variables the run is given (parameters and the profile's ``env``) and the working folder.
    Not keel.yaml's bytes: an edit that resolves to the same values leaves it unchanged.
    """
    outputs = plan.experiment_def.get("outputs")
    return {
        "command": list(plan.argv) if plan.argv is not None else None,
        "entrypoint": plan.entrypoint,
        "params": plan.param_values,
        "seed": plan.seed,
        "inputs": [[i.path, i.store, i.dataset] for i in plan.inputs],
        "outputs": outputs if isinstance(outputs, list) else [],
        "env": list(plan.env_allow),
        "extra_env": dict(sorted(plan.extra_env.items())),
        "cwd": os.path.relpath(plan.cwd, plan.project_root),
    }


def key_digest(data: bytes) -> str:
    """A short digest for keel's own keys (not content addresses): 160-bit BLAKE2b, in hex.

    The stdlib's BLAKE2b costs a third of keel's content digest on short texts, which counts
    when `keel status` computes 10,000 keys.
    """
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def config_digest(config: Mapping[str, JsonValue]) -> str:
    """The config component: digest of the resolved config's sorted JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return key_digest(text.encode())


def _stage(plan: RunPlan, config: dict[str, JsonValue]) -> StageDef:
    deps = plan.experiment_def.get("deps")
    excluded = {norm(i.path) for i in plan.inputs} | {norm(o) for o in plan.outputs}
    cwd = os.path.relpath(plan.cwd, plan.project_root)
    return StageDef(
        name=plan.experiment,
        config=config_digest(config),
        params=plan.param_values,
        cwd=cwd,
        candidates=_candidates(plan.argv or (), cwd=cwd, excluded=excluded),
        modules=_modules(plan.argv or (), plan.entrypoint),
        deps=tuple(norm(str(d)) for d in deps) if isinstance(deps, list) else (),
        inputs=tuple(norm(i.path) for i in plan.inputs if i.dataset is None),
        datasets=tuple((norm(i.path), i.dataset) for i in plan.inputs if i.dataset is not None),
        outputs=tuple(norm(o) for o in plan.outputs),
        registers=tuple(name for _, name in plan.dataset_outputs),
    )


def _candidates(argv: tuple[str, ...], *, cwd: str, excluded: set[str]) -> tuple[str, ...]:
    """Arguments that may name a project file: not options, numbers, inputs or outputs."""
    found: list[str] = []
    for index, token in enumerate(argv):
        if index > 0 and argv[index - 1] == "-m":
            continue  # a module name, listed by _modules
        text = token.partition("=")[2] if token.startswith("-") else token
        if not text or text.startswith("-") or _is_number(text) or os.path.isabs(text):
            continue
        rel = norm(os.path.join(cwd, text))
        if rel.startswith("..") or any(rel == e or rel.startswith(e + "/") for e in excluded):
            continue
        found.append(text)
    return tuple(dict.fromkeys(found))


def _modules(argv: tuple[str, ...], entrypoint: str | None) -> tuple[str, ...]:
    found = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "-m"]
    if entrypoint is not None:
        found.append(entrypoint.partition(":")[0])
    return tuple(dict.fromkeys(found))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read(folder: Path, key: str) -> Pipeline | None:
    try:
        data = json.loads((folder / f"{key}.json").read_bytes())
        stages = [StageDef.from_json(row) for row in data["stages"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    graph = Graph(
        order=tuple(s.name for s in stages), upstream={s.name: s.upstream for s in stages}
    )
    return Pipeline(
        key=key,
        stages={s.name: s for s in stages},
        graph=graph,
        configs_file=folder / f"{key}.configs.json",
    )


def _write(folder: Path, pipeline: Pipeline, *, configs: dict[str, JsonValue]) -> None:
    """Write both files (configs first: a main file is never without its configs)."""
    rows = [pipeline.stages[name].to_json() for name in pipeline.graph.order]
    try:
        atomic_write_bytes(pipeline.configs_file, json.dumps(configs).encode(), durable=False)
        atomic_write_bytes(
            folder / f"{pipeline.key}.json",
            json.dumps({"version": _VERSION, "stages": rows}).encode(),
            durable=False,
        )
        _prune(folder)
    except OSError as exc:  # a read-only project still works, only slower
        log.debug("pipeline cache not written to %s: %s", folder, exc)


def _prune(folder: Path) -> None:
    mains = [
        e
        for e in os.scandir(folder)
        if not e.name.endswith(".configs.json") and not e.name.startswith("status-")
    ]
    if len(mains) <= MAX_ENTRIES:
        return
    mains.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in mains[: len(mains) - MAX_ENTRIES]:
        for path in (entry.path, entry.path.removesuffix(".json") + ".configs.json"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
