"""Layer catalog defaults, experiment defaults, profile values and ``-p`` overrides into a RunPlan.

Precedence, lowest first: catalog < experiment ``defaults`` < profile ``params`` < sweep < ``-p``.
Every resolved parameter records the layer its value came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from keel.base.canonical import JsonValue
from keel.base.suggest import did_you_mean
from keel.errors import InvalidParameter, Problem, ValidationError
from keel.model.params import Layer, ParamKind, ResolvedParam
from keel.model.plan import InputSpec, MetricSpec, RunPlan
from keel.resolve.overrides import parse_override
from keel.resolve.render import param_env, render_argv
from keel.spec.catalog import BadValue, check_value
from keel.spec.experiment import ExperimentSpec
from keel.spec.profile import DEFAULT_PROFILE, ProfileSpec
from keel.spec.project import ProjectSpec

_NO_OVERRIDES: Mapping[str, str] = MappingProxyType({})
_NO_VALUES: Mapping[str, JsonValue] = MappingProxyType({})

_Layered = dict[str, tuple[JsonValue, Layer]]


def resolve_run(
    project: ProjectSpec,
    *,
    experiment: str,
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, str] = _NO_OVERRIDES,
    seed: int | None = None,
    why: str | None = None,
    check_inputs: bool = True,
    sweep_values: Mapping[str, JsonValue] = _NO_VALUES,
) -> RunPlan:
    """Build the plan for one run of ``experiment`` under ``profile``.

    Args:
        project: the loaded keel.yaml.
        experiment: the experiment's name.
        profile: the profile's name (``dev`` always exists).
        overrides: ``-p name=value`` pairs, values as typed on the command line.
        seed: the run seed, overriding the experiment's.
        why: the run's rationale, overriding the experiment's.
        check_inputs: also check that declared inputs (and ``cwd``) exist. Dataset inputs are
            not checked here: the run puts them in place, after checking their versions exist.
        sweep_values: the values a sweep gives this trial, already typed; recorded with the
            ``sweep`` layer. A parameter cannot be both swept and fixed by ``overrides``.

    Raises:
        keel.errors.ValidationError: unknown experiment or profile, or missing inputs.
        keel.errors.InvalidParameter: any ``-p`` or swept name or value is wrong (all listed
            at once).
    """
    exp = _experiment(project, experiment)
    prof = _profile(project, profile)
    params, param_problems = _resolve_params(
        project,
        experiment=experiment,
        exp=exp,
        profile=prof,
        overrides=overrides,
        sweep_values=sweep_values,
        seed=seed,
    )
    file_problems = _missing_paths(project, experiment, exp) if check_inputs else []
    if param_problems:
        raise InvalidParameter(param_problems + file_problems)
    if file_problems:
        raise ValidationError(file_problems)
    return _plan(
        project,
        experiment=experiment,
        exp=exp,
        profile=profile,
        prof=prof,
        params=params,
        seed=seed,
        why=why,
    )


def _plan(
    project: ProjectSpec,
    *,
    experiment: str,
    exp: ExperimentSpec,
    profile: str,
    prof: ProfileSpec,
    params: tuple[ResolvedParam, ...],
    seed: int | None,
    why: str | None,
) -> RunPlan:
    """Assemble the plan from values that were all checked."""
    root_seed, seed_source = _seed(exp, seed)
    values = {p.name: p.value for p in params}
    return RunPlan(
        project=project.name,
        project_root=project.root,
        spec_file=project.file,
        spec_digest=project.digest,
        experiment=experiment,
        experiment_def=exp.model_dump(mode="json", exclude_none=True),
        profile=profile,
        profile_def=prof.model_dump(mode="json", exclude_none=True),
        strict=prof.strict,
        params=params,
        seed=root_seed,
        seed_source=seed_source,
        argv=None if exp.command is None else render_argv(exp.command, values, seed=root_seed),
        entrypoint=exp.entrypoint,
        cwd=(project.root / exp.cwd).resolve() if exp.cwd else project.root,
        inputs=tuple(InputSpec(path=i.path, store=i.store, dataset=i.dataset) for i in exp.inputs),
        outputs=exp.output_paths,
        metrics_file=exp.metrics_file,
        metrics=tuple(
            MetricSpec(name=name, goal=m.goal, tolerance=m.tolerance)
            for name, m in exp.metrics.items()
        ),
        env_allow=exp.env,
        why=why if why is not None else exp.why,
        tags=exp.tags,
        timeout_s=exp.timeout,
        extra_env={**param_env(values), **prof.env},
    )


def catalog_rows(
    project: ProjectSpec, experiment: str | None = None, *, profile: str | None = None
) -> list[dict[str, JsonValue]]:
    """One row per parameter, for ``keel params``: name, type, default, range, unit, doc.

    With ``experiment``, only its parameters, each with the default it gets (under
    ``profile`` when given) and a ``source`` naming the layer that default came from.

    Raises:
        keel.errors.ValidationError: unknown experiment or profile.
    """
    layered: _Layered = {}
    names: tuple[str, ...] = tuple(project.params)
    if experiment is not None:
        exp = _experiment(project, experiment)
        chosen = _profile(project, profile) if profile is not None else None
        layered = _layered(project, exp, chosen)
        names = exp.param_names
    rows: list[dict[str, JsonValue]] = []
    for name in names:
        spec = project.params[name]
        row: dict[str, JsonValue] = {"name": name, "type": _type_text(spec.type, spec.items)}
        row["default"] = layered[name][0] if name in layered else spec.default
        if experiment is not None:
            row["source"] = layered[name][1].value if name in layered else None
        row.update(range=spec.range_text() or None, unit=spec.unit, doc=spec.doc)
        rows.append(row)
    return rows


def _type_text(kind: ParamKind, items: ParamKind | None) -> str:
    return f"list[{items.value}]" if kind is ParamKind.LIST and items else kind.value


def _experiment(project: ProjectSpec, name: str) -> ExperimentSpec:
    found = project.experiments.get(name)
    if found is None:
        hint = did_you_mean(name, project.experiments)
        problem = Problem(file=project.file.name, message=f"unknown experiment '{name}'", hint=hint)
        raise ValidationError([problem])
    return found


def _profile(project: ProjectSpec, name: str) -> ProfileSpec:
    found = project.profiles.get(name)
    if found is None:
        hint = did_you_mean(name, project.profiles)
        problem = Problem(file=project.file.name, message=f"unknown profile '{name}'", hint=hint)
        raise ValidationError([problem])
    return found


def _layered(project: ProjectSpec, exp: ExperimentSpec, profile: ProfileSpec | None) -> _Layered:
    """Values from keel.yaml alone: catalog, then experiment defaults, then the profile."""
    layered: _Layered = {}
    for name in exp.param_names:
        default = project.params[name].default
        if default is not None:
            layered[name] = (default, Layer.CATALOG)
        if name in exp.defaults:
            layered[name] = (exp.defaults[name], Layer.EXPERIMENT)
        if profile is not None and name in profile.params:
            layered[name] = (profile.params[name], Layer.PROFILE)
    return layered


def _resolve_params(
    project: ProjectSpec,
    *,
    experiment: str,
    exp: ExperimentSpec,
    profile: ProfileSpec,
    overrides: Mapping[str, str],
    sweep_values: Mapping[str, JsonValue],
    seed: int | None,
) -> tuple[tuple[ResolvedParam, ...], list[Problem]]:
    layered = _layered(project, exp, profile)
    problems = _swept(
        project, experiment=experiment, exp=exp, values=sweep_values, fixed=overrides, into=layered
    )
    for name, text in overrides.items():
        if name not in exp.param_names:
            problems.append(unknown_param(project, name, experiment, exp))
            continue
        value = parse_override(project.params[name], text)
        if isinstance(value, BadValue):
            problems.append(Problem(key=f"-p {name}", message=value.message, hint=value.hint))
        else:
            layered[name] = (value, Layer.CLI)
    for name in exp.param_names:
        if name not in layered and name not in overrides:
            problems.append(
                Problem(
                    key=f"-p {name}",
                    message=f"parameter '{name}' has no value: the catalog gives it no default",
                    hint=f"give one with -p {name}=VALUE, or a default in {project.file.name}",
                )
            )
    if seed is not None and seed < 0:
        problems.append(Problem(key="--seed", message=f"must be at least 0, got {seed}"))
    params = tuple(
        ResolvedParam(name=name, value=layered[name][0], layer=layered[name][1])
        for name in exp.param_names
        if name in layered
    )
    return params, problems


def _swept(
    project: ProjectSpec,
    *,
    experiment: str,
    exp: ExperimentSpec,
    values: Mapping[str, JsonValue],
    fixed: Mapping[str, str],
    into: _Layered,
) -> list[Problem]:
    """Check a sweep's typed values and layer them into ``into``; return the problems."""
    problems: list[Problem] = []
    for name, value in values.items():
        if name not in exp.param_names:
            problems.append(unknown_param(project, name, experiment, exp))
        elif name in fixed:
            problems.append(
                Problem(
                    key=f"-p {name}",
                    message=f"parameter '{name}' is both swept and fixed to {fixed[name]!r}",
                    hint=f"give -p {name} once: one value to fix it, several to sweep it",
                )
            )
        else:
            checked = check_value(project.params[name], value)
            if isinstance(checked, BadValue):
                problems.append(
                    Problem(key=f"-p {name}", message=checked.message, hint=checked.hint)
                )
            else:
                into[name] = (checked, Layer.SWEEP)
    return problems


