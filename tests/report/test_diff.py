"""render_diff: the summary line first, a table per group, values shortened for reading."""

from __future__ import annotations

import io

from rich.console import Console

from keel.compare.diff import Change, ChangeKind, ManifestDiff
from keel.model.run import RunStatus, RunSummary
from keel.report.diff import MAX_LIST_LINES, render_diff


def _summary(run_id: str) -> RunSummary:
    return RunSummary(
        id=run_id, project="demo", experiment="train", status=RunStatus.SUCCEEDED,
        created_at="2026-11-29T15:32:54.239585Z", ended_at=None, duration_s=None, manifest=None,
        profile="dev", why=None, host="vm", user="me", pid=None, git_commit=None, git_dirty=None,
    )  # fmt: skip


def _text(diff: ManifestDiff, warnings: tuple[str, ...] = ()) -> str:
    out = io.StringIO()
    console = Console(file=out, width=160, highlight=False, color_system=None)
    console.print(render_diff(diff, a=_summary("06g0aaaa0001"), b=_summary("06g0aaaa0002"),
                              warnings=warnings))  # fmt: skip
    return out.getvalue()


def test_nothing_to_say_is_exactly_no_difference() -> None:
    assert _text(ManifestDiff(changes=())) == "no difference\n"


def test_summary_line_comes_first_then_the_runs_warnings_and_groups() -> None:
    digest = "blake3:" + "ab" * 32
    files = [f"f{i}.py" for i in range(MAX_LIST_LINES + 2)]
    diff = ManifestDiff(changes=(
        Change(kind=ChangeKind.CODE, key="files changed", a=None, b=files, note="12 files"),
        Change(kind=ChangeKind.DATA, key="data/x.csv", a=digest, b=None, note="only in A"),
        Change(kind=ChangeKind.METRICS, key="score", a=0.5, b=0.75,
               note="+50.00%, better, beyond tolerance 0"),
    ))  # fmt: skip
    lines = _text(diff, warnings=("the runs are of different experiments",)).splitlines()
    assert lines[0] == "code: 1 change · data: 1 input · metrics: 1 metric (1 beyond tolerance)"
    assert lines[1].split() == ["A", "06g0aaaa0001", "train", "2026-11-29", "15:32:54", "succeeded"]
    assert lines[3] == "! the runs are of different experiments"
    text = "\n".join(lines)
    assert "f9.py" in text and "f10.py" not in text and "… 2 more" in text
    assert "abababababab" in text and digest not in text
    assert "+0.25" in text and "Metrics" in text and "Data (inputs)" in text
