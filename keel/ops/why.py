"""`keel why A B`: which difference moved the metric, measured by switching one factor at a time.

Start from A as recorded (its code restored in a sandbox, its inputs, its plan, its variables)
and re-run it once as the base; then, for each group of differences between A and B — params,
seed, inputs, code, allow-listed environment variables, and (``include_packages``) the package
set rebuilt as in ``keel reproduce --env recorded`` — re-run A with only that group switched to
B's. Every re-run is a sealed run. The metric's movement from the base, as a share of the A→B
gap, names the factor that carries it (``keel.compare.attribution``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from keel.base.canonical import JsonValue
from keel.compare.attribution import Attribution, Factor, Trial, attribute
from keel.compare.noise import within_noise
from keel.errors import KeelError, UserError
from keel.model.manifest import Manifest
from keel.model.params import Layer, ResolvedParam
from keel.model.plan import RunPlan
from keel.ops.listing import show_run
from keel.ops.replay import (
    Sandbox,
    recorded_bytes,
    recorded_environ,
    recorded_plan,
    restore_inputs,
)
from keel.ops.run import ExecOptions, execute_plan
from keel.ops.workspace import Workspace

ProgressCallback = Callable[[str], None]
ORDER = (Factor.PARAMS, Factor.SEED, Factor.INPUTS, Factor.CODE, Factor.ENV_VARS, Factor.PACKAGES)


def _quiet(message: str) -> None:
    """Default progress callback: nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WhyReport:
    """The two runs, the factors that differ, what was measured and the attribution."""

    a: str
    b: str
    differing: tuple[Factor, ...]
    attribution: Attribution
    seconds: float

    def to_json(self) -> dict[str, JsonValue]:
        """A stable JSON form for `keel why --json`."""
        at = self.attribution
        return {
            "a": self.a,
            "b": self.b,
            "metric": at.metric,
            "value_a": at.a,
            "value_b": at.b,
            "base": at.base,
            "differing": [str(f) for f in self.differing],
            "within_noise": at.within_noise,
            "causes": [str(c) for c in at.causes],
            "untried": [str(f) for f in at.untried],
            "verdict": at.verdict(),
            "seconds": round(self.seconds, 3),
            "effects": [
                {
                    "factor": str(e.factor),
                    "run": e.run_id,
                    "value": e.value,
                    "delta": e.delta,
                    "share": e.share,
                    "error": e.error,
                }
                for e in at.effects
            ],
        }


def explain(
    ws: Workspace,
    ref_a: str,
    ref_b: str,
    *,
    metric: str | None = None,
    max_runs: int = 8,
    include_packages: bool = False,
    on_progress: ProgressCallback = _quiet,
) -> WhyReport:
    """Measure which group of differences between two runs moves ``metric``.

    Raises:
        keel.errors.RunRefError: a reference matches no run or several.
        keel.errors.UserError: no common metric, a bad ``max_runs``, runs not finished.
    """
    if max_runs < 1:
        raise UserError(f"--max-runs must be at least 1, got {max_runs}")
    started = time.monotonic()
    a, b = _finished(ws, ref_a), _finished(ws, ref_b)
    name = _metric(a, b, metric)
    differing = differing_factors(a, b, include_packages=True)
    tried = [f for f in ORDER if f in differing and (f is not Factor.PACKAGES or include_packages)]
    budget = tried[: max(max_runs - 1, 0)]
    untried = tuple(f for f in differing if f not in budget)
    rebuild = Factor.PACKAGES in budget  # then every trial runs in a rebuilt environment
    trials = [_trial(ws, a, b, None, name, on_progress, rebuild=rebuild)]
    if trials[0].value is not None:
        trials += [_trial(ws, a, b, f, name, on_progress, rebuild=rebuild) for f in budget]
    va, vb = a.metrics[name].value, b.metrics[name].value
    attribution = attribute(
        metric=name,
        a=va,
        b=vb,
        trials=trials,
        within_noise=_noise(ws, a, name, vb - va),
        untried=untried,
    )
    return WhyReport(
        a=a.run.id,
        b=b.run.id,
        differing=differing,
        attribution=attribution,
        seconds=time.monotonic() - started,
    )


def _finished(ws: Workspace, ref: str) -> Manifest:
    manifest = show_run(ws, ref, tail=0).manifest
    if not manifest.run.status.finished:
        raise UserError(
            f"run {manifest.run.id} is still {manifest.run.status.value}; "
            "wait for it to end, then ask again"
        )
    return manifest


def _metric(a: Manifest, b: Manifest, wanted: str | None) -> str:
    common = [m for m in a.metrics if m in b.metrics]
    if wanted is not None:
        if wanted not in common:
            from keel.base.suggest import did_you_mean

            raise UserError(
                f"metric '{wanted}' is not recorded by both runs; " + did_you_mean(wanted, common)
            )
        return wanted
    declared = [m for m in common if a.metrics[m].goal is not None]
    if not (declared or common):
        raise UserError(f"runs {a.run.id} and {b.run.id} share no metric: nothing to explain")
    return (declared or common)[0]