def unknown_param(
    project: ProjectSpec, name: str, experiment: str, exp: ExperimentSpec
) -> Problem:
    """The problem for ``-p name`` when ``experiment`` has no parameter ``name``."""
    if name in project.params:
        return Problem(
            key=f"-p {name}",
            message=f"parameter '{name}' is not used by experiment '{experiment}'",
            hint=f"add it to experiments.{experiment}.params in {project.file.name}",
        )
    return Problem(
        key=f"-p {name}",
        message=f"unknown parameter '{name}' for experiment '{experiment}'",
        hint=did_you_mean(name, exp.param_names),
    )


def _missing_paths(project: ProjectSpec, name: str, exp: ExperimentSpec) -> list[Problem]:
    problems: list[Problem] = []
    for index, item in enumerate(exp.inputs):
        if item.dataset is None and not (project.root / item.path).exists():
            problems.append(
                project.problem(
                    ("experiments", name, "inputs", index),
                    f"input '{item.path}' does not exist in {project.root}",
                    hint="create it, or fix the path",
                )
            )
    if exp.cwd is not None and not (project.root / exp.cwd).is_dir():
        problems.append(
            project.problem(
                ("experiments", name, "cwd"), f"folder '{exp.cwd}' does not exist in {project.root}"
            )
        )
    return problems


def _seed(
    exp: ExperimentSpec, seed: int | None
) -> tuple[int, Literal["experiment", "cli", "default"]]:
    if seed is not None:
        return seed, "cli"
    if exp.seed is not None:
        return exp.seed, "experiment"
    return 0, "default"
