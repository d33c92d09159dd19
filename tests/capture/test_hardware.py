"""The hardware facet, with real /proc facts and a fake nvidia-smi."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.capture.hardware import capture_hardware

SMI_LIST = (
    "NVIDIA A100-SXM4-80GB, 81920 MiB, 535.104.05, GPU-1111-aaaa\n"
    "NVIDIA A100-SXM4-80GB, 81920 MiB, 535.104.05, GPU-2222-bbbb\n"
)
SMI_SUMMARY = "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2     |\n"


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty bin folder first on PATH; write ``nvidia-smi`` into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bin_dir / "nvidia-smi"


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def test_host_facts_are_present_and_sane(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    record = capture_hardware()
    assert record["captured"] is True
    assert isinstance(record["cpu_model"], str) and record["cpu_model"]
    logical, physical = record["cpu_logical"], record["cpu_physical"]
    assert isinstance(logical, int) and isinstance(physical, int)
    assert 1 <= physical <= logical == os.cpu_count()
    assert isinstance(record["cpu_usable"], int) and 1 <= record["cpu_usable"] <= logical
    memory = record["memory_bytes"]
    assert isinstance(memory, int) and memory > 2**26
    assert record["machine"] == os.uname().machine
    assert record["gpus"] == []
    assert record["gpu_reason"] == "nvidia-smi not found"
    canonical_json(record)


def test_fake_nvidia_smi_is_parsed(fake_smi: Path) -> None:
    _script(
        fake_smi,
        f'if [ "$#" -eq 0 ]; then printf %s "{SMI_SUMMARY}"; else printf %s "{SMI_LIST}"; fi\n',
    )
    record = capture_hardware()
    assert record["cuda_version"] == "12.2"
    assert record["gpus"] == [
        {"name": "NVIDIA A100-SXM4-80GB", "memory": "81920 MiB", "memory_bytes": 81920 * 2**20,
         "driver_version": "535.104.05", "uuid": f"GPU-{n}"}
        for n in ("1111-aaaa", "2222-bbbb")
    ]  # fmt: skip
    assert "gpu_reason" not in record


def test_failing_nvidia_smi_gives_a_reason(fake_smi: Path) -> None:
    _script(fake_smi, 'echo "NVIDIA-SMI has failed because it couldn\'t communicate"; exit 9\n')
    record = capture_hardware()
    assert record["captured"] is True
    assert record["gpus"] == []
    assert "exit 9" in str(record["gpu_reason"])
    assert "couldn't communicate" in str(record["gpu_reason"])


def test_hanging_nvidia_smi_times_out_with_a_reason(fake_smi: Path) -> None:
    _script(fake_smi, "sleep 30\n")
    record = capture_hardware(gpu_timeout_s=0.3)
    assert record["captured"] is True
    assert record["gpus"] == []
    assert record["gpu_reason"] == "nvidia-smi did not answer within 0.3 s"


def test_nvidia_smi_without_gpus_says_so(fake_smi: Path) -> None:
    _script(fake_smi, "exit 0\n")
    record = capture_hardware()
    assert record["gpus"] == []
    assert record["gpu_reason"] == "nvidia-smi lists no GPU"