def differing_factors(a: Manifest, b: Manifest, *, include_packages: bool) -> tuple[Factor, ...]:
    """The factor groups whose recorded values differ between ``a`` and ``b``, in trial order."""
    found = {
        Factor.PARAMS: _values(a) != _values(b),
        Factor.SEED: (a.seeds.root, a.seeds.pythonhashseed)
        != (b.seeds.root, b.seeds.pythonhashseed),
        Factor.INPUTS: _inputs(a) != _inputs(b),
        Factor.CODE: _code(a) != _code(b),
        Factor.ENV_VARS: a.environment.get("env_vars") != b.environment.get("env_vars"),
        Factor.PACKAGES: include_packages and _packages(a) != _packages(b),
    }
    return tuple(f for f in ORDER if found[f])


def _values(m: Manifest) -> dict[str, JsonValue]:
    return {k: float(v.value) if isinstance(v.value, int) and not isinstance(v.value, bool)
            else v.value for k, v in m.config.params.items()}  # fmt: skip


def _inputs(m: Manifest) -> list[tuple[str, str | None]]:
    return sorted((i.path, i.digest) for i in m.inputs)


def _code(m: Manifest) -> tuple[JsonValue, ...]:
    untracked = m.code.get("untracked")
    files = sorted(str(u.get("digest")) + str(u.get("path")) for u in untracked
                   if isinstance(u, dict)) if isinstance(untracked, list) else []  # fmt: skip
    return (m.code.get("commit"), m.code.get("diff"), *files)


def _packages(m: Manifest) -> tuple[JsonValue, ...]:
    py = m.environment.get("python")
    return (
        m.environment.get("packages_digest"),
        py.get("version") if isinstance(py, dict) else None,
    )


def _trial(
    ws: Workspace,
    a: Manifest,
    b: Manifest,
    factor: Factor | None,
    metric: str,
    on_progress: ProgressCallback,
    *,
    rebuild: bool,
) -> Trial:
    label = "A as recorded" if factor is None else f"A with B's {factor}"
    on_progress(f"running {label}")
    try:
        sandbox = Sandbox.restore(ws, (b if factor is Factor.CODE else a).code, label="why",
                                  need_bytes=max(recorded_bytes(a), recorded_bytes(b)))  # fmt: skip
    except KeelError as exc:
        return Trial(factor=factor, run_id=None, value=None, error=str(exc))
    try:
        plan, options = _variant(ws, a, b, factor, sandbox, rebuild=rebuild)
        outcome = execute_plan(ws, plan, options=options)
    except KeelError as exc:
        return Trial(factor=factor, run_id=None, value=None, error=str(exc))
    finally:
        sandbox.remove()
    m = outcome.manifest
    value = m.metrics[metric].value if metric in m.metrics else None
    error = None if value is not None else f"run {m.run.id} {m.run.status.value} without {metric}"
    return Trial(factor=factor, run_id=m.run.id, value=value, error=error)


def _variant(
    ws: Workspace,
    a: Manifest,
    b: Manifest,
    factor: Factor | None,
    sandbox: Sandbox,
    *,
    rebuild: bool,
) -> tuple[RunPlan, ExecOptions]:
    restore_inputs(ws, (b if factor is Factor.INPUTS else a).inputs, sandbox)
    plan = recorded_plan(a, sandbox, launcher=True)
    env_source = b if factor is Factor.ENV_VARS else a
    python = None
    if rebuild:  # every trial runs in a rebuilt environment: A's, or B's for the switch
        from keel.ops.rebuild_env import rebuild_env

        packages_of = b if factor is Factor.PACKAGES else a
        python = str(rebuild_env(packages_of.environment, cache_root=ws.cache_dir / "envs",
                                 environ=ws.environ))  # fmt: skip
    environ = recorded_environ(ws.environ, env_source)
    if factor is Factor.PARAMS:
        params = tuple(ResolvedParam(name=k, value=v.value, layer=Layer(v.source))
                       for k, v in b.config.params.items())  # fmt: skip
        plan = _with(plan, a, params=params, seed=plan.seed)
    elif factor is Factor.SEED:
        plan = _with(plan, a, params=plan.params, seed=b.seeds.root)
        environ.pop("PYTHONHASHSEED", None)
        if b.seeds.pythonhashseed_source == "user":
            environ["PYTHONHASHSEED"] = b.seeds.pythonhashseed
    why = f"keel why {a.run.id} {b.run.id}: " + ("A as recorded" if factor is None
                                                else f"switch {factor}")  # fmt: skip
    return replace(plan, why=why, tags=(*plan.tags, "why")), ExecOptions(
        environ=environ, python=python
    )


def _with(plan: RunPlan, a: Manifest, *, params: tuple[ResolvedParam, ...], seed: int) -> RunPlan:
    """``plan`` with other parameter values and seed, its argv rendered again from A's template."""
    from keel.resolve.render import param_env, render_argv

    values = {p.name: p.value for p in params}
    template = a.config.experiment.get("command")
    argv = render_argv(template, values, seed=seed) if isinstance(template, str) else plan.argv
    profile_env = {k: v for k, v in plan.extra_env.items() if not k.startswith("KEEL_PARAM_")}
    return replace(
        plan, params=params, seed=seed, argv=argv, extra_env={**param_env(values), **profile_env}
    )


def _noise(ws: Workspace, a: Manifest, metric: str, delta: float) -> bool | None:
    from keel.ops.determinism import load_noise_profile

    try:
        found = load_noise_profile(ws, a.run.experiment)
    except KeelError:
        return None
    std = found[0].metric_std(metric) if found else None
    if std is None:
        return None
    tolerance = a.metrics[metric].tolerance or 0.0
    return within_noise(delta, tolerance=tolerance, std=std)
