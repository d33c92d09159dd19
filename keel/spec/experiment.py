"""Experiments (blueprints): what to run, over which parameters, reading and writing what."""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, JsonValue, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

from keel.base.suggest import closest, did_you_mean
from keel.model.dataset import default_path, name_problem, ref_problem
from keel.spec.catalog import BadValue, ParamSpec, check_value
from keel.spec.problems import KeyPath, Problems, describe_value
from keel.spec.schema import ENV_NAME, NAME, Section, Seq, SpecModel
from keel.spec.template import SEED, parse_template

ENTRYPOINT = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
"""Shape of ``package.module:function``."""


def _input_shorthand(value: object) -> object:
    if isinstance(value, str):
        return {"path": value}
    if isinstance(value, dict) and "path" not in value and isinstance(value.get("dataset"), str):
        return {**value, "path": default_path(value["dataset"])}
    return value


class InputDecl(SpecModel):
    """An input path, relative to the project root; ``store: false`` records only its digest.

    With ``dataset`` (``NAME`` for the latest version, or ``NAME@VERSION``), that dataset
    version is put at ``path`` before the run; ``path`` defaults to ``data/<NAME>``.
    """

    path: str
    store: bool = True
    dataset: str | None = None


class OutputDecl(SpecModel):
    """An output registered as a new version of ``dataset`` after each successful run."""

    path: str
    dataset: str


