"""Contracts checked when a version is added and before a run; profiles; schema evolution; diffs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from keel.base.canonical import loads
from keel.base.digest import Digest, hash_file
from keel.cli.cmd_datadiff import data_check_cmd, data_diff_cmd
from keel.cli.context import Ctx
from keel.compare.drift import Change, Drift, DriftKind, DriftReport
from keel.errors import MissingExtra, UserError, ValidationError
from keel.model.dataset import DatasetVersion
from keel.ops.check import check_drift
from keel.ops.data import add_dataset
from keel.ops.datacheck import check_before_run, check_version, validate_version
from keel.ops.datadiff import add_data_statistics
from keel.ops.dataprofile import load_profile
from keel.ops.lock import lock_experiments
from keel.ops.workspace import Workspace
from keel.spec.lockfile import InputState

MakeWs = Callable[..., Workspace]

CONTRACT = """\
columns:
  age: {dtype: float, min: 0, max: 120, nullable: false}
  income: {dtype: float, min: 0}
  segment: {dtype: str, allowed: [a, b, c]}
  id: {dtype: int, unique: true}
rows: {min: 1, max: 10000000}
"""

GOOD_CSV = "id,age,income,segment\n1,30,100.5,a\n2,41.5,,b\n3,50,20,c\n4,0,0,a\n"


@pytest.fixture
def ws(demo: Path, make_workspace: MakeWs) -> Workspace:
    (demo / "contract.yaml").write_text(CONTRACT)
    return make_workspace(demo)


def _write(ws: Workspace, name: str, text: str) -> Path:
    path = ws.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _validate(ws: Workspace, path: Path, *, contract: bool = True) -> tuple[str | None, str | None]:
    return validate_version(
        ws,
        name="people",
        path=path,
        contract_file=ws.root / "contract.yaml" if contract else None,
        previous=None,
        breaking=None,
    )


def _failures(ws: Workspace, text: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _validate(ws, _write(ws, "people.csv", text))
    return [str(p) for p in caught.value.problems]


def _add(ws: Workspace, text: str, **options: object) -> DatasetVersion:
    path = _write(ws, "people.csv", text)
    return add_dataset(ws, name="people", path=path, **options).version  # type: ignore[arg-type]


# -- the contract at add time --------------------------------------------------------------


def test_data_that_satisfies_every_check_stores_the_contract_and_the_profile(ws: Workspace) -> None:
    contract, profile = _validate(ws, _write(ws, "people.csv", GOOD_CSV))
    assert contract is not None and profile is not None
    stored = loads(ws.objects.get_bytes(Digest.parse(contract)))
    assert isinstance(stored, dict) and stored["contract_format"] == 1
    table = load_profile(ws, profile).tables[0]
    assert (table.path, table.format, table.rows) == ("people.csv", "csv", 4)
    assert table.schema == {"id": "int", "age": "float", "income": "float", "segment": "str"}
    assert list(table.columns) == ["id", "age", "income", "segment"]  # the file's order
    income = table.columns["income"]
    assert (income.count, income.nulls, income.min, income.max) == (3, 1, 0.0, 100.5)
    assert income.histogram is not None and len(income.quantiles) == 101
    assert table.columns["segment"].top == (("a", 2), ("b", 1), ("c", 1))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            "1,,1,a\n2,,1,a\n",
            "people.csv: age: nullable false: 2 nulls (rows 1, 2)",
            id="nullable",
        ),
        pytest.param(
            "1,-1,1,a\n2,5,1,a\n3,-2.5,1,a\n",
            "people.csv: age: min 0: 2 rows fail: -1.0 (row 1), -2.5 (row 3)",
            id="min",
        ),
        pytest.param(
            "1,121,1,a\n",
            "people.csv: age: max 120: 1 row fails: 121.0 (row 1)",
            id="max",
        ),
        pytest.param(
            "1,1,-5,a\n",
            "people.csv: income: min 0: 1 row fails: -5.0 (row 1)",
            id="min-nullable-column",
        ),
        pytest.param(
            "1,1,1,z\n2,1,1,a\n3,1,1,z\n4,1,1,q\n",
            "people.csv: segment: allowed [a, b, c]: 3 rows fail: 'z' (rows 1, 3), 'q' (row 4)",
            id="allowed",
        ),
        pytest.param(
            "7,1,1,a\n8,1,1,a\n7,1,1,b\n",
            "people.csv: id: unique: 2 rows repeat a value: 7 (rows 1, 3)",
            id="unique",
        ),
        pytest.param(
            "1,1,1,a\nx,1,1,a\n3.5,1,1,a\n",
            "people.csv: id: dtype int: 2 values are not an integer: 'x' (row 2), '3.5' (row 3)",
            id="dtype-int",
        ),
        pytest.param(
            "1,old,1,a\n",
            "people.csv: age: dtype float: 1 value is not a number: 'old' (row 1)",
            id="dtype-float",
        ),
        pytest.param(
            "",
            "people.csv: rows: 0 rows; the contract wants at least 1",
            id="rows-min",
        ),
    ],
)
def test_each_failing_check_is_named_with_its_failing_values_and_rows(
    ws: Workspace, rows: str, expected: str
) -> None:
    assert _failures(ws, "id,age,income,segment\n" + rows) == [expected]


def test_every_failure_of_every_column_is_listed_at_once(ws: Workspace) -> None:
    found = _failures(ws, "id,age,income,segment\n1,-4,-3,z\n1,,20,c\n")
    assert found == [
        "people.csv: age: nullable false: 1 null (row 2)",
        "people.csv: age: min 0: 1 row fails: -4.0 (row 1)",
        "people.csv: income: min 0: 1 row fails: -3.0 (row 1)",
        "people.csv: segment: allowed [a, b, c]: 1 row fails: 'z' (row 1)",
        "people.csv: id: unique: 2 rows repeat a value: 1 (rows 1, 2)",
    ]


def test_many_failures_show_the_first_few(ws: Workspace) -> None:
    rows = "".join(f"{i},{-i - 1},1,a\n" for i in range(12))
    (found,) = _failures(ws, "id,age,income,segment\n" + rows)
    assert found == (
        "people.csv: age: min 0: 12 rows fail: -1.0 (row 1), -2.0 (row 2), -3.0 (row 3), "
        "-4.0 (row 4), -5.0 (row 5), ..."
    )


def test_missing_columns_extra_columns_patterns_and_row_maximum(ws: Workspace) -> None:
    _write(ws, "contract.yaml", """\
