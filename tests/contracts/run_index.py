"""The behaviour every RunIndex must have. Subclass and provide an ``index`` fixture (empty)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from keel.base.canonical import JsonValue
from keel.model.run import RunStatus, RunSummary
from keel.store.meta.base import RunIndex, RunQuery


def make_summary(run_id: str, **changes: Any) -> RunSummary:
    """A complete run summary; ``changes`` override any field."""
    base = RunSummary(
        id=run_id,
        project="demo",
        experiment="train",
        status=RunStatus.SUCCEEDED,
        created_at=f"2024-05-01T12:00:{int(run_id[-2:], 36) % 60:02d}.000000Z",
        ended_at="2024-05-01T13:00:00.000000Z",
        duration_s=12.5,
        manifest=f"blake3:{'0' * 62}{run_id[-2:]}",
        profile="dev",
        why="a reason",
        host="box",
        user="ada",
        pid=4242,
        git_commit="c0ffee",
        git_dirty=False,
        params={"lr": 0.1, "layers": 3, "name": "adam"},
        metrics={"acc": 0.9},
        tags=("baseline",),
    )
    return dataclasses.replace(base, **changes)


def ids(runs: list[RunSummary]) -> list[str]:
    return [r.id for r in runs]


def at(second: int) -> str:
    return f"2024-06-01T00:00:{second:02d}.000000Z"


class RunIndexContract:
    """Conformance suite for :class:`keel.store.meta.base.RunIndex`."""

    # -- writing and reading back ------------------------------------------------------------

    def test_upsert_then_get_returns_an_equal_summary(self, index: RunIndex) -> None:
        summary = make_summary(
            "0aaaaaaaaa01",
            params={
                "lr": 0.1,
                "n": 3,
                "opt": {"name": "adam", "betas": [0.9, 0.99]},
                "x": None,
                "flag": True,
                "big": 1.0,
                "text": "ünïcode",
            },
            metrics={"acc": 0.93, "loss": 1e-12, "steps": 100.0},
            why=None,
            manifest=None,
            pid=None,
            git_commit=None,
            git_dirty=None,
            ended_at=None,
            duration_s=None,
            status=RunStatus.RUNNING,
        )
        index.upsert([summary])
        got = index.get(summary.id)
        assert got == summary
        assert got is not None and isinstance(got.params["big"], float)
        assert isinstance(got.status, RunStatus)

    def test_get_of_an_unknown_id_is_none(self, index: RunIndex) -> None:
        assert index.get("nope") is None

    def test_upsert_replaces_the_row_and_all_its_children(self, index: RunIndex) -> None:
        index.upsert([make_summary("0aaaaaaaaa01", params={"a": 1, "b": 2}, tags=("x", "y"))])
        replaced = make_summary(
            "0aaaaaaaaa01", status=RunStatus.FAILED, params={"a": 5}, metrics={}, tags=("z",)
        )
        index.upsert([replaced])
        assert index.get("0aaaaaaaaa01") == replaced
        assert index.query(RunQuery(tags=("x",))) == []
        assert index.query(RunQuery(params={"b": 2})) == []

    def test_the_last_of_duplicate_ids_in_one_upsert_wins(self, index: RunIndex) -> None:
        first, last = make_summary("0aaaaaaaaa01"), make_summary("0aaaaaaaaa01", why="later")
        index.upsert([first, last])
        assert index.get("0aaaaaaaaa01") == last

    def test_upsert_of_nothing_is_fine(self, index: RunIndex) -> None:
        index.upsert([])
        assert index.ids_with_manifest() == {}

    def test_many_runs_in_one_upsert(self, index: RunIndex) -> None:
        runs = [make_summary(f"0bbbbbbb{i:04d}") for i in range(1200)]
        index.upsert(runs)
        assert len(index.ids_with_manifest()) == 1200
        assert len(index.query(RunQuery(params={"lr": 0.1}))) == 1200

    def test_tags_come_back_deduplicated_and_sorted(self, index: RunIndex) -> None:
        index.upsert([make_summary("0aaaaaaaaa01", tags=("b", "a", "b"))])
        got = index.get("0aaaaaaaaa01")
        assert got is not None and got.tags == ("a", "b")

    def test_a_nan_metric_round_trips_and_sorts_as_missing(self, index: RunIndex) -> None:
        index.upsert(
            [
                make_summary("0aaaaaaaaa01", metrics={"loss": math.nan}),
                make_summary("0aaaaaaaaa02", metrics={"loss": 2.0}),
            ]
        )
        got = index.get("0aaaaaaaaa01")
        assert got is not None and math.isnan(got.metrics["loss"])
        order = index.query(RunQuery(sort_metric="loss", descending=False))
        assert ids(order) == ["0aaaaaaaaa02", "0aaaaaaaaa01"]

    # -- lookups -----------------------------------------------------------------------------

    def test_find_prefix_returns_matches_in_id_order_up_to_the_limit(self, index: RunIndex) -> None:
        index.upsert([make_summary(i) for i in ("0abc000003", "0abc000001", "0abd000002", "1x")])
        assert ids(index.find_prefix("0abc")) == ["0abc000001", "0abc000003"]
        assert ids(index.find_prefix("0ab", limit=2)) == ["0abc000001", "0abc000003"]
        assert index.find_prefix("zz") == []

    def test_find_prefix_is_case_sensitive_and_takes_wildcards_literally(
        self, index: RunIndex
    ) -> None:
        index.upsert([make_summary(i) for i in ("0abc000001", "0a_c000002", "0a%c000003")])
        assert index.find_prefix("0ABC") == []
        assert ids(index.find_prefix("0a_")) == ["0a_c000002"]
        assert ids(index.find_prefix("0a%")) == ["0a%c000003"]

    def test_latest_is_the_newest_run_overall_or_of_an_experiment(self, index: RunIndex) -> None:
        assert index.latest() is None
        index.upsert(
            [
                make_summary("0aaaaaaaaa01", created_at=at(1), experiment="train"),
                make_summary("0aaaaaaaaa02", created_at=at(3), experiment="eval"),
                make_summary("0aaaaaaaaa03", created_at=at(2), experiment="train"),
            ]
        )
        latest = index.latest()
        assert latest is not None and latest.id == "0aaaaaaaaa02"
        latest_train = index.latest("train")
        assert latest_train is not None and latest_train.id == "0aaaaaaaaa03"
        assert index.latest("missing") is None

    def test_latest_breaks_a_created_at_tie_by_id(self, index: RunIndex) -> None:
        index.upsert([make_summary(i, created_at=at(5)) for i in ("0aaaaaaaaa02", "0aaaaaaaaa01")])
        latest = index.latest()
        assert latest is not None and latest.id == "0aaaaaaaaa02"

    def test_ids_with_manifest_maps_every_run(self, index: RunIndex) -> None:
        index.upsert([make_summary("0aaaaaaaaa01"), make_summary("0aaaaaaaaa02", manifest=None)])
        assert index.ids_with_manifest() == {
            "0aaaaaaaaa01": f"blake3:{'0' * 62}01",
            "0aaaaaaaaa02": None,
        }

    def test_clear_removes_every_run(self, index: RunIndex) -> None:
        index.upsert([make_summary("0aaaaaaaaa01"), make_summary("0aaaaaaaaa02")])
        index.clear()
        assert index.ids_with_manifest() == {}
        assert index.get("0aaaaaaaaa01") is None
        index.upsert([make_summary("0aaaaaaaaa01")])
        assert index.get("0aaaaaaaaa01") is not None

    # -- queries -----------------------------------------------------------------------------

    @pytest.fixture
    def populated(self, index: RunIndex) -> RunIndex:
        index.upsert(
            [
                make_summary(
                    "0aaaaaaaaa01",
                    created_at=at(1),
                    experiment="train",
                    params={"lr": 0.1, "opt": "adam", "flag": True, "dims": [1, 2]},
                    metrics={"acc": 0.7},
                    tags=("baseline", "gpu"),
                ),
                make_summary(
                    "0aaaaaaaaa02",
                    created_at=at(2),
                    experiment="train",
                    status=RunStatus.FAILED,
                    params={"lr": 1, "opt": "0.1"},
                    metrics={"acc": 0.9},
                    tags=("gpu",),
                ),
                make_summary(
                    "0aaaaaaaaa03",
                    created_at=at(3),
                    experiment="eval",
                    params={"lr": 0.01, "opt": "ADAM", "flag": False},
                    metrics={},
                    tags=(),
                ),
                make_summary(
                    "0aaaaaaaaa04",
                    created_at=at(4),
                    experiment="train",
                    params={"lr": 1.0, "opt": "sgd"},
                    metrics={"acc": 0.8},
                    tags=("baseline",),
                ),
            ]
        )
        return index

    def test_query_without_filters_lists_newest_first(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery())) == [
            "0aaaaaaaaa04",
            "0aaaaaaaaa03",
            "0aaaaaaaaa02",
            "0aaaaaaaaa01",
        ]

    def test_query_ascending_without_a_metric_lists_oldest_first(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery(descending=False, limit=2))) == [
            "0aaaaaaaaa01",
            "0aaaaaaaaa02",
        ]

    def test_query_filters_by_experiment_and_status(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery(experiment="eval"))) == ["0aaaaaaaaa03"]
        assert ids(populated.query(RunQuery(status=RunStatus.FAILED))) == ["0aaaaaaaaa02"]
        assert ids(populated.query(RunQuery(experiment="train", status=RunStatus.SUCCEEDED))) == [
            "0aaaaaaaaa04",
            "0aaaaaaaaa01",
        ]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            pytest.param({"lr": 0.1}, ["0aaaaaaaaa01"], id="float"),
            pytest.param({"lr": "0.1"}, ["0aaaaaaaaa01"], id="float-spelled-as-string"),
            pytest.param({"lr": 1}, ["0aaaaaaaaa04", "0aaaaaaaaa02"], id="int-matches-float"),
            pytest.param({"lr": "1.0"}, ["0aaaaaaaaa04", "0aaaaaaaaa02"], id="spelled-1.0"),
            pytest.param({"lr": "1e-2"}, ["0aaaaaaaaa03"], id="exponent-spelling"),
            pytest.param({"opt": "adam"}, ["0aaaaaaaaa01"], id="string-exact"),
            pytest.param({"opt": "Adam"}, [], id="string-case-sensitive"),
            pytest.param({"opt": "0.1"}, ["0aaaaaaaaa02"], id="numeric-looking-string"),
            pytest.param({"flag": True}, ["0aaaaaaaaa01"], id="bool"),
            pytest.param({"flag": "false"}, ["0aaaaaaaaa03"], id="bool-spelled"),
            pytest.param({"flag": 1}, [], id="bool-is-not-a-number"),
            pytest.param({"dims": [1, 2]}, ["0aaaaaaaaa01"], id="list"),
            pytest.param({"lr": 1, "opt": "sgd"}, ["0aaaaaaaaa04"], id="all-must-match"),
            pytest.param({"missing": 1}, [], id="absent-param"),
        ],
    )
    def test_query_filters_by_param_value(
        self, populated: RunIndex, params: dict[str, JsonValue], expected: list[str]
    ) -> None:
        assert ids(populated.query(RunQuery(params=params))) == expected

    def test_query_needs_every_tag(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery(tags=("gpu",)))) == ["0aaaaaaaaa02", "0aaaaaaaaa01"]
        assert ids(populated.query(RunQuery(tags=("gpu", "baseline")))) == ["0aaaaaaaaa01"]
        assert populated.query(RunQuery(tags=("gpu", "nope"))) == []

    def test_query_sorts_by_metric_descending_with_missing_last(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery(sort_metric="acc"))) == [
            "0aaaaaaaaa02",
            "0aaaaaaaaa04",
            "0aaaaaaaaa01",
            "0aaaaaaaaa03",
        ]

    def test_query_sorts_by_metric_ascending_with_missing_last(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery(sort_metric="acc", descending=False))) == [
            "0aaaaaaaaa01",
            "0aaaaaaaaa04",
            "0aaaaaaaaa02",
            "0aaaaaaaaa03",
        ]

    def test_metric_ties_list_the_newest_run_first(self, index: RunIndex) -> None:
        index.upsert(
            [
                make_summary("0aaaaaaaaa01", created_at=at(1), metrics={"acc": 0.5}),
                make_summary("0aaaaaaaaa02", created_at=at(2), metrics={"acc": 0.5}),
                make_summary("0aaaaaaaaa03", created_at=at(3), metrics={"acc": 0.1}),
            ]
        )
        for descending in (True, False):
            found = ids(index.query(RunQuery(sort_metric="acc", descending=descending)))
            assert found[:2] == (
                ["0aaaaaaaaa02", "0aaaaaaaaa01"] if descending else ["0aaaaaaaaa03", "0aaaaaaaaa02"]
            )

    def test_query_limit_applies_after_filter_and_sort(self, populated: RunIndex) -> None:
        q = RunQuery(experiment="train", sort_metric="acc", limit=2)
        assert ids(populated.query(q)) == ["0aaaaaaaaa02", "0aaaaaaaaa04"]
        assert populated.query(RunQuery(limit=0)) == []

    def test_query_by_an_unknown_metric_keeps_newest_first(self, populated: RunIndex) -> None:
        assert ids(populated.query(RunQuery(sort_metric="nope", limit=2))) == [
            "0aaaaaaaaa04",
            "0aaaaaaaaa03",
        ]

    def test_query_results_carry_their_params_metrics_and_tags(self, populated: RunIndex) -> None:
        (first,) = populated.query(RunQuery(params={"opt": "adam"}))
        assert first.params == {"lr": 0.1, "opt": "adam", "flag": True, "dims": [1, 2]}
        assert first.metrics == {"acc": 0.7}
        assert first.tags == ("baseline", "gpu")
