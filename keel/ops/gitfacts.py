"""What git says about two recorded commits: the commits between them and the files changed.

The two questions (which commits are on one side only, ``rev-list --left-right A...B``, and
which files changed, ``diff --name-only A B``) are asked of git at once and collected
afterwards, so they cost about one git start-up. Git runs with a fixed locale, no pager, no
optional locks and explicit diff options, so neither the user's configuration nor a concurrent
git of theirs changes the answer.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from keel.compare.diff import CodeFacts, Commit

GIT_TIMEOUT_S = 30.0
MAX_LISTED = 50  # commits listed per side; the counts are always complete
_CONFIG = ("-c", "core.quotepath=off", "-c", "color.ui=never")
_DROP_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR")
_DIFF_OPTIONS = ("--no-ext-diff", "--no-textconv", "--no-renames", "--no-relative")

_Result = tuple[int, bytes, bytes]


class _NoAnswer(Exception):
    """Git cannot be asked here; the message says why."""


def code_facts(commit_a: str, commit_b: str, *, roots: Sequence[str]) -> CodeFacts:
    """How ``commit_b`` relates to ``commit_a``, asked of git in the first of ``roots`` that exists.

    Never raises for a git problem: the answer's ``reason`` or ``missing`` says what went wrong.
    """
    root = next((Path(r) for r in roots if Path(r).is_dir()), None)
    if root is None:
        return CodeFacts(reason=f"repository {roots[0] if roots else '?'} not found")
    try:
        res = _run_all(root, {
            "log": ["rev-list", "--left-right", "--format=%x09%s", f"{commit_a}...{commit_b}"],
            "files": ["diff", "--name-only", "-z", *_DIFF_OPTIONS, commit_a, commit_b, "--"],
        })  # fmt: skip
        if any(code != 0 for code, _, _ in res.values()):
            return _failed(root, (commit_a, commit_b), res)
    except _NoAnswer as exc:
        return CodeFacts(reason=str(exc))
    behind, ahead = _commits(res["log"][1])
    files = res["files"][1].decode("utf-8", "surrogateescape").split("\0")
    return CodeFacts(
        ahead=tuple(ahead[:MAX_LISTED]),
        behind=tuple(behind[:MAX_LISTED]),
        ahead_count=len(ahead),
        behind_count=len(behind),
        files=tuple(f for f in files if f),
    )


def _failed(root: Path, commits: Sequence[str], res: Mapping[str, _Result]) -> CodeFacts:
    """Find out which commits are gone; otherwise report git's own message."""
    probe = "".join(f"{c}^{{commit}}\n" for c in commits).encode()
    check = _run_all(root, {"check": ["cat-file", "--batch-check"]}, stdin=probe)["check"]
    lines = check[1].decode("utf-8", "replace").splitlines()
    missing = tuple(c for c, line in zip(commits, lines, strict=False) if "missing" in line)
    if missing:
        return CodeFacts(missing=missing)
    err = next(e for code, _, e in res.values() if code != 0)
    message = (err.decode("utf-8", "replace").strip().splitlines() or ["no message"])[0]
    return CodeFacts(reason=f"git failed in {root}: {message.removeprefix('fatal: ')}")


def _commits(out: bytes) -> tuple[list[Commit], list[Commit]]:
    """Parse ``rev-list --left-right --format=%x09%s A...B`` into (only in A, only in B).

    Each commit is a ``commit <id>`` line, its id marked ``<`` (A's side) or ``>`` (B's),
    then a line with a tab and the subject.
    """
    sides: dict[str, list[Commit]] = {"<": [], ">": []}
    header: str | None = None
    for line in out.decode("utf-8", "replace").splitlines():
        if header is None and line.startswith("commit "):
            header = line.removeprefix("commit ").strip()
        elif header is not None:
            side, commit_id = header[:1], header[1:]
            sides.setdefault(side, []).append(Commit(id=commit_id, subject=line[1:]))
            header = None
    return sides["<"], sides[">"]


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(GIT_PAGER="cat", PAGER="cat", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _run_all(
    cwd: Path, commands: Mapping[str, Sequence[str]], *, stdin: bytes | None = None
) -> dict[str, _Result]:
    """Start every git command at once, then collect them all (exit code, stdout, stderr)."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    env = _git_env()
    try:
        for name, args in commands.items():
            procs[name] = subprocess.Popen(
                ["git", *_CONFIG, *args], cwd=cwd, env=env,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        results: dict[str, _Result] = {}
        for name, proc in procs.items():
            out, err = proc.communicate(input=stdin, timeout=GIT_TIMEOUT_S)
            results[name] = (proc.returncode, out, err)
        return results
    except FileNotFoundError as exc:
        raise _NoAnswer("git is not installed (not found on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise _NoAnswer(f"git did not answer within {GIT_TIMEOUT_S:.0f} s in {cwd}") from exc
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