columns:
  code: {dtype: str, pattern: '^[A-Z]{2}[0-9]$'}
  gone: {dtype: int}
  maybe: {dtype: int, required: false}
rows: {max: 2}
strict: true
""")  # fmt: skip
    found = _failures(ws, "code,extra\nAB1,1\nab2,1\n007,1\n")
    assert found == [
        "people.csv: columns: missing: 'gone'; the contract requires them (or set `required: "
        "false`)",
        "people.csv: columns: not in the contract: 'extra'; the contract is strict: declare "
        "them, or set `strict: false`",
        "people.csv: code: pattern '^[A-Z]{2}[0-9]$': 2 rows fail: 'ab2' (row 2), '007' (row 3)",
        "people.csv: rows: 3 rows; the contract wants at most 2",
    ]


def test_text_columns_keep_their_leading_zeros(ws: Workspace) -> None:
    _write(ws, "contract.yaml", "columns:\n  zip: {dtype: str, allowed: ['02139', '10001']}\n")
    _, profile = _validate(ws, _write(ws, "z.csv", "zip\n02139\n10001\n"))
    assert profile is not None
    assert load_profile(ws, profile).tables[0].columns["zip"].top == (("02139", 1), ("10001", 1))


def test_bool_and_datetime_columns_are_read_from_text(ws: Workspace) -> None:
    _write(ws, "contract.yaml", "columns:\n  ok: {dtype: bool}\n  at: {dtype: datetime}\n")
    _, profile = _validate(
        ws, _write(ws, "t.csv", "ok,at\ntrue,2024-01-01\nFalse,2024-02-01T10:00\n")
    )
    assert profile is not None
    assert load_profile(ws, profile).tables[0].schema == {"ok": "bool", "at": "datetime"}
    found = _failures(ws, "ok,at\nyes,2024-01-01\ntrue,last week\n")
    assert found == [
        "people.csv: ok: dtype bool: 1 value is not true or false: 'yes' (row 1)",
        "people.csv: at: dtype datetime: 1 value is not an ISO 8601 date or time: "
        "'last week' (row 2)",
    ]


# -- files that do not read --------------------------------------------------------------


def test_a_csv_that_does_not_parse_names_its_line(ws: Workspace) -> None:
    found = _failures(ws, "id,age,income,segment\n1,2,3,a\n2,3,4,b,extra\n")
    assert found == [
        "people.csv:3: not valid CSV: expected 4 fields, saw 5; quote fields that contain the "
        "delimiter, a quote or a line break"
    ]


def test_an_unclosed_quote_names_the_line_it_starts_on(ws: Workspace) -> None:
    assert _failures(ws, 'id,age,income,segment\n1,2,3,a\n2,3,4,"b\n') == [
        "people.csv:3: not valid CSV: EOF inside string; quote fields that contain the "
        "delimiter, a quote or a line break"
    ]


def test_a_csv_that_is_not_utf8_names_its_line(ws: Workspace) -> None:
    path = ws.root / "people.csv"
    path.write_bytes(b"id,age,income,segment\n1,2,3,a\n2,3,4,caf\xe9\n")
    with pytest.raises(ValidationError) as caught:
        _validate(ws, path)
    assert str(caught.value) == "people.csv:3: not UTF-8 text; save the file as UTF-8"


def test_an_empty_csv_says_it_needs_a_header(ws: Workspace) -> None:
    assert _failures(ws, "") == [
        "people.csv:1: the file is empty; a CSV table starts with a header line"
    ]


def test_a_file_that_is_not_parquet_is_refused(ws: Workspace) -> None:
    path = _write(ws, "people.parquet", "not parquet")
    with pytest.raises(UserError, match=r"people.parquet is not a readable Parquet file"):
        _validate(ws, path)


# -- Parquet, folders, other data ---------------------------------------------------------


def _parquet(ws: Workspace, name: str, frame: pd.DataFrame) -> Path:
    path = ws.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


def test_parquet_is_checked_and_profiled_like_csv(ws: Workspace) -> None:
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "age": [30.0, 40.0, 50.0], "income": [1.0, None, 2.0],
         "segment": ["a", "b", "c"]}
    )  # fmt: skip
    _, profile = _validate(ws, _parquet(ws, "people.parquet", frame))
    assert profile is not None
    table = load_profile(ws, profile).tables[0]
    assert (table.format, table.rows, table.columns["income"].nulls) == ("parquet", 3, 1)
    frame["segment"] = [1, 2, 3]
    frame["age"] = [30.0, -1.0, 50.0]
    with pytest.raises(ValidationError) as caught:
        _validate(ws, _parquet(ws, "people.parquet", frame))
    assert [str(p) for p in caught.value.problems] == [
        "people.parquet: age: min 0: 1 row fails: -1.0 (row 2)",
        "people.parquet: segment: dtype str: the column holds int values",
    ]


def test_every_table_of_a_folder_is_checked_and_named_by_its_path(ws: Workspace) -> None:
    _write(ws, "people/2023.csv", GOOD_CSV)
    _write(ws, "people/2024/part.csv", "id,age,income,segment\n1,-1,1,a\n")
    _write(ws, "people/README.txt", "not a table")
    with pytest.raises(ValidationError) as caught:
        _validate(ws, ws.root / "people")
    assert [str(p) for p in caught.value.problems] == [
        "2024/part.csv: age: min 0: 1 row fails: -1.0 (row 1)"
    ]
    _write(ws, "people/2024/part.csv", GOOD_CSV)
    _, profile = _validate(ws, ws.root / "people")
    assert profile is not None
    assert [t.path for t in load_profile(ws, profile).tables] == ["2023.csv", "2024/part.csv"]


def test_data_without_a_table_has_no_profile_and_takes_no_contract(ws: Workspace) -> None:
    path = _write(ws, "notes.txt", "hello")
    assert _validate(ws, path, contract=False) == (None, None)
    with pytest.raises(UserError, match=r"people: the contract applies to CSV and Parquet tables"):
        _validate(ws, path)


def test_missing_data_extra_names_what_to_install(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(ws, "people.csv", GOOD_CSV)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if keel[data] were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'keel\[data\]'") as caught:
        _validate(ws, path)
    assert caught.value.code == 8


def test_without_the_data_extra_a_table_without_contract_is_added_unprofiled(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(ws, "people.csv", GOOD_CSV)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if keel[data] were not installed
    version = add_dataset(ws, name="people", path=path).version
    assert (version.contract, version.profile) == (None, None)
    assert version.digest == str(hash_file(path)[0])


def test_importing_the_run_check_and_data_paths_loads_no_data_library() -> None:
    code = (
        "import sys, keel.ops.run, keel.cli.cmd_run, keel.ops.check, keel.ops.datacheck, "
        "keel.ops.dataprofile, keel.ops.datadiff, keel.ops.tables, keel.cli.cmd_datadiff, "
        "keel.report.drift; "
        "print(','.join(m for m in ('pandas', 'pandera', 'pyarrow', 'scipy', 'numpy') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# -- schema evolution through `keel data add` ---------------------------------------------


def test_adding_a_nullable_column_is_compatible(ws: Workspace) -> None:
    first = _add(ws, GOOD_CSV, contract_file=ws.root / "contract.yaml")
    second = _add(ws, "id,age,income,segment,note\n1,30,1,a,\n2,40,2,b,hi\n")
    assert second.contract == first.contract  # the contract is inherited
    assert second.breaking is None and second.profile != first.profile


@pytest.mark.parametrize(
    ("text", "change"),
    [
        pytest.param(
            "id,age,segment\n1,30.5,a\n", "column 'income' dropped (was float)", id="dropped"
        ),
        pytest.param(
            "id,age,earnings,segment\n1,30,100.5,a\n2,41.5,,b\n3,50,20,c\n4,0,0,a\n",
            "column 'income' renamed to 'earnings' (float)",
            id="renamed",
        ),
        pytest.param(
            "id,age,income,segment\n1,30,100,a\n2,41.5,2,b\n",
            "column 'income' dtype changed: float → int",
            id="dtype",
        ),
    ],
)
def test_a_breaking_change_is_refused_without_a_reason_and_recorded_with_one(
    ws: Workspace, text: str, change: str
) -> None:
    _add(ws, GOOD_CSV)
    with pytest.raises(UserError) as caught:
        _add(ws, text)
    assert str(caught.value) == (
        f"people: breaking schema change from the previous version: {change}. If it is "
        'intended, add the version with --breaking "REASON" (the reason is recorded)'
    )
    version = _add(ws, text, breaking="income moved to another table")
    assert version.breaking == "income moved to another table"


def test_a_breaking_change_needs_a_real_reason(ws: Workspace) -> None:
    _add(ws, GOOD_CSV)
    with pytest.raises(UserError, match=r"--breaking needs a reason"):
        _add(ws, "id\n1\n", breaking="  ")


def test_a_new_column_the_contract_refuses_nulls_in_is_breaking(ws: Workspace) -> None:
    _add(ws, GOOD_CSV)
    _write(
        ws,
        "strict.yaml",
        CONTRACT.replace("rows:", "  score: {dtype: float, nullable: false}\nrows:"),
    )
    with_score = "id,age,income,segment,score\n1,30,100.5,a,1\n2,41.5,,b,1\n"
    with pytest.raises(UserError, match=r"column 'score' added \(float, not nullable\)"):
        _add(ws, with_score, contract_file=ws.root / "strict.yaml")


def test_later_versions_are_binned_by_the_first_versions_histogram_edges(ws: Workspace) -> None:
    first = _add(ws, GOOD_CSV)
    second = _add(ws, GOOD_CSV.replace("100.5", "900"))
    assert first.profile is not None and second.profile is not None
    before = load_profile(ws, first.profile).tables[0].columns["income"].histogram
    after = load_profile(ws, second.profile).tables[0].columns["income"].histogram
    assert before is not None and after is not None and before.edges == after.edges


# -- before a run, and `keel data check` ----------------------------------------------------


def test_check_before_run_lists_every_failure_against_the_versions_contract(ws: Workspace) -> None:
    version = _add(ws, GOOD_CSV, contract_file=ws.root / "contract.yaml")
    path = _write(ws, "data/people", "id,age,income,segment\n1,-1,1,a\n")  # a checkout
    with pytest.raises(ValidationError) as caught:
        check_before_run(ws, name="people", version_record=version, path=path)
    assert [str(p) for p in caught.value.problems] == [
        "data/people (dataset people): age: min 0: 1 row fails: -1.0 (row 1)"
    ]
    _write(ws, "data/people", GOOD_CSV)
    check_before_run(ws, name="people", version_record=version, path=path)


def test_check_before_run_without_a_contract_reads_nothing(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _add(ws, GOOD_CSV)
    monkeypatch.setitem(sys.modules, "pandas", None)
    check_before_run(ws, name="people", version_record=version, path=ws.root / "missing.csv")


def test_check_version_reads_the_stored_tables(ws: Workspace) -> None:
    version = _add(ws, GOOD_CSV, contract_file=ws.root / "contract.yaml")
    (ws.root / "people.csv").unlink()
    result = check_version(ws, version)
    assert bool(result) and (result.tables, result.rows) == (1, 4)
    other = add_dataset(ws, name="other", path=_write(ws, "other.csv", "x\n1\n")).version
    with pytest.raises(UserError, match=r"^other@\w+ has no contract to check: give one with"):
        check_version(ws, other)


def _invoke(ws: Workspace, command: object, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args), obj=Ctx(project=ws.root, profile=None))  # type: ignore[arg-type]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_keel_data_check_reports_ok_or_every_failure(ws: Workspace) -> None:
    version = _add(ws, GOOD_CSV, contract_file=ws.root / "contract.yaml")
    code, out = _invoke(ws, data_check_cmd, "people")
    assert (code, out) == (
        0,
        f"ok: people@{version.version} satisfies its contract (1 table(s), 4 rows)\n",
    )
    bad = _write(ws, "bad.csv", "id,age,income,segment\n1,-1,1,a\n")
    code, out = _invoke(ws, data_check_cmd, "people", "--path", str(bad), "--json")
    assert code == 4
    assert json.loads(out)["problems"] == ["bad.csv: age: min 0: 1 row fails: -1.0 (row 1)"]
    with pytest.raises(ValidationError):
        _invoke(ws, data_check_cmd, "people", "--path", str(bad))


# -- `keel data diff` ----------------------------------------------------------------------


def _versions(ws: Workspace) -> tuple[DatasetVersion, DatasetVersion]:
    rng = np.random.default_rng(7)
    n = 2000
    frame = pd.DataFrame({
        "id": np.arange(n), "age": rng.normal(40, 5, n), "income": rng.normal(100, 10, n),
        "segment": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip
    first = add_dataset(ws, name="people", path=_parquet(ws, "people.parquet", frame)).version
    frame["age"] = frame["age"] + 5  # one sd: drifted
    frame["segment"] = rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5])
    frame["score"] = rng.normal(0, 1, n)
    second = add_dataset(ws, name="people", path=_parquet(ws, "people.parquet", frame)).version
    return first, second


def test_keel_data_diff_json_has_files_schema_rows_and_column_drift(ws: Workspace) -> None:
    first, second = _versions(ws)
    code, out = _invoke(ws, data_diff_cmd, first.ref, second.ref, "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {
        "dataset", "old", "new", "files", "schema", "tables", "added_tables", "removed_tables",
        "drifted", "thresholds", "notes",
    }  # fmt: skip
    assert (data["old"], data["new"]) == (first.ref, second.ref)
    assert [c["path"] for c in data["files"]["changed"]] == ["people.parquet"]
    assert data["schema"]["breaking"] is False
    assert data["schema"]["changes"] == [
        {
            "column": "score",
            "change": "added",
            "old": None,
            "new": "float",
            "renamed_to": None,
            "breaking": False,
            "message": "column 'score' added (float)",
        }
    ]
    (table,) = data["tables"]
    assert table["rows"] == {"old": 2000, "new": 2000, "change": 0}
    status = {c["column"]: c["status"] for c in table["columns"]}
    assert status == {"id": "stable", "age": "drifted", "income": "stable", "segment": "drifted"}
    assert data["drifted"] == [
        {"table": "people.parquet", "column": "age"},
        {"table": "people.parquet", "column": "segment"},
    ]
    age = next(c for c in table["columns"] if c["column"] == "age")
    assert age["ks"] > 0.3 and age["psi"] > 0.2


def test_keel_data_diff_renders_a_report_a_person_can_read(ws: Workspace) -> None:
    first, second = _versions(ws)
    code, out = _invoke(ws, data_diff_cmd, first.ref)  # against the latest version
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{first.ref} → {second.ref}"
    assert lines[1] == "files: 1 changed, 0 added, 0 removed, 0 unchanged"
    assert "  column 'score' added (float)" in lines
    assert "table people.parquet: rows 2,000 → 2,000 (+0)" in lines
    assert any(line.startswith("age ") and "drifted" in line for line in lines)
    assert any(line.startswith("segment ") and "'c' 20" in line for line in lines)
    assert "drifted: 2 column(s) (age, segment)" in lines
    assert lines[-1].startswith("thresholds: PSI ≥ 0.2 drifted (0.1–0.2 moderate); KS ≥ 0.1")


def test_a_diff_of_data_without_tables_compares_files_only(ws: Workspace) -> None:
    _write(ws, "docs/a.txt", "a")
    first = add_dataset(ws, name="docs", path=ws.root / "docs").version
    _write(ws, "docs/b.txt", "b")
    second = add_dataset(ws, name="docs", path=ws.root / "docs").version
    code, out = _invoke(ws, data_diff_cmd, first.ref, second.ref, "--json")
    data = json.loads(out)
    assert code == 0
    assert [f["path"] for f in data["files"]["added"]] == ["b.txt"]
    assert data["files"]["unchanged"] == 1 and data["tables"] == []
    assert data["notes"] == [
        f"{first.ref} has no profile: it holds no CSV or Parquet table",
        f"{second.ref} has no profile: it holds no CSV or Parquet table",
    ]


# -- `keel check` --------------------------------------------------------------------------


def _points(n: int, shift: float) -> str:
    rng = np.random.default_rng(11)
    rows = "".join(
        f"{x:.4f},{int(y)}\n"
        for x, y in zip(rng.normal(shift, 1, n), rng.integers(0, 3, n), strict=True)
    )
    return "x,y\n" + rows


def _data_drift(ws: Workspace) -> Drift:
    report = check_drift(ws, ["train"])
    [drift] = [d for d in report.items if d.kind is DriftKind.DATA]
    return drift


def test_keel_check_adds_drift_statistics_when_the_locked_table_is_in_the_store(
    demo: Path, make_workspace: MakeWs
) -> None:
    points = demo / "data" / "points.csv"
    points.write_text(_points(500, 0.0))
    ws = make_workspace(demo)
    lock_experiments(ws)
    ws.objects.put_file(points)  # the locked content, as a run that stores its inputs keeps it
    points.write_text(_points(600, 1.0))
    drift = _data_drift(make_workspace(demo))
    assert drift.message.startswith("input data/points.csv changed: blake3:")
    assert drift.data is not None
    (table,) = drift.data.tables
    assert (table.old_rows, table.new_rows) == (500, 600)
    assert {c.column: c.status.value for c in table.columns} == {"x": "drifted", "y": "stable"}
    data = drift.to_json()["data"]
    assert isinstance(data, dict) and data["drifted"] == [{"table": "points.csv", "column": "x"}]
    text = _render(check_drift(make_workspace(demo), ["train"]))
    assert "    data        input data/points.csv changed: blake3:" in text
    assert "                rows 500 → 600; drifted: x (PSI " in text
    assert "; 1 column(s) stable" in text


def test_keel_check_without_the_locked_content_reports_the_change_alone(
    demo: Path, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_experiments(make_workspace(demo))
    (demo / "data" / "points.csv").write_text("x,y\n9,9\n")
    monkeypatch.setitem(sys.modules, "pandas", None)  # nothing is read: nothing to compare with
    report = check_drift(make_workspace(demo), ["train"])
    [drift] = [d for d in report.items if d.kind is DriftKind.DATA]
    assert drift.data is None and "data" not in drift.to_json()
    assert report.notes == ()


def test_keel_check_profiles_a_dataset_versions_content_from_its_add(
    demo: Path, make_workspace: MakeWs
) -> None:
    points = demo / "data" / "points.csv"
    points.write_text(_points(300, 0.0))
    ws = make_workspace(demo)
    add_dataset(ws, name="points", path=points)  # profiled (and remembered) when added
    lock_experiments(ws)
    points.write_text(_points(300, 0.0).replace("x,y", "x,z"))
    drift = _data_drift(make_workspace(demo))
    assert drift.data is not None
    assert [c.message for c in drift.data.schema.changes] == ["column 'y' renamed to 'z' (int)"]


def test_keel_check_notes_when_the_data_extra_is_missing(
    demo: Path, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = demo / "data" / "points.csv"
    ws = make_workspace(demo)
    lock_experiments(ws)
    ws.objects.put_file(points)
    points.write_text("x,y\n9,9\n")
    monkeypatch.setitem(sys.modules, "pandas", None)
    report = check_drift(make_workspace(demo), ["train"])
    assert report.notes == (
        "data drift statistics need pandas and numpy: pip install 'keel[data]'",
    )
    assert report.drifted


def _render(report: DriftReport) -> str:
    from rich.console import Console

    from keel.report.drift import render_drift

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(render_drift(report))
    return console.export_text()


def test_dataset_versions_are_compared_by_their_stored_profiles_whatever_the_file_name(
    ws: Workspace,
) -> None:
    first = _add(ws, _points(400, 0.0))
    second = _add(ws, _points(400, 2.0))
    copy = _write(ws, "data/people", _points(400, 2.0))  # a checkout: no suffix, same content
    old = InputState(path="data/people", kind="file", digest=first.digest)
    new = InputState(path="data/people", kind="file", digest=second.digest)
    item = Drift(experiment="train", kind=DriftKind.DATA, subject="input data/people",
                 change=Change.CHANGED, message="input data/people changed")  # fmt: skip
    (found,), notes = add_data_statistics(
        ws, (item,), old_inputs=(old,), new_inputs=(new,), root=ws.root
    )
    assert notes == () and found.data is not None
    assert [c.column for c in found.data.tables[0].drifted] == ["x"]
    edited = InputState(path="data/people", kind="file", digest="blake3:" + "e" * 64)
    copy.write_text(_points(400, 0.0))  # not a stored version: read from disk, as CSV
    (found,), _ = add_data_statistics(
        ws, (item,), old_inputs=(old,), new_inputs=(edited,), root=ws.root
    )
    assert found.data is not None and found.data.tables[0].drifted == ()


def test_keel_data_diff_shows_a_breaking_change_recorded_with_its_reason(ws: Workspace) -> None:
    first = _add(ws, GOOD_CSV)
    second = _add(ws, "id,age,segment\n1,30.5,a\n", breaking="income moved out")
    code, out = _invoke(ws, data_diff_cmd, first.ref, second.ref)
    lines = out.splitlines()
    assert code == 0
    assert "schema: 1 change(s), 1 breaking" in lines
    assert "  column 'income' dropped (was float)  breaking" in lines
    assert "table people.csv: rows 4 → 1 (-3)" in lines
    assert "breaking schema change" in lines


# -- runs check their dataset inputs ----------------------------------------------------------

USE_PEOPLE = """\
  use:
    command: python -c "print(open('data/people.csv').read().count(chr(10)))"
    params: []
    inputs: [{dataset: people, path: data/people.csv}]
