"""A fully resolved, validated run plan: everything needed to execute and to record a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from keel.base.canonical import JsonValue
from keel.model.params import ResolvedParam


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSpec:
    """A declared input (path relative to the project root); ``store=False`` keeps only a digest.

    ``dataset`` (``NAME`` or ``NAME@VERSION``) makes it a dataset input: before the run, that
    version is put at ``path``. Which version "latest" means is decided when the run starts.
    """

    path: str
    store: bool = True
    dataset: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    """A declared metric with its goal and the tolerance used when comparing runs."""

    name: str
    goal: Literal["max", "min"]
    tolerance: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """The resolved experiment a run will execute. Built by ``keel.resolve``; never mutated."""

    project: str
    project_root: Path
    spec_file: Path
    spec_digest: str
    experiment: str
    experiment_def: dict[str, JsonValue]
    profile: str
    profile_def: dict[str, JsonValue]
    strict: bool
    params: tuple[ResolvedParam, ...]
    seed: int
    seed_source: Literal["experiment", "cli", "default"]
    argv: tuple[str, ...] | None
    entrypoint: str | None
    cwd: Path
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[str, ...] = ()
    metrics_file: str | None = None
    metrics: tuple[MetricSpec, ...] = ()
    env_allow: tuple[str, ...] = ()
    why: str | None = None
    tags: tuple[str, ...] = ()
    timeout_s: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        """A JSON form from which the plan cache rebuilds an equal plan."""
        return {
            "project": self.project,
            "project_root": str(self.project_root),
            "spec_file": str(self.spec_file),
            "spec_digest": self.spec_digest,
            "experiment": self.experiment,
            "experiment_def": self.experiment_def,
            "profile": self.profile,
            "profile_def": self.profile_def,
            "strict": self.strict,
            "params": [[p.name, p.value, p.layer.value] for p in self.params],
            "seed": self.seed,
            "seed_source": self.seed_source,
            "argv": list(self.argv) if self.argv is not None else None,
            "entrypoint": self.entrypoint,
            "cwd": str(self.cwd),
            "inputs": [
                [i.path, i.store] if i.dataset is None else [i.path, i.store, i.dataset]
                for i in self.inputs
            ],
            "outputs": list(self.outputs),
            "metrics_file": self.metrics_file,
            "metrics": [[m.name, m.goal, m.tolerance] for m in self.metrics],
            "env_allow": list(self.env_allow),
            "why": self.why,
            "tags": list(self.tags),
            "timeout_s": self.timeout_s,
            "extra_env": dict(self.extra_env),
        }

    @property
    def dataset_outputs(self) -> tuple[tuple[str, str], ...]:
        """``(path, dataset name)`` of each output declared as a dataset.

        Read from ``experiment_def`` (the experiment as declared), so every copy of a plan —
        cached, or rebuilt from a manifest — carries them. Only `keel run` registers them.
        """
        found: list[tuple[str, str]] = []
        outputs = self.experiment_def.get("outputs")
        for item in outputs if isinstance(outputs, list) else []:
            if isinstance(item, dict):
                path, dataset = item.get("path"), item.get("dataset")
                if isinstance(path, str) and isinstance(dataset, str):
                    found.append((path, dataset))
        return tuple(found)

    @property
    def param_values(self) -> dict[str, JsonValue]:
        """``{name: value}`` of the resolved parameters."""
        return {p.name: p.value for p in self.params}
