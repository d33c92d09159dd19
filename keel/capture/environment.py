"""Environment facet: interpreter, installed packages, lock files, allow-listed variables, BLAS.

Packages and BLAS runtimes are read by the target interpreter itself, in two probe processes
started together (listing ~50 distributions and importing numpy each take ~0.1 s here). Their
answer is cached per environment fingerprint — interpreter, ``sys.path`` and the mtime of every
site-packages folder, which any install or uninstall changes — so a run pays ~1 ms when nothing
was installed since the last one.

Environment variables are read only by name from an allow-list; values of names that look
secret are recorded as ``<redacted>``. (A little over 300 lines: the probes are inline scripts.)
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from keel.base.atomic import atomic_write_bytes
from keel.base.canonical import JsonValue, canonical_json
from keel.base.digest import hash_bytes, hash_file

log = logging.getLogger(__name__)

ENV_ALLOWLIST: tuple[str, ...] = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
    "OPENBLAS_CORETYPE", "KMP_AFFINITY", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_DEFAULT_ENV",
)  # fmt: skip
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")
REDACTED = "<redacted>"
LOCK_PATTERNS = (
    "uv.lock", "poetry.lock", "requirements*.txt", "environment.yml", "environment.yaml",
    "pixi.lock", "Pipfile.lock", "pdm.lock", "conda-lock.yml",
)  # fmt: skip
_LOCK_NAME = re.compile("|".join(fnmatch.translate(p) for p in LOCK_PATTERNS))
PROBE_TIMEOUT_S = 120.0
_CACHE_VERSION = 1  # bump when the probes or the cached shape change

# Both probes drop the current folder from sys.path so a project file named like a package
# (numpy.py) cannot shadow what is installed.
_PACKAGES_PROBE = """
import json, platform, re, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
from importlib import metadata
packages = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if name:
        packages.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
python = {"implementation": platform.python_implementation(),
    "version": platform.python_version(), "executable": sys.executable, "prefix": sys.prefix,
    "platform": platform.platform(), "machine": platform.machine(),
    "libc": " ".join(platform.libc_ver()).strip() or None}
print(json.dumps({"python": python, "packages": dict(sorted(packages.items()))}))
"""
# num_threads is left out: it follows the run's variables and cores, which are recorded apart,
# and would otherwise be frozen in the cache.
_BLAS_PROBE = """
import json, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
def probe():
    try:
        import threadpoolctl
    except ImportError:
        return {"captured": False, "reason": "threadpoolctl is not installed in " + sys.executable}
    try:
        import numpy
    except ImportError:
        return {"captured": False, "reason": "numpy is not installed in " + sys.executable}
    keep = ("user_api", "internal_api", "prefix", "version", "threading_layer", "architecture",
            "filepath")
    pools = [{k: p[k] for k in keep if k in p} for p in threadpoolctl.threadpool_info()]
    return {"captured": True, "numpy": numpy.__version__, "threadpools": pools}
print(json.dumps(probe()))
"""
_FINGERPRINT_PROBE = (
    "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.exec_prefix,"
    " sys.version, [p for p in sys.path if p not in ('', '.')]]))"
)


class _NotCaptured(Exception):
    """A part of the facet cannot be read; the message is the manifest's reason."""


def is_secret_name(name: str) -> bool:
    """True when a variable's name suggests its value is a secret (TOKEN, KEY, AUTH, ...)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def allowed_env(environ: Mapping[str, str], env_allow: Sequence[str] = ()) -> dict[str, str]:
    """The allow-listed variables that are set, with their real values (for the child process).

    Names come from :data:`ENV_ALLOWLIST` plus ``env_allow``; an entry ending in ``*`` allows
    every name with that prefix. No other value is ever read. Never record this mapping as is:
    :func:`recorded_env` redacts it.
    """
    names = (*ENV_ALLOWLIST, *env_allow)
    prefixes = tuple(n[:-1] for n in names if n.endswith("*") and len(n) > 1)
    selected = {n for n in names if not n.endswith("*") and n in environ}
    if prefixes:
        selected.update(n for n in environ if n.startswith(prefixes))
    return {n: environ[n] for n in sorted(selected)}


def recorded_env(environ: Mapping[str, str], env_allow: Sequence[str] = ()) -> dict[str, str]:
    """:func:`allowed_env` with every secret-looking name's value replaced by ``<redacted>``."""
    return {
        name: REDACTED if is_secret_name(name) else value
        for name, value in allowed_env(environ, env_allow).items()
    }


