"""Drift: what changed between a reference state (keel.lock, a baseline run) and the current one.

Pure: compares two :class:`~keel.spec.lockfile.ExperimentState` values and names every change by
kind — config (a param's value and the layer it came from, the seed, the command), environment
(packages, Python, platform, lock files, thread-count variables), data (input content) and code.
Code changes are information: they are reported but never make a report ``drifted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keel.base.canonical import JsonValue
from keel.compare.drift_facets import (
    Change,
    Drift,
    DriftKind,
    code_drift,
    config_drift,
    data_drift,
    environment_drift,
)
from keel.model.manifest import Manifest
from keel.spec.lockfile import CodeState, EnvironmentState, ExperimentState, InputState

__all__ = [
    "Change",
    "Drift",
    "DriftKind",
    "DriftReport",
    "compare_states",
    "experiment_added",
    "experiment_removed",
    "state_from_manifest",
    "uncompared",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    """Drift of some experiments from their references; falsy when nothing blocking drifted.

    ``against`` is ``lock``, ``baseline`` or ``run``; ``references`` maps each checked
    experiment to what it was compared with (``keel.lock``, ``baseline 06g...``); ``notes`` say
    what could not be compared and why.
    """

    against: str
    references: dict[str, str]
    items: tuple[Drift, ...] = ()
    notes: tuple[str, ...] = ()
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        counts = {k.value: 0 for k in DriftKind}
        for item in self.items:
            counts[item.kind.value] += 1
        object.__setattr__(self, "counts", counts)

    @property
    def drifted(self) -> bool:
        """True when any config, environment or data drift was found."""
        return any(item.blocking for item in self.items)

    def __bool__(self) -> bool:
        return self.drifted

    @property
    def exit_code(self) -> int:
        """0 when nothing blocking drifted, 1 otherwise."""
        return 1 if self.drifted else 0

    def for_experiment(self, name: str) -> tuple[Drift, ...]:
        """The drift found for one experiment."""
        return tuple(item for item in self.items if item.experiment == name)

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` form."""
        return {
            "against": self.against,
            "drifted": self.drifted,
            "exit_code": self.exit_code,
            "experiments": list(sorted(self.references)),
            "references": dict(sorted(self.references.items())),
            "counts": dict(self.counts),
            "drift": [item.to_json() for item in self.items],
            "notes": list(self.notes),
        }


def compare_states(reference: ExperimentState, current: ExperimentState) -> tuple[Drift, ...]:
    """Every difference from ``reference`` to ``current``: config, environment, data, code."""
    name = current.name
    return (
        *config_drift(reference, current),
        *environment_drift(name, reference.environment, current.environment),
        *data_drift(name, reference.inputs, current.inputs),
        *code_drift(name, reference.code, current.code),
    )


def uncompared(
    reference: ExperimentState, current: ExperimentState, *, what: str
) -> tuple[str, ...]:
    """Notes on what could not be compared because one side did not capture it."""
    notes = []
    if reference.environment is None:
        notes.append(f"{current.name}: the environment of {what} was not captured; not compared")
    if current.code is not None and current.code.reason is not None:
        notes.append(f"code state not read ({current.code.reason})")
    return tuple(notes)


def experiment_removed(name: str, reference: str) -> Drift:
    """``name`` is in the reference but keel.yaml no longer declares it."""
    return Drift(
        experiment=name,
        kind=DriftKind.CONFIG,
        subject="experiment",
        change=Change.REMOVED,
        message=f"experiment {name} is in {reference} but no longer in keel.yaml",
    )


def experiment_added(name: str, reference: str) -> Drift:
    """keel.yaml declares ``name`` but the reference does not have it."""
    return Drift(
        experiment=name,
        kind=DriftKind.CONFIG,
        subject="experiment",
        change=Change.ADDED,
        message=f"experiment {name} is not in {reference}: lock it with `keel lock {name}`",
    )


def state_from_manifest(manifest: Manifest) -> ExperimentState:
    """What a run recorded, in the shape keel.lock holds, for comparison with the present."""
    exp = manifest.config.experiment
    command, entrypoint = exp.get("command"), exp.get("entrypoint")
    return ExperimentState(
        name=manifest.run.experiment,
        profile=manifest.run.profile,
        params=dict(manifest.config.params),
        seed=manifest.seeds.root,
        command=command if isinstance(command, str) else None,
        entrypoint=entrypoint if isinstance(entrypoint, str) else None,
        inputs=tuple(
            InputState(
                path=i.path,
                kind=i.kind,
                digest=i.digest,
                size=i.size,
                files=i.files,
                dataset=i.dataset,
                version=i.version,
            )
            for i in manifest.inputs
        ),
        environment=EnvironmentState.from_facet(manifest.environment),
        code=CodeState.from_facet(manifest.code),
    )