"""


def _with_user(ws: Workspace, make_workspace: MakeWs) -> Workspace:
    spec = ws.root / "keel.yaml"
    spec.write_text(spec.read_text().replace("\nprofiles:", "\n" + USE_PEOPLE + "\nprofiles:"))
    return make_workspace(ws.root)


def test_a_run_checks_its_dataset_input_against_the_contract_once_per_content(
    ws: Workspace, make_workspace: MakeWs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.ops.run import RunRequest, run_experiment

    _add(ws, GOOD_CSV, contract_file=ws.root / "contract.yaml")
    ws = _with_user(ws, make_workspace)
    checked: list[str] = []
    real = check_before_run

    def spy(ws: Workspace, **kw: object) -> None:
        checked.append(str(kw["name"]))
        real(ws, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("keel.ops.datacheck.check_before_run", spy)
    first = run_experiment(ws, RunRequest(experiment="use")).manifest
    second = run_experiment(ws, RunRequest(experiment="use")).manifest
    assert first.run.status.value == second.run.status.value == "succeeded"
    assert checked == ["people"]  # the same content and contract passed already


def test_a_dataset_input_that_fails_its_contract_stops_the_run_before_it_starts(
    ws: Workspace, make_workspace: MakeWs
) -> None:
    import dataclasses

    from keel.ops.datastore import publish_version
    from keel.ops.run import RunRequest, run_experiment

    version = _add(ws, GOOD_CSV)  # no contract when added
    strict = CONTRACT.replace("max: 120", "max: 40")
    (ws.root / "strict.yaml").write_text(strict)
    contract, _ = validate_version(ws, name="other", path=_write(ws, "ok.csv", "id,age,income,"
                                   "segment\n1,30,1,a\n"), contract_file=ws.root / "strict.yaml",
                                   previous=None, breaking=None)  # fmt: skip
    # A version whose record carries a contract its content fails (as from another keel).
    ws.objects.delete_ref(version.ref_name)
    publish_version(ws, dataclasses.replace(version, contract=contract))
    ws = _with_user(ws, make_workspace)
    with pytest.raises(ValidationError) as caught:
        run_experiment(ws, RunRequest(experiment="use"))
    assert [str(p) for p in caught.value.problems] == [
        "data/people.csv (dataset people): age: max 40: 2 rows fail: 41.5 (row 2), 50.0 (row 3)"
    ]
    assert list(ws.objects.list_refs("runs/")) == []
    assert list(ws.objects.list_refs("active/")) == []