def _output_entry(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """A path (kept as text) or a ``{path, dataset}`` mapping, each validated on its own."""
    if isinstance(value, dict):
        return OutputDecl.model_validate(value)
    if isinstance(value, str):
        return handler(value)
    raise PydanticCustomError(
        "keel",
        "expected a path, or a mapping with path and dataset; got {got}",
        {"got": describe_value(value)},
    )


class MetricDecl(SpecModel):
    """A metric's goal and the tolerance used when comparing runs."""

    goal: Literal["max", "min"]
    tolerance: float = Field(default=0.0, ge=0)


class ExperimentSpec(SpecModel):
    """One experiment as declared. After loading, ``params`` always lists the names it uses."""

    command: str | None = None
    entrypoint: str | None = None
    params: Seq[str] | None = None
    defaults: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    seed: int | None = Field(default=None, ge=0)
    inputs: Seq[Annotated[InputDecl, BeforeValidator(_input_shorthand)]] = ()
    outputs: Seq[Annotated[OutputDecl | str, WrapValidator(_output_entry)]] = ()
    metrics_file: str | None = None
    metrics: Section[dict[str, MetricDecl]] = Field(default_factory=dict)
    env: Seq[str] = ()
    why: str | None = None
    tags: Seq[str] = ()
    timeout: float | None = Field(default=None, gt=0)
    cwd: str | None = None
    deps: Seq[str] | None = None  # extra code files or folders a pipeline stage's key covers

    @property
    def param_names(self) -> tuple[str, ...]:
        """The catalog parameters this experiment uses."""
        return self.params or ()

    @property
    def output_paths(self) -> tuple[str, ...]:
        """The declared output paths, datasets or not."""
        return tuple(o if isinstance(o, str) else o.path for o in self.outputs)


def path_problem(text: str) -> str | None:
    """Why ``text`` is not a relative path inside the project, or None when it is."""
    if not text:
        return "the path is empty"
    windows = PureWindowsPath(text)
    if text.startswith("~") or PurePosixPath(text).is_absolute() or windows.drive:
        return f"'{text}' is absolute; give paths relative to the project root"
    depth = 0
    for part in PurePosixPath(text.replace("\\", "/")).parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            return f"'{text}' leads outside the project"
    return None


def check_experiments(
    raw: Mapping[str, JsonValue],
    *,
    catalog: Mapping[str, ParamSpec],
    declared: Collection[str],
    problems: Problems,
) -> dict[str, ExperimentSpec]:
    """Validate the ``experiments`` section against the catalog; return the valid ones.

    Args:
        raw: the section as plain data.
        catalog: the valid catalog entries.
        declared: every name in the catalog, valid or not (so a broken entry is reported once).
        problems: where problems are recorded.
    """
    experiments: dict[str, ExperimentSpec] = {}
    for name, entry in raw.items():
        path: KeyPath = ("experiments", name)
        exp = problems.validate(ExperimentSpec, entry, path=path)
        if exp is None:
            continue
        if not NAME.match(name):
            problems.add(path, f"'{name}' is not a valid experiment name", hint=_NAME_HINT)
        exp = _check_params(exp, path=path, catalog=catalog, declared=declared, problems=problems)
        _check_runnable(
            exp, path, given=entry if isinstance(entry, dict) else {}, problems=problems
        )
        _check_paths(exp, path, problems)
        _check_datasets(exp, path, problems)
        _check_env_names(exp.env, (*path, "env"), problems)
        experiments[name] = exp
    return experiments


_NAME_HINT = "use letters, digits, _ and -"
_RUNNABLE = ("command", "entrypoint")


def _check_params(
    exp: ExperimentSpec,
    *,
    path: KeyPath,
    catalog: Mapping[str, ParamSpec],
    declared: Collection[str],
    problems: Problems,
) -> ExperimentSpec:
    """Check ``params`` and ``defaults``; return the experiment with both normalised."""
    names = tuple(declared) if exp.params is None else exp.params
    for index, name in enumerate(names):
        if name not in declared:
            hint = did_you_mean(name, declared)
            problems.add((*path, "params", index), f"'{name}' is not in the catalog", hint=hint)
        elif name in names[:index]:
            problems.add((*path, "params", index), f"'{name}' is listed twice")
    defaults: dict[str, JsonValue] = {}
    for name, value in exp.defaults.items():
        key = (*path, "defaults", name)
        if name not in names:
            problems.add(
                key,
                f"'{name}' is not a parameter of this experiment",
                hint=did_you_mean(name, names),
            )
        elif name in catalog:
            checked = check_value(catalog[name], value)
            if isinstance(checked, BadValue):
                problems.add(key, checked.message, hint=checked.hint)
            else:
                defaults[name] = checked
    return exp.model_copy(update={"params": names, "defaults": defaults})


def _check_runnable(
    exp: ExperimentSpec, path: KeyPath, *, given: Collection[str], problems: Problems
) -> None:
    """Exactly one of command and entrypoint, each well formed (``given``: the keys written)."""
    if "command" in given and "entrypoint" in given:
        problems.add(path, "give either command or entrypoint, not both")
    elif "command" not in given and "entrypoint" not in given:
        # A misspelt key is already reported with the right name: say it only once.
        if not any(closest(key, _RUNNABLE) for key in given):
            problems.add(path, "an experiment needs a command or an entrypoint")
    elif exp.entrypoint is not None and not ENTRYPOINT.match(exp.entrypoint):
        problems.add(
            (*path, "entrypoint"),
            f"'{exp.entrypoint}' is not of the form package.module:function",
        )
    elif exp.command is not None:
        _check_command(
            exp.command,
            allowed=(*exp.param_names, SEED),
            path=(*path, "command"),
            problems=problems,
        )


def _check_command(
    command: str, *, allowed: Collection[str], path: KeyPath, problems: Problems
) -> None:
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        problems.add(
            path, f"cannot split the command into arguments: {exc}", hint="check its quotes"
        )
        return
    if not tokens:
        problems.add(path, "the command is empty")
    for token in tokens:
        try:
            pieces = parse_template(token)
        except ValueError as exc:
            problems.add(
                path,
                f"bad placeholder in '{token}': {exc}",
                hint="write {{ and }} for literal braces",
            )
            continue
        for _, name in pieces:
            if name is not None and name not in allowed:
                problems.add(
                    path, f"undefined placeholder {{{name}}}", hint=did_you_mean(name, allowed)
                )


def _check_paths(exp: ExperimentSpec, path: KeyPath, problems: Problems) -> None:
    located: list[tuple[KeyPath, str]] = [
        ((*path, "inputs", i), item.path) for i, item in enumerate(exp.inputs)
    ]
    located += [((*path, "outputs", i), item) for i, item in enumerate(exp.output_paths)]
    if exp.metrics_file is not None:
        located.append(((*path, "metrics_file"), exp.metrics_file))
    if exp.cwd is not None:
        located.append(((*path, "cwd"), exp.cwd))
    located += [((*path, "deps", i), item) for i, item in enumerate(exp.deps or ())]
    for key, text in located:
        reason = path_problem(text)
        if reason is not None:
            problems.add(key, reason)


def _check_datasets(exp: ExperimentSpec, path: KeyPath, problems: Problems) -> None:
    """Dataset references are well formed; a dataset input is always stored."""
    for index, item in enumerate(exp.inputs):
        if item.dataset is None:
            continue
        key = (*path, "inputs", index)
        reason = ref_problem(item.dataset)
        if reason is not None:
            problems.add((*key, "dataset"), reason)
        if not item.store:
            problems.add((*key, "store"), "a dataset input is always stored; remove 'store'")
    for index, out in enumerate(exp.outputs):
        if isinstance(out, OutputDecl):
            reason = name_problem(out.dataset)
            if reason is not None:
                problems.add((*path, "outputs", index, "dataset"), reason,
                             hint="an output names a dataset, not a version")  # fmt: skip


def _check_env_names(names: Collection[str], path: KeyPath, problems: Problems) -> None:
    for index, name in enumerate(names):
        if not ENV_NAME.match(name):
            problems.add((*path, index), f"'{name}' is not a valid environment variable name")
