"""The environment facet: allow-listed variables, lock files, package cache, BLAS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.base.digest import hash_bytes
from keel.capture import environment
from keel.capture.environment import (
    ENV_ALLOWLIST,
    REDACTED,
    allowed_env,
    capture_environment,
    container_hints,
    environment_fingerprint,
    is_secret_name,
)


@pytest.fixture
def probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts how often the slow package/BLAS probe runs."""
    calls: list[str] = []
    real = environment._probe_interpreter

    def counting(exe: str, env: object) -> object:
        calls.append(exe)
        return real(exe, env)  # type: ignore[arg-type]

    monkeypatch.setattr(environment, "_probe_interpreter", counting)
    return calls


def test_only_allow_listed_variables_are_recorded(tmp_path: Path) -> None:
    environ = {
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "HOME": "/home/me",
        "OMP_NUM_THREADS": "4",
        "MY_API_TOKEN": "tok-123",
        "MYAPP_MODE": "fast",
        "MYAPP_PASSWORD": "pw",
    }
    record = capture_environment(
        project_root=tmp_path, environ=environ, env_allow=("MY_API_TOKEN", "MYAPP_*")
    )
    assert record["env_vars"] == {
        "MYAPP_MODE": "fast",
        "MYAPP_PASSWORD": REDACTED,
        "MY_API_TOKEN": REDACTED,
        "OMP_NUM_THREADS": "4",
    }
    text = canonical_json(record).decode()
    for secret in ("very-secret", "tok-123", "AWS_SECRET_ACCESS_KEY", "/home/me", 'pw"'):
        assert secret not in text


def test_allowed_env_returns_real_values_for_the_child() -> None:
    environ = {"MY_API_TOKEN": "tok-123", "TZ": "UTC", "UNLISTED": "x"}
    assert allowed_env(environ, ["MY_API_TOKEN"]) == {"MY_API_TOKEN": "tok-123", "TZ": "UTC"}


