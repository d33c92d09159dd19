"""Comparisons of the machine-side facets: software environment and hardware.

Packages are keyed by their normalised name with a note such as ``package upgraded``; every other
key has a dot or a space (``python.version``, ``env.OMP_NUM_THREADS``, ``lock.uv.lock``), so it
can never be mistaken for a package (normalised names have neither).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from keel.base.canonical import JsonValue
from keel.compare.change import Collector, captured_text, obj, ordered_keys, same

_PYTHON_FIRST = ("implementation", "version")
_PYTHON_LATER = ("platform", "os_release", "libc", "machine", "executable", "prefix")
_HANDLED = ("captured", "reason", "python", "packages", "packages_digest", "lock_files",
            "env_vars", "blas", "container")  # fmt: skip
_HARDWARE_ORDER = ("captured", "reason", "cpu_model", "cpu_logical", "cpu_physical",
                   "cpu_usable", "memory_bytes", "machine", "gpus", "cuda_version")  # fmt: skip
_POOL_FIELDS = ("user_api", "internal_api", "version", "threading_layer", "architecture")
_THREAD_VAR = re.compile(r"_(NUM_THREADS|MAXIMUM_THREADS)$")
_RELEASE = re.compile(r"^v?(\d+(?:\.\d+)*)")


def compare_environment(
    out: Collector, a: Mapping[str, JsonValue], b: Mapping[str, JsonValue]
) -> None:
    """Add the differences between two ``environment`` facets to ``out``, most important first.

    Python version, packages, lock files, variables, BLAS, then platform, OS and container.
    ``packages_digest`` is not compared on its own: it is a digest of the packages compared.
    """
    if not (a.get("captured") and b.get("captured")):
        out.compare("captured", captured_text(a), captured_text(b))
        return
    pa, pb = obj(a.get("python")), obj(b.get("python"))
    out.mapping("python.", pa, pb, first=_PYTHON_FIRST, skip=_PYTHON_LATER)
    _packages(out, a.get("packages"), b.get("packages"))
    out.named("lock.", obj(a.get("lock_files")), obj(b.get("lock_files")), "lock file")
    _env_vars(out, obj(a.get("env_vars")), obj(b.get("env_vars")))
    _blas(out, obj(a.get("blas")), obj(b.get("blas")))
    out.compare("platform", pa.get("platform"), pb.get("platform"))
    out.compare("os", _os(pa.get("os_release")), _os(pb.get("os_release")))
    for key in ("libc", "machine", "executable", "prefix"):
        out.compare(f"python.{key}", pa.get(key), pb.get(key))
    out.mapping("container.", obj(a.get("container")), obj(b.get("container")))
    for key in ordered_keys(a, b, skip=_HANDLED):
        out.compare(key, a.get(key), b.get(key))


def compare_hardware(
    out: Collector, a: Mapping[str, JsonValue], b: Mapping[str, JsonValue]
) -> None:
    """Add the differences between two ``hardware`` facets to ``out``: CPU, memory, then GPUs."""
    out.mapping("", a, b, first=_HARDWARE_ORDER)


def _packages(out: Collector, a: JsonValue, b: JsonValue) -> None:
    if not isinstance(a, dict) or not isinstance(b, dict):
        out.compare("packages", a, b)
        return
    for name in sorted(a.keys() | b.keys()):
        old, new = a.get(name), b.get(name)
        if name not in b:
            out.add(name, old, None, note="package removed")
        elif name not in a:
            out.add(name, None, new, note="package added")
        elif not same(old, new):
            out.add(name, old, new, note=_version_note(str(old), str(new)))


def _version_note(old: str, new: str) -> str:
    """Upgraded or downgraded by release number; ``changed`` when that does not tell."""
    ma, mb = _RELEASE.match(old), _RELEASE.match(new)
    if ma and mb:
        ta = [int(p) for p in ma.group(1).split(".")]
        tb = [int(p) for p in mb.group(1).split(".")]
        width = max(len(ta), len(tb))
        ta += [0] * (width - len(ta))
        tb += [0] * (width - len(tb))
        if ta != tb:
            return "package upgraded" if tb > ta else "package downgraded"
    return "package changed"


def _env_vars(out: Collector, a: Mapping[str, JsonValue], b: Mapping[str, JsonValue]) -> None:
    for name in ordered_keys(a, b):
        what = "thread setting" if _THREAD_VAR.search(name) else "variable"
        if name not in b:
            out.add(f"env.{name}", a[name], None, note=f"{what} set only in A")
        elif name not in a:
            out.add(f"env.{name}", None, b[name], note=f"{what} set only in B")
        else:
            out.compare(f"env.{name}", a[name], b[name], note=f"{what} changed")


def _blas(out: Collector, a: Mapping[str, JsonValue], b: Mapping[str, JsonValue]) -> None:
    if not (a.get("captured") and b.get("captured")):
        out.compare("blas", captured_text(a), captured_text(b))
        return
    out.compare("blas.threadpools", _pools(a.get("threadpools")), _pools(b.get("threadpools")),
                note="BLAS/OpenMP runtime changed")  # fmt: skip
    for key in ordered_keys(a, b, skip=("captured", "reason", "threadpools")):
        out.compare(f"blas.{key}", a.get(key), b.get(key))


def _pools(value: JsonValue) -> JsonValue:
    """Threadpools as short lines (``blas openblas 0.3.31 pthreads SkylakeX``), paths left out.

    The library's path follows the interpreter's prefix, which is compared on its own.
    """
    if not isinstance(value, list):
        return value
    lines: list[JsonValue] = []
    for pool in value:
        fields = obj(pool)
        lines.append(" ".join(str(fields[k]) for k in _POOL_FIELDS if fields.get(k) is not None))
    return lines


def _os(value: JsonValue) -> JsonValue:
    """The OS release's display name when recorded, else the whole record."""
    return obj(value).get("PRETTY_NAME", value)