def capture_environment(
    *,
    project_root: Path,
    env_allow: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    python: str | None = None,
) -> dict[str, JsonValue]:
    """Record the software environment a run executes in.

    Args:
        project_root: where lock files are looked for.
        env_allow: extra variable names (or ``PREFIX*``) to record besides :data:`ENV_ALLOWLIST`.
        environ: the run's variables; defaults to ``os.environ``.
        cache_dir: where the package/BLAS listing is cached; None disables the cache.
        python: the interpreter the run uses; defaults to the current one.
    """
    env = os.environ if environ is None else environ
    try:
        facts = _interpreter_facts(python, env, cache_dir)
    except _NotCaptured as exc:
        return {"captured": False, "reason": str(exc)}
    except Exception as exc:  # an optional facet must never fail the run
        log.warning("environment capture failed", exc_info=True)
        return {"captured": False, "reason": f"environment capture failed: {exc!r}"}
    python_facts = facts["python"]
    if isinstance(python_facts, dict):
        python_facts = {**python_facts, "os_release": _part("os_release", _os_release)}
    packages = facts["packages"]
    return {
        "captured": True,
        "python": python_facts,
        "packages": packages,
        "packages_digest": str(hash_bytes(canonical_json(packages))),
        "lock_files": _part("lock_files", lambda: _lock_files(project_root)),
        "env_vars": _part("env_vars", lambda: dict(recorded_env(env, env_allow))),
        "blas": facts["blas"],
        "container": _part("container", lambda: container_hints(env)),
    }


def _part(name: str, read: Callable[[], dict[str, JsonValue]]) -> dict[str, JsonValue]:
    """One section of the facet; a failure is recorded in it instead of failing the facet."""
    try:
        return read()
    except Exception as exc:  # isolate each section: the rest of the facet is still worth having
        log.warning("environment section %s not captured", name, exc_info=True)
        return {"captured": False, "reason": f"{exc!r}"}


def _os_release() -> dict[str, JsonValue]:
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(candidate).read_text("utf-8", "replace")
        except OSError:
            continue
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return {k: fields[k].strip().strip("\"'") for k in ("PRETTY_NAME", "ID", "VERSION_ID")
                if k in fields}  # fmt: skip
    return {"captured": False, "reason": "no /etc/os-release"}


def _lock_files(project_root: Path) -> dict[str, JsonValue]:
    found: dict[str, JsonValue] = {}
    with os.scandir(project_root) as entries:
        names = sorted(e.name for e in entries if _LOCK_NAME.match(e.name) and e.is_file())
    for name in names:
        found[name] = str(hash_file(project_root / name)[0])
    return found


def container_hints(
    environ: Mapping[str, str], *, fs_root: Path = Path("/")
) -> dict[str, JsonValue]:
    """Signs that this process runs in a container, and the image when it is known.

    The image digest comes from ``KEEL_IMAGE_DIGEST`` (set it in the image build), or from
    podman's ``/run/.containerenv``.
    """
    hints: list[JsonValue] = [f"/{m}" for m in (".dockerenv", "run/.containerenv")
                              if (fs_root / m).exists()]  # fmt: skip
    cgroups = "".join(_read_text(fs_root / "proc" / p / "cgroup") for p in ("1", "self"))
    hints += [f"cgroup:{w}" for w in ("docker", "kubepods", "containerd", "libpod") if w in cgroups]
    if "KUBERNETES_SERVICE_HOST" in environ:
        hints.append("KUBERNETES_SERVICE_HOST")
    found: dict[str, JsonValue] = {"detected": bool(hints), "hints": hints}
    podman = _read_text(fs_root / "run/.containerenv")
    for line in podman.splitlines():
        key, _, value = line.partition("=")
        if key in ("image", "imageid") and value.strip('"'):
            found["image" if key == "image" else "image_digest"] = value.strip('"')
    for var, key in (("KEEL_IMAGE", "image"), ("KEEL_IMAGE_DIGEST", "image_digest")):
        if environ.get(var):
            found[key] = environ[var]
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""