def test_unset_variables_are_absent_and_the_allowlist_is_complete() -> None:
    assert allowed_env({}) == {}
    for name in ("OMP_NUM_THREADS", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES", "CONDA_DEFAULT_ENV"):
        assert name in ENV_ALLOWLIST
    assert not any(is_secret_name(n) for n in ENV_ALLOWLIST)


@pytest.mark.parametrize(
    "name",
    ["GITHUB_TOKEN", "db_password", "SSH_PASSWD", "OPENAI_API_KEY", "GCP_CREDENTIALS",
     "BASIC_AUTH", "client_secret"],
)  # fmt: skip
def test_secret_looking_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


def test_lock_files_in_the_project_root_are_digested(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("lock")
    (tmp_path / "requirements-dev.txt").write_text("pytest\n")
    (tmp_path / "environment.yml").write_text("name: x\n")
    (tmp_path / "notes.txt").write_text("not a lock file")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "poetry.lock").write_text("deeper")
    record = capture_environment(project_root=tmp_path, environ={})
    assert record["lock_files"] == {
        "environment.yml": str(hash_bytes(b"name: x\n")),
        "requirements-dev.txt": str(hash_bytes(b"pytest\n")),
        "uv.lock": str(hash_bytes(b"lock")),
    }


def test_packages_include_pytest_with_its_version(tmp_path: Path) -> None:
    record = capture_environment(project_root=tmp_path, environ=dict(os.environ))
    packages = record["packages"]
    assert isinstance(packages, dict)
    assert packages["pytest"] == pytest.__version__
    assert record["packages_digest"] == str(hash_bytes(canonical_json(packages)))
    python = record["python"]
    assert isinstance(python, dict)
    assert python["executable"] == sys.executable
    assert python["version"] == ".".join(map(str, sys.version_info[:3]))
    assert python["implementation"] == "CPython"
    for key in ("platform", "machine", "os_release", "libc"):
        assert key in python


def test_numpy_blas_runtime_is_described(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    blas = capture_environment(project_root=tmp_path, environ=dict(os.environ))["blas"]
    assert isinstance(blas, dict)
    assert blas["captured"] is True
    pools = blas["threadpools"]
    assert isinstance(pools, list) and pools
    assert {"user_api", "internal_api", "version"} <= set(pools[0])  # type: ignore[arg-type]
    assert "num_threads" not in pools[0]  # type: ignore[operator]


def test_cache_hit_skips_the_probe_and_matches_a_fresh_listing(
    tmp_path: Path, probe_calls: list[str]
) -> None:
    cache = tmp_path / "cache"
    first = capture_environment(project_root=tmp_path, environ=dict(os.environ), cache_dir=cache)
    second = capture_environment(project_root=tmp_path, environ=dict(os.environ), cache_dir=cache)
    assert len(probe_calls) == 1
    assert first == second
    assert len(list(cache.glob("env-*.json"))) == 1


def test_cache_is_invalidated_when_site_packages_change(
    tmp_path: Path, probe_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    site = tmp_path / "venv" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    capture_environment(project_root=tmp_path, environ={}, cache_dir=cache)
    before = environment_fingerprint(environ={})
    (site / "newpkg-1.0.dist-info").mkdir()  # what an install does to site-packages
    os.utime(site, ns=(0, site.stat().st_mtime_ns + 10**9))
    assert environment_fingerprint(environ={}) != before
    capture_environment(project_root=tmp_path, environ={}, cache_dir=cache)
    assert len(probe_calls) == 2


def test_corrupt_cache_file_is_ignored(tmp_path: Path, probe_calls: list[str]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"env-{environment_fingerprint(environ={})}.json").write_text("{not json")
    record = capture_environment(project_root=tmp_path, environ={}, cache_dir=cache)
    assert record["captured"] is True
    assert len(probe_calls) == 1


def test_another_interpreter_is_probed_in_its_own_process(tmp_path: Path) -> None:
    record = capture_environment(project_root=tmp_path, environ={}, python="python3")
    assert record["captured"] is True
    python = record["python"]
    assert isinstance(python, dict) and python["version"]


def test_missing_interpreter_is_not_captured(tmp_path: Path) -> None:
    record = capture_environment(project_root=tmp_path, environ={}, python="no-such-python-x")
    assert record == {"captured": False, "reason": "interpreter 'no-such-python-x' not found"}


def test_interpreter_without_numpy_reports_why(tmp_path: Path) -> None:
    fake = tmp_path / "fakepython"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$2" in *threadpoolctl*) echo \'{"captured": false, "reason": "numpy is not'
        " installed\"}';;\n"
        '*metadata*) echo \'{"python": {"version": "3.0"}, "packages": {}}\';;\n'
        '*) echo \'["fake", "/p", "/p", "3.0", []]\';; esac\n'
    )
    fake.chmod(0o755)
    record = capture_environment(project_root=tmp_path, environ={}, python=str(fake))
    assert record["blas"] == {"captured": False, "reason": "numpy is not installed"}
    assert record["packages"] == {}


def test_crashing_probe_is_reported_and_not_cached(tmp_path: Path) -> None:
    fake = tmp_path / "brokenpython"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$2" in *sys.path\\]*) echo \'["b", "/p", "/p", "3.0", []]\';;\n'
        "*) echo 'Segmentation fault' >&2; exit 139;; esac\n"
    )
    fake.chmod(0o755)
    cache = tmp_path / "cache"
    record = capture_environment(
        project_root=tmp_path, environ={}, python=str(fake), cache_dir=cache
    )
    assert record["captured"] is True
    packages = record["packages"]
    assert isinstance(packages, dict) and packages["captured"] is False
    assert "Segmentation fault" in str(packages["reason"])
    assert not cache.exists() or not list(cache.glob("env-*.json"))


def test_container_hints(tmp_path: Path) -> None:
    (tmp_path / ".dockerenv").touch()
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").write_text('engine="podman"\nimage="quay.io/x:1"\n'
                                                'imageid="abc123"\n')  # fmt: skip
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/kubepods/burstable/pod1\n")
    hints = container_hints({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, fs_root=tmp_path)
    assert hints == {
        "detected": True,
        "hints": ["/.dockerenv", "/run/.containerenv", "cgroup:kubepods",
                  "KUBERNETES_SERVICE_HOST"],
        "image": "quay.io/x:1",
        "image_digest": "abc123",
    }  # fmt: skip
    assert container_hints({}, fs_root=tmp_path / "empty") == {"detected": False, "hints": []}
    declared = container_hints({"KEEL_IMAGE_DIGEST": "sha256:feed"}, fs_root=tmp_path / "empty")
    assert declared["image_digest"] == "sha256:feed"
