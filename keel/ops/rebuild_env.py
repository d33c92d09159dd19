"""Rebuild a run's recorded Python environment as a cached virtual environment.

``keel reproduce --env recorded`` runs the reproduction in a virtual environment holding exactly
the package versions the run recorded. Every recorded distribution is pinned ``name==version``
except pip, setuptools and wheel (the environment's own tooling) and keel itself.

- **Builder.** ``uv venv`` + ``uv pip install`` when ``uv`` is on PATH, else ``python -m venv``
  + ``pip install``. pip's index settings (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``,
  ``PIP_FIND_LINKS``, ``PIP_NO_INDEX``) are honoured by both: they are passed to uv as its own
  options unless the ``UV_`` equivalents are set.
- **Interpreter.** The recorded interpreter when it still exists, else the one keel runs in (the
  environment difference then shows the Python change).
- **keel inside.** keel is not installed from an index: when the run's environment had keel,
  a ``.pth`` file makes the running keel's package importable (through a link, with a minimal
  ``dist-info`` so it is listed), so the in-run API works and this keel records the run.
- **Cache.** ``<project>/.keel/cache/envs/<digest>``, the digest of the interpreter, its
  version and the pins. A build holds a file lock and writes a marker when complete; a folder
  without the marker (an interrupted build) is rebuilt. Venvs are built in place because their
  scripts name their folder.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from keel import __version__
from keel.base.canonical import JsonValue, canonical_json
from keel.base.digest import hash_bytes
from keel.errors import UserError

SKIPPED = frozenset({"pip", "setuptools", "wheel", "keel"})
BUILD_TIMEOUT_S = 3600.0
_DONE = ".keel-env-complete"
_PIP_TO_UV = (
    ("PIP_INDEX_URL", "UV_INDEX_URL", "--index-url"),
    ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL", "--extra-index-url"),
    ("PIP_FIND_LINKS", "UV_FIND_LINKS", "--find-links"),
)

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default progress callback: say nothing."""


def recorded_pins(environment: Mapping[str, JsonValue]) -> tuple[str, ...]:
    """``name==version`` for every recorded package keel pins (sorted).

    Raises:
        keel.errors.UserError: the environment or its package list was not captured.
    """
    packages = environment.get("packages")
    if not environment.get("captured") or not isinstance(packages, dict):
        raise UserError(f"the run's environment was not captured ({environment.get('reason')}); "
                        "reproduce it with --env current")  # fmt: skip
    return tuple(
        f"{name}=={version}"
        for name, version in sorted(packages.items())
        if name not in SKIPPED and isinstance(version, str)
    )


def rebuild_env(
    environment: Mapping[str, JsonValue],
    *,
    cache_root: Path,
    environ: Mapping[str, str],
    on_progress: Progress = _quiet,
) -> Path:
    """The python of a virtual environment with the recorded packages, built unless cached.

    Args:
        environment: the run manifest's ``environment`` section.
        cache_root: where environments are kept (``.keel/cache/envs``).
        environ: variables for the builder (pip/uv settings, PATH).
        on_progress: called with a line of progress text.

    Raises:
        keel.errors.UserError: nothing to rebuild from, or the builder failed (its last lines).
    """
    pins = recorded_pins(environment)
    base = _base_python(environment)
    python = environment.get("python")
    version = python.get("version") if isinstance(python, dict) else None
    key = hash_bytes(
        canonical_json({"interpreter": base, "python": version, "packages": list(pins)})
    )
    dest = cache_root / key.hexdigest[:32]
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / _DONE).exists():
            on_progress(f"reusing the recorded environment in {dest}")
        else:
            on_progress(f"building the recorded environment ({len(pins)} packages) in {dest}")
            _build(dest, base=base, pins=pins, environ=environ)
        packages = environment.get("packages")
        if isinstance(packages, dict) and "keel" in packages:
            _link_keel(dest)
    return dest / "bin" / "python"


def _base_python(environment: Mapping[str, JsonValue]) -> str:
    python = environment.get("python")
    recorded = python.get("executable") if isinstance(python, dict) else None
    if isinstance(recorded, str) and os.access(recorded, os.X_OK):
        return recorded
    return sys.executable


def _build(dest: Path, *, base: str, pins: tuple[str, ...], environ: Mapping[str, str]) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    env = {**environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    env.pop("VIRTUAL_ENV", None)
    uv = shutil.which("uv", path=environ.get("PATH"))
    python = str(dest / "bin" / "python")
    try:
        if uv:
            _step([uv, "venv", "--quiet", "--python", base, str(dest)], env)
            if pins:
                _step([uv, "pip", "install", "--python", python, *_uv_flags(env), *pins], env)
        else:
            _step([base, "-m", "venv", str(dest)], env)
            if pins:
                _step([python, "-m", "pip", "install", "--quiet", *pins], env)
    except UserError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    (dest / _DONE).write_text("\n".join(pins) + "\n", "utf-8")


def _uv_flags(env: Mapping[str, str]) -> list[str]:
    """pip's index settings as uv options (uv does not read ``PIP_*`` variables)."""
    flags: list[str] = []
    for pip_name, uv_name, flag in _PIP_TO_UV:
        if env.get(pip_name) and not env.get(uv_name):
            for value in env[pip_name].split():
                flags += [flag, value]
    if (
        env.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on")
        and "UV_NO_INDEX" not in env
    ):
        flags.append("--no-index")
    return flags


def _step(argv: list[str], env: Mapping[str, str]) -> None:
    what = " ".join(argv[:3])
    try:
        proc = subprocess.run(argv, env=dict(env), capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"could not rebuild the recorded environment: `{what}` failed to run "
                        f"({exc}); use --env current") from exc  # fmt: skip
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or "no output"
        raise UserError(
            f"could not rebuild the recorded environment: `{what}` exited {proc.returncode}: "
            f"{tail}; check the package index settings (PIP_INDEX_URL, PIP_FIND_LINKS), "
            "or reproduce with --env current"
        )


def _link_keel(dest: Path) -> None:
    """Make the running keel importable (and listed) in the environment at ``dest``."""
    link_dir = dest / "keel-link"
    package = Path(__file__).resolve().parents[1]
    info = link_dir / f"keel-{__version__}.dist-info"
    link = link_dir / "keel"
    if link.is_symlink() and Path(os.readlink(link)) == package and info.is_dir():
        return  # unchanged: rewriting would touch site-packages and void the environment cache
    if link_dir.exists():
        shutil.rmtree(link_dir)
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: keel\nVersion: {__version__}\n", "utf-8"
    )
    link.symlink_to(package, target_is_directory=True)
    for site in dest.glob("lib/python*/site-packages"):
        (site / "_keel_link.pth").write_text(f"{link_dir}\n", "utf-8")