def environment_fingerprint(
    python: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """A short key that changes whenever packages may have been installed for ``python``.

    Built from the interpreter's identity, its ``sys.path`` and the mtime of each site-packages
    folder on it; for another interpreter than this one, that costs one quick subprocess.
    """
    env = os.environ if environ is None else environ
    exe = _resolve_interpreter(python)
    identity = _identity(exe, env)
    paths = identity[4] if len(identity) > 4 and isinstance(identity[4], list) else []
    stamps: list[JsonValue] = []
    for entry in map(str, paths):
        if Path(entry).name in ("site-packages", "dist-packages"):
            try:
                stamps.append([entry, os.stat(entry).st_mtime_ns])
            except OSError:
                continue
    # The kernel is in the key because the cached platform string names it.
    key = [_CACHE_VERSION, exe, identity, stamps, env.get("PYTHONPATH"), list(os.uname())]
    # json, not canonical_json: mtime_ns exceeds RFC 8785's integer range, and this key is local.
    return hash_bytes(json.dumps(key, sort_keys=True).encode()).hexdigest[:32]


def _identity(exe: str, env: Mapping[str, str]) -> list[JsonValue]:
    """``[executable, prefix, exec_prefix, version, sys.path]`` of the interpreter ``exe``."""
    if not _is_self(exe):
        found = _run_python(exe, {"id": _FINGERPRINT_PROBE}, env)["id"]
        return found if isinstance(found, list) else [found]
    # sys.path[0] is the script's folder or the cwd: it varies by invocation, and the probes
    # leave it out of their own path.
    paths: list[JsonValue] = list(sys.path if sys.flags.safe_path else sys.path[1:])
    return [sys.executable, sys.prefix, sys.exec_prefix, sys.version, paths]


def _resolve_interpreter(python: str | None) -> str:
    if python is None:
        return sys.executable
    found = shutil.which(python)
    if found is None:
        raise _NotCaptured(f"interpreter {python!r} not found")
    return os.path.abspath(found)


def _is_self(exe: str) -> bool:
    """Same interpreter in the same environment (a venv's python is a symlink to the base one)."""
    here = Path(sys.executable).absolute()
    there = Path(exe).absolute()
    try:
        return there.parent == here.parent and os.path.samefile(there, here)
    except OSError:
        return False


def _interpreter_facts(
    python: str | None, env: Mapping[str, str], cache_dir: Path | None
) -> dict[str, JsonValue]:
    """``{"python", "packages", "blas"}`` for the target interpreter, from the cache if possible."""
    exe = _resolve_interpreter(python)
    cache = cache_dir / f"env-{environment_fingerprint(exe, env)}.json" if cache_dir else None
    if cache is not None:
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    facts, complete = _probe_interpreter(exe, env)
    if cache is not None and complete:
        _write_cache(cache, facts)
    return facts


def _probe_interpreter(exe: str, env: Mapping[str, str]) -> tuple[dict[str, JsonValue], bool]:
    """Run both probes at once; ``complete`` is False when one crashed or timed out."""
    results = _run_python(exe, {"packages": _PACKAGES_PROBE, "blas": _BLAS_PROBE}, env)
    listing, blas = results["packages"], results["blas"]
    complete = isinstance(listing, dict) and "packages" in listing and isinstance(blas, dict)
    if isinstance(listing, dict) and "packages" in listing:
        return {
            "python": listing["python"],
            "packages": listing["packages"],
            "blas": blas,
        }, complete
    failed: JsonValue = {"executable": exe, **(listing if isinstance(listing, dict) else {})}
    return {"python": failed, "packages": listing, "blas": blas}, complete


def _run_python(
    exe: str, scripts: Mapping[str, str], env: Mapping[str, str]
) -> dict[str, JsonValue]:
    """Run the scripts in ``exe`` concurrently; each answer is its JSON output or a failure."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, JsonValue] = {}
    try:
        for name, script in scripts.items():
            procs[name] = subprocess.Popen(
                [exe, "-c", script], env=dict(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        for name, proc in procs.items():
            results[name] = _answer(exe, proc)
    except OSError as exc:
        raise _NotCaptured(f"interpreter {exe} could not start: {exc.strerror}") from exc
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
    return results


def _answer(exe: str, proc: subprocess.Popen[bytes]) -> JsonValue:
    try:
        out, err = proc.communicate(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"captured": False, "reason": f"{exe} did not answer in {PROBE_TIMEOUT_S:.0f} s"}
    if proc.returncode == 0:
        try:
            answer: JsonValue = json.loads(out)
            return answer
        except ValueError:
            pass
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
    return {"captured": False, "reason": f"{exe} probe failed (exit {proc.returncode}): {tail[0]}"}


def _read_cache(path: Path) -> dict[str, JsonValue] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and {"python", "packages", "blas"} <= data.keys():
        return data
    return None


_CACHE_KEEP = 16  # environments remembered; older cache files are removed when one is written


def _write_cache(path: Path, facts: dict[str, JsonValue]) -> None:
    try:
        atomic_write_bytes(path, canonical_json(facts), durable=False)
        old = sorted(path.parent.glob("env-*.json"), key=lambda p: p.stat().st_mtime_ns)
        for stale in old[:-_CACHE_KEEP]:
            stale.unlink(missing_ok=True)
    except OSError:  # a cache that cannot be written only costs time on the next run
        log.warning("cannot write environment cache %s", path, exc_info=True)
