"""Data drift statistics on known distributions, schema evolution, and the stored profile form."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from keel.compare.datadrift import (
    DataDiff,
    DriftStatus,
    FileEntry,
    FilesDiff,
    compare_columns,
    compare_files,
    compare_profiles,
    compare_schema,
    compare_tables,
    psi,
    require_numpy,
)
from keel.compare.schema import (
    ColumnProfile,
    DataProfile,
    SchemaChangeKind,
    TableProfile,
    compare_schemas,
    merge_schemas,
)
from keel.errors import MissingExtra, UserError
from keel.ops.dataprofile import numeric_profile

SEED = 20240601


def _normal(shift: float = 0.0, *, n: int = 100_000, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, n)


def _numbers(values: np.ndarray, *, edges: tuple[float, ...] | None = None) -> ColumnProfile:
    return numeric_profile(values.astype(float), dtype="float", edges=edges)


def _edges(profile: ColumnProfile) -> tuple[float, ...]:
    assert profile.histogram is not None
    return profile.histogram.edges


def _categories(
    counts: dict[str, int], *, nulls: int = 0, distinct: int | None = None
) -> ColumnProfile:
    top = tuple(sorted(counts.items(), key=lambda p: (-p[1], p[0])))
    return ColumnProfile(
        dtype="str",
        count=sum(counts.values()) if distinct is None else sum(counts.values()) + 1000,
        nulls=nulls,
        distinct=len(counts) if distinct is None else distinct,
        top=top,
    )


def _table(
    path: str = "t.csv", digest: str = "blake3:" + "0" * 64, **columns: ColumnProfile
) -> TableProfile:
    rows = max((c.count + c.nulls for c in columns.values()), default=0)
    return TableProfile(path=path, format="csv", digest=digest, rows=rows, columns=columns)


# -- PSI and KS -----------------------------------------------------------------------------


def test_psi_of_identical_shares_is_zero_and_of_known_shares_matches_the_formula() -> None:
    assert psi([0.25, 0.25, 0.5], [0.25, 0.25, 0.5]) == 0.0
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)


def test_an_empty_bin_makes_psi_large_but_finite() -> None:
    value = psi([0.5, 0.5], [1.0, 0.0])
    assert math.isfinite(value) and value > 2


def test_identical_numeric_columns_have_zero_psi_and_ks_and_are_stable() -> None:
    values = _normal()
    drift = compare_columns("x", _numbers(values), _numbers(values))
    assert (drift.psi, drift.ks, drift.status) == (0.0, 0.0, DriftStatus.STABLE)
    assert drift.reasons == ()


def test_a_normal_shifted_by_one_sd_is_drifted_with_ks_near_its_true_value() -> None:
    before = _numbers(_normal(0.0))
    after = _numbers(_normal(1.0, seed=SEED + 1), edges=_edges(before))
    drift = compare_columns("x", before, after)
    true_ks = math.erf(0.5 / math.sqrt(2))  # 2·Φ(0.5) − 1 for two unit normals one sd apart
    assert drift.ks == pytest.approx(true_ks, abs=0.02)
    assert drift.psi is not None and drift.psi > 0.5
    assert drift.status is DriftStatus.DRIFTED
    assert drift.reasons[0].startswith("PSI ") and drift.reasons[1].startswith("KS 0.3")
    assert drift.ks_exact is False


def test_a_new_sample_of_the_same_distribution_is_stable() -> None:
    before = _numbers(_normal())
    after = _numbers(_normal(seed=SEED + 7), edges=_edges(before))
    drift = compare_columns("x", before, after)
    assert drift.psi is not None and drift.psi < 0.01
    assert drift.ks is not None and drift.ks < 0.02
    assert drift.status is DriftStatus.STABLE


def test_psi_read_off_percentiles_is_close_to_psi_over_shared_bins() -> None:
    before = _numbers(_normal())
    shifted = _normal(0.3, seed=SEED + 3)
    same_bins = compare_columns("x", before, _numbers(shifted, edges=_edges(before)))
    own_bins = compare_columns("x", before, _numbers(shifted))
    assert same_bins.psi is not None and own_bins.psi is not None
    assert own_bins.psi == pytest.approx(same_bins.psi, abs=0.01)
    assert own_bins.ks == pytest.approx(same_bins.ks)


def test_columns_with_few_values_get_exact_ks_from_their_counts() -> None:
    before = _numbers(np.repeat([0.0, 1.0], [50, 50]))
    after = _numbers(np.repeat([0.0, 1.0], [30, 70]))
    drift = compare_columns("flag", before, after)
    assert drift.ks_exact is True
    assert drift.ks == pytest.approx(0.2)
    assert [(s.value, s.old, s.new) for s in drift.shifts] == [(0.0, 0.5, 0.3), (1.0, 0.5, 0.7)]


def test_a_psi_between_point_one_and_point_two_is_moderate() -> None:
    drift = compare_columns("c", _categories({"a": 50, "b": 50}), _categories({"a": 33, "b": 67}))
    assert drift.psi == pytest.approx(0.1204, abs=1e-3)
    assert drift.status is DriftStatus.MODERATE and drift.reasons == ()


def test_a_categorical_frequency_shift_names_the_values_that_moved_most() -> None:
    before = _categories({"a": 500, "b": 300, "c": 200})
    after = _categories({"a": 200, "b": 300, "c": 400, "d": 100})
    drift = compare_columns("segment", before, after)
    assert drift.status is DriftStatus.DRIFTED and drift.ks is None
    assert [(s.value, round(s.old, 2), round(s.new, 2)) for s in drift.shifts] == [
        ("a", 0.5, 0.2),
        ("c", 0.2, 0.4),
        ("d", 0.0, 0.1),
    ]


def test_categories_outside_both_top_lists_are_compared_as_one_rest_bucket() -> None:
    # Neither side lists every value (distinct > listed): unlisted values share one bucket.
    before = _categories({"a": 500, "b": 500}, distinct=50)
    after = _categories({"a": 500, "b": 500}, distinct=60)
    assert compare_columns("c", before, after).psi == 0.0


def test_a_change_in_the_share_of_nulls_is_drift_on_its_own() -> None:
    before = _categories({"a": 90}, nulls=10)
    after = _categories({"a": 60}, nulls=40)
    drift = compare_columns("c", before, after)
    assert drift.psi == 0.0
    assert drift.reasons == ("null share 10.0% → 40.0%",)
    assert drift.status is DriftStatus.DRIFTED


def test_an_all_null_column_has_no_statistics() -> None:
    empty = numeric_profile(np.array([np.nan, np.nan]), dtype="float")
    drift = compare_columns("x", empty, empty)
    assert (drift.psi, drift.ks, drift.status) == (None, None, DriftStatus.STABLE)


def test_numeric_profile_counts_nulls_and_infinities_apart_from_values() -> None:
    profile = numeric_profile(np.array([1.0, np.nan, np.inf, 3.0, -np.inf]), dtype="float")
    assert (profile.count, profile.nulls, profile.infinite) == (2, 1, 2)
    assert (profile.min, profile.max, profile.mean) == (1.0, 3.0, 2.0)
    assert (
        profile.quantiles[0] == 1.0
        and profile.quantiles[-1] == 3.0
        and len(profile.quantiles) == 101
    )
    assert profile.histogram is not None and sum(profile.histogram.counts) == 2


def test_numbers_outside_fixed_bins_count_in_the_outer_bins() -> None:
    profile = numeric_profile(np.array([-5.0, 0.5, 1.5, 9.0]), dtype="float", edges=(0.0, 1.0, 2.0))
    assert profile.histogram is not None and profile.histogram.counts == (2, 2)


def test_missing_numpy_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # as if numpy were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'keel\[data\]'"):
        require_numpy()
    with pytest.raises(MissingExtra):
        compare_columns("c", _categories({"a": 1}), _categories({"a": 1}))


# -- schema evolution ---------------------------------------------------------------------


def test_adding_a_nullable_column_is_compatible_and_a_not_nullable_one_breaks() -> None:
    diff = compare_schemas({"a": "int"}, {"a": "int", "b": "float", "c": "str"}, not_nullable={"c"})
    assert [(c.column, c.kind, c.breaking) for c in diff.changes] == [
        ("b", SchemaChangeKind.ADDED, False),
        ("c", SchemaChangeKind.ADDED, True),
    ]
    assert [c.message for c in diff.breaking] == [
        "column 'c' added (str, not nullable): earlier rows have no value for it"
    ]


def test_dropping_a_column_or_changing_its_dtype_is_breaking() -> None:
    diff = compare_schemas({"a": "int", "b": "str", "c": "int"}, {"a": "float", "c": "int"})
    assert [c.message for c in diff.breaking] == [
        "column 'a' dtype changed: int → float",
        "column 'b' dropped (was str)",
    ]
    assert not compare_schemas({"a": "int"}, {"a": "int"})


def test_a_dropped_and_an_added_column_with_the_same_content_are_a_rename() -> None:
    values = numeric_profile(np.arange(10.0), dtype="float")
    other = numeric_profile(np.arange(5.0), dtype="float")
    old = DataProfile(tables=(_table(age=values, score=other),))
    new = DataProfile(tables=(_table(age_years=values, score=other),))
    diff = compare_schema(old, new)
    assert [(c.kind, c.column, c.renamed_to, c.breaking) for c in diff.changes] == [
        (SchemaChangeKind.RENAMED, "age", "age_years", True)
    ]
    assert diff.changes[0].message == "column 'age' renamed to 'age_years' (float)"


def test_merged_schemas_join_conflicting_dtypes() -> None:
    assert merge_schemas([{"a": "int", "b": "str"}, {"a": "float"}]) == {
        "a": "float|int",
        "b": "str",
    }


# -- versions ------------------------------------------------------------------------------


def test_files_are_matched_by_path() -> None:
    old = [FileEntry(path="a", digest="d1", size=1), FileEntry(path="b", digest="d2", size=2),
           FileEntry(path="c", digest="d3", size=3)]  # fmt: skip
    new = [FileEntry(path="a", digest="d1", size=1), FileEntry(path="b", digest="d9", size=4),
           FileEntry(path="d", digest="d4", size=5)]  # fmt: skip
    diff = compare_files(old, new)
    assert [f.path for f in diff.added] == ["d"] and [f.path for f in diff.removed] == ["c"]
    assert [(a.digest, b.digest) for a, b in diff.changed] == [("d2", "d9")]
    assert diff.unchanged == 1


def test_the_only_table_of_each_version_is_compared_whatever_its_name() -> None:
    column = _categories({"a": 1})
    old = DataProfile(tables=(_table("sales-2023.csv", a=column),))
    new = DataProfile(tables=(_table("sales-2024.csv", a=column),))
    tables, added, removed = compare_profiles(old, new)
    assert [(t.old_path, t.path) for t in tables] == [("sales-2023.csv", "sales-2024.csv")]
    assert (added, removed) == ((), ())
    assert tables[0].unchanged is True


def test_tables_of_folders_pair_by_path() -> None:
    column = _categories({"a": 1})
    old = DataProfile(tables=(_table("a.csv", a=column), _table("b.csv", a=column)))
    new = DataProfile(tables=(_table("b.csv", a=column), _table("c.csv", a=column)))
    tables, added, removed = compare_profiles(old, new)
    assert [t.path for t in tables] == ["b.csv"] and added == ("c.csv",) and removed == ("a.csv",)


def test_a_diff_reports_rows_schema_drift_and_thresholds_as_json() -> None:
    before = _table(x=_numbers(_normal()), kept=_categories({"a": 1}))
    after = _table(
        digest="blake3:" + "1" * 64, x=_numbers(_normal(2.0)), added=_categories({"b": 1})
    )
    tables, _, _ = compare_profiles(DataProfile(tables=(before,)), DataProfile(tables=(after,)))
    diff = DataDiff(name="d", old="d@1", new="d@2", files=FilesDiff(), tables=tables)
    data = diff.to_json()
    assert data["drifted"] == [{"table": "t.csv", "column": "x"}]
    assert data["thresholds"] == {
        "psi_moderate": 0.1, "psi_drifted": 0.2, "ks_drifted": 0.1, "null_share_drifted": 0.1
    }  # fmt: skip
    tables_json = data["tables"]
    assert isinstance(tables_json, list) and isinstance(tables_json[0], dict)
    table = tables_json[0]
    assert table["rows"] == {"old": 100_000, "new": 100_000, "change": 0}
    assert [c["message"] for c in table["schema"]["changes"]] == [
        "column 'kept' dropped (was str)",
        "column 'added' added (str)",
    ]
    column = table["columns"][0]
    assert set(column) == {
        "column", "dtype", "status", "psi", "ks", "ks_exact", "null_share", "reasons", "old",
        "new", "shifts",
    }  # fmt: skip
    assert column["status"] == "drifted" and column["old"]["count"] == 100_000


def test_compare_tables_marks_a_table_with_the_same_digest_unchanged() -> None:
    table = _table(x=_numbers(_normal(n=100)))
    assert compare_tables(table, table).unchanged is True


# -- the stored form ----------------------------------------------------------------------


def test_a_profile_round_trips_through_its_stored_form() -> None:
    profile = DataProfile(
        tables=(_table(x=_numbers(np.array([1.0, 2.0, np.nan, np.inf])), s=_categories({"a": 2})),)
    )
    assert DataProfile.from_json(profile.to_json(), where="p") == profile


def test_a_profile_in_another_format_or_damaged_is_refused() -> None:
    with pytest.raises(UserError, match=r"p is not a data profile in format 1 \(found 7\)"):
        DataProfile.from_json({"profile_format": 7, "tables": []}, where="p")
    with pytest.raises(UserError, match=r"p is a damaged data profile .*keel verify"):
        DataProfile.from_json({"profile_format": 1, "tables": [{"path": "x"}]}, where="p")
