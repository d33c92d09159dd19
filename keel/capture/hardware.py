"""Hardware facet: CPU model and cores, memory, architecture and NVIDIA GPUs.

On Linux everything but the GPUs is read from ``/proc`` and ``os`` (well under 1 ms); psutil,
which takes ~25 ms to import, is loaded only where ``/proc`` has no answer. GPUs come from
``nvidia-smi`` when it is on PATH, with a short timeout: a wedged driver makes it hang.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from keel.base.canonical import JsonValue

log = logging.getLogger(__name__)

GPU_TIMEOUT_S = 5.0
_GPU_FIELDS = ("name", "memory.total", "driver_version", "uuid")
_CUDA_VERSION = re.compile(r"CUDA Version:\s*([0-9][0-9.]*)")
_UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


class _NoGpu(Exception):
    """No GPU information; the message is the manifest's ``gpu_reason``."""


def capture_hardware(*, gpu_timeout_s: float = GPU_TIMEOUT_S) -> dict[str, JsonValue]:
    """Record the machine a run executes on.

    Returns ``{"captured": True, "cpu_model", "cpu_logical", "cpu_physical", "cpu_usable",
    "memory_bytes", "machine", "gpus": [...], "cuda_version"}``; when no GPU can be queried,
    ``"gpus": []`` and ``"gpu_reason"`` say why.
    """
    try:
        record = _host()
        record.update(_gpus(gpu_timeout_s))
        return record
    except Exception as exc:  # an optional facet must never fail the run
        log.warning("hardware capture failed", exc_info=True)
        return {"captured": False, "reason": f"hardware capture failed: {exc!r}"}


def _host() -> dict[str, JsonValue]:
    info = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "captured": True,
        "cpu_model": _cpu_model(info),
        "cpu_logical": os.cpu_count(),
        "cpu_physical": _physical_cores(info),
        "cpu_usable": usable,
        "memory_bytes": _memory_bytes(),
        "machine": os.uname().machine,
    }


def _cpuinfo() -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per logical CPU; empty where there is no such file."""
    try:
        text = Path("/proc/cpuinfo").read_text("utf-8", "replace")
    except OSError:
        return []
    blocks = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _cpu_model(info: list[dict[str, str]]) -> str | None:
    for key in ("model name", "Model", "Hardware", "cpu model", "cpu"):
        for block in info:
            if block.get(key):
                return block[key]
    import platform  # 3 ms to import; only for systems without a CPU name in /proc/cpuinfo

    return platform.processor() or None


def _physical_cores(info: list[dict[str, str]]) -> int | None:
    cores = {
        (b["physical id"], b["core id"]) for b in info if "physical id" in b and "core id" in b
    }
    if cores:
        return len(cores)
    import psutil  # only where /proc/cpuinfo has no topology (ARM, other systems)

    count: int | None = psutil.cpu_count(logical=False)
    return count


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text("ascii", "replace").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import psutil  # not Linux: psutil knows the platform's own API

    total: int = psutil.virtual_memory().total
    return total


def _gpus(timeout_s: float) -> dict[str, JsonValue]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"gpus": [], "cuda_version": None, "gpu_reason": "nvidia-smi not found"}
    query = [exe, f"--query-gpu={','.join(_GPU_FIELDS)}", "--format=csv,noheader"]
    try:
        listing, summary = _run_together([query, [exe]], timeout_s)
    except _NoGpu as exc:
        return {"gpus": [], "cuda_version": None, "gpu_reason": str(exc)}
    gpus: list[JsonValue] = [_gpu_row(line.split(",")) for line in listing.splitlines() if line]
    match = _CUDA_VERSION.search(summary)
    found: dict[str, JsonValue] = {"gpus": gpus, "cuda_version": match[1] if match else None}
    if not gpus:
        found["gpu_reason"] = "nvidia-smi lists no GPU"
    return found


def _gpu_row(row: list[str]) -> dict[str, JsonValue]:
    fields = ("name", "memory", "driver_version", "uuid")
    gpu: dict[str, JsonValue] = {k: v.strip() for k, v in zip(fields, row, strict=False)}
    amount, _, unit = str(gpu.get("memory", "")).partition(" ")
    if amount.isdigit() and unit in _UNITS:
        gpu["memory_bytes"] = int(amount) * _UNITS[unit]
    return gpu


def _run_together(commands: list[list[str]], timeout_s: float) -> list[str]:
    """Run the commands concurrently; their stdout, or _NoGpu on any failure or timeout.

    Each runs in its own session so that a timeout kills the whole process group: a wrapper
    script's children would otherwise keep the pipes open.
    """
    procs: list[subprocess.Popen[str]] = []
    try:
        for argv in commands:
            procs.append(subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, errors="replace", start_new_session=True,
            ))  # fmt: skip
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout_s)
            if proc.returncode != 0:
                first = (err.strip() or out.strip() or "no output").splitlines()[0]
                raise _NoGpu(f"nvidia-smi failed (exit {proc.returncode}): {first}")
            outputs.append(out)
        return outputs
    except subprocess.TimeoutExpired as exc:
        raise _NoGpu(f"nvidia-smi did not answer within {timeout_s:g} s") from exc
    except OSError as exc:
        raise _NoGpu(f"nvidia-smi could not run: {exc.strerror}") from exc
    finally:
        for proc in procs:
            if proc.returncode is None:
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()
