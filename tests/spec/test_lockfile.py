"""keel.lock: deterministic, diff-friendly TOML that reads back equal; bad files name the line."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from keel.errors import UserError
from keel.model.manifest import ParamValue
from keel.spec.lockfile import (
    HEADER,
    CodeState,
    EnvironmentState,
    ExperimentState,
    InputState,
    Lock,
    dump_lock,
    thread_vars,
    write_lock,
)
from keel.spec.lockread import parse_lock, read_lock

ENV = EnvironmentState(
    python_implementation="CPython",
    python_version="3.11.7",
    platform="Linux-6.1-x86_64",
    packages={"numpy": "1.26.4", "click": "8.1.7"},
    lock_files={"requirements.txt": "blake3:" + "a" * 64},
    threads={"OMP_NUM_THREADS": "1"},
)


def _experiment(name: str = "train", **changes: object) -> ExperimentState:
    state = ExperimentState(
        name=name,
        profile="dev",
        params={
            "lr": ParamValue(value=0.1, source="catalog"),
            "epochs": ParamValue(value=5, source="experiment"),
            "layers": ParamValue(value=[64, 32], source="profile"),
            "mode": ParamValue(value="fast", source="cli"),
            "nothing": ParamValue(value=[1, None], source="catalog"),
        },
        seed=42,
        command="python train.py --lr {lr}",
        inputs=(  # sorted by path, as keel.lock keeps them
            InputState(
                path="data/images", kind="dir", digest="blake3:" + "c" * 64, size=9, files=3
            ),
            InputState(path="data/points.csv", kind="file", digest="blake3:" + "b" * 64, size=12),
        ),
        environment=ENV,
        code=CodeState(commit="f" * 40, dirty=False),
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def _lock(*experiments: ExperimentState) -> Lock:
    return Lock(experiments={e.name: e for e in experiments}, keel_version="0.1.0")


def test_lock_round_trips_every_field() -> None:
    lock = _lock(_experiment(), _experiment("fn", command=None, entrypoint="funcs:train"))
    back = parse_lock(dump_lock(lock))
    assert back == lock


def test_dump_is_deterministic_sorted_and_starts_with_the_header() -> None:
    one = dump_lock(_lock(_experiment("b"), _experiment("a")))
    two = dump_lock(_lock(_experiment("a"), _experiment("b")))
    assert one == two
    assert one.startswith(HEADER)
    body = one.removeprefix(HEADER)
    assert body.startswith("[keel]\nlock_format = 1\n")
    headers = [line for line in body.splitlines() if line.startswith("[experiments.")]
    assert headers.index("[experiments.a]") < headers.index("[experiments.b]")
    assert '[experiments.a.inputs."data/points.csv"]' in headers


def test_experiments_sharing_an_environment_share_one_table() -> None:
    text = dump_lock(_lock(_experiment("a"), _experiment("b")))
    data = tomllib.loads(text)
    assert list(data["environments"]) == [ENV.fingerprint]
    assert data["experiments"]["a"]["environment"] == ENV.fingerprint
    other = replace(ENV, packages={**ENV.packages, "numpy": "2.0.0"})
    data = tomllib.loads(dump_lock(_lock(_experiment("a"), _experiment("b", environment=other))))
    assert len(data["environments"]) == 2


def test_values_toml_cannot_hold_are_kept_as_json() -> None:
    data = tomllib.loads(dump_lock(_lock(_experiment())))
    assert data["experiments"]["train"]["params"]["nothing"] == {
        "json": "[1, null]",
        "source": "catalog",
    }


def test_the_fingerprint_changes_with_any_environment_fact() -> None:
    assert ENV.fingerprint == replace(ENV).fingerprint
    for change in (
        {"python_version": "3.12.0"},
        {"packages": {"numpy": "2.0.0"}},
        {"threads": {}},
        {"lock_files": {}},
    ):
        assert replace(ENV, **change).fingerprint != ENV.fingerprint  # type: ignore[arg-type]


def test_write_then_read_from_disk(tmp_path: Path) -> None:
    lock = _lock(_experiment())
    write_lock(tmp_path / "keel.lock", lock)
    assert read_lock(tmp_path / "keel.lock") == lock


def test_thread_vars_keeps_only_thread_counts() -> None:
    env = {"OMP_NUM_THREADS": "2", "LANG": "C", "VECLIB_MAXIMUM_THREADS": "1", "TZ": "UTC"}
    assert thread_vars(env) == {"OMP_NUM_THREADS": "2", "VECLIB_MAXIMUM_THREADS": "1"}


def test_environment_from_a_facet_that_was_not_captured_is_none() -> None:
    assert EnvironmentState.from_facet({"captured": False, "reason": "x"}) is None
    facet = {"captured": True, "python": {"version": "3.11"}, "packages": {"captured": False}}
    assert EnvironmentState.from_facet(facet) is None  # type: ignore[arg-type]


def test_missing_lock_says_to_run_keel_lock(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no keel.lock in .*: run `keel lock` first"):
        read_lock(tmp_path / "keel.lock")


def _error(text: str) -> str:
    with pytest.raises(UserError) as caught:
        parse_lock(text)
    message = str(caught.value)
    assert "\n" not in message
    assert "re-create it with `keel lock`" in message
    return message


def test_corrupt_toml_names_line_and_column() -> None:
    good = dump_lock(_lock(_experiment()))
    lines = good.splitlines()
    broken = lines.index("[experiments.train]") + 2
    lines[broken - 1] = "seed = = 4"
    message = _error("\n".join(lines))
    assert message.startswith(f"keel.lock: line {broken}, column ")


def test_hand_edited_wrong_type_names_the_key_and_its_line() -> None:
    lines = dump_lock(_lock(_experiment())).splitlines()
    at = lines.index("seed = 42")
    lines[at] = 'seed = "forty-two"'
    message = _error("\n".join(lines))
    assert f"line {at + 1}: experiments.train.seed: should be an integer" in message


def test_hand_edited_missing_value_names_the_table() -> None:
    text = dump_lock(_lock(_experiment()))
    lines = text.splitlines()
    header = lines.index("[experiments.train.params.lr]")
    assert lines[header + 2] == "value = 0.1"
    del lines[header + 2]
    message = _error("\n".join(lines))
    assert f"line {header + 1}: experiments.train.params.lr: has no value" in message


def test_unknown_environment_reference_is_reported() -> None:
    text = dump_lock(_lock(_experiment())).replace(
        f'environment = "{ENV.fingerprint}"', 'environment = "nope"'
    )
    assert "names environment 'nope'" in _error(text)


def test_a_lock_from_a_newer_keel_says_to_upgrade() -> None:
    text = dump_lock(_lock(_experiment())).replace("lock_format = 1", "lock_format = 99")
    assert "upgrade keel" in _error(text)


def test_not_utf8_names_the_line() -> None:
    raw = dump_lock(_lock(_experiment())).encode() + b"\n# \xff\n"
    with pytest.raises(UserError, match=r"line \d+: not UTF-8"):
        parse_lock(raw)


def test_a_file_without_the_header_table_is_refused() -> None:
    assert "keel: missing table" in _error("[experiments]\n")
