"""Code facet: a project's git state — commit, branch, remote, uncommitted diff, untracked files.

Everything runs through the ``git`` command. The independent calls are started together and
collected afterwards, so the facet costs about one git start-up rather than six. Git runs with a
fixed locale, no pager, no optional locks (so it never rewrites the index while the user's own git
runs) and explicit diff options, so the user's configuration cannot change what is recorded.

The module is a little over 300 lines because capture, fingerprint and restore share the same
command plumbing and the same record shape; splitting them would spread one contract over files.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from keel.base.canonical import JsonValue
from keel.base.digest import Hasher
from keel.capture.ports import BlobSink
from keel.errors import KeelError, UserError

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 60.0
KEEL_DIR = ".keel"
_CONFIG = ("-c", "core.quotepath=off", "-c", "color.ui=never")
# Variables that would point git at another repository than the project's (set inside git hooks).
_DROP_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR")
# Explicit options so the user's diff configuration (prefixes, renames, textconv, relative
# paths, external tools, colour) cannot change the patch or stop `git apply` from taking it.
_DIFF_OPTIONS = (
    "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames", "--no-relative",
    "--src-prefix=a/", "--dst-prefix=b/",
)  # fmt: skip
_SCP_PASSWORD = re.compile(r"^([^@/:]+):[^@/]*@(.+)$")

_Result = tuple[int, bytes, bytes]


class _NotCaptured(Exception):
    """The code state cannot be read here; the message is the manifest's reason."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _State:
    toplevel: Path
    prefix: str
    commit: str | None
    diff: bytes
    untracked: tuple[str, ...]
    branch: str | None = None
    remote: str | None = None
    diff_files: tuple[str, ...] = ()


def _git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(GIT_PAGER="cat", PAGER="cat", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


def _run_all(cwd: Path, commands: Mapping[str, Sequence[str]]) -> dict[str, _Result]:
    """Start every git command at once, then collect them all (exit code, stdout, stderr)."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    env = _git_env()
    try:
        for name, args in commands.items():
            procs[name] = subprocess.Popen(
                ["git", *_CONFIG, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        results: dict[str, _Result] = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=GIT_TIMEOUT_S)
            results[name] = (proc.returncode, out, err)
        return results
    except FileNotFoundError as exc:
        if exc.filename != "git":
            raise _NotCaptured(f"folder {cwd} disappeared while reading its git state") from exc
        raise _NotCaptured("git is not installed (not found on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise _NotCaptured(f"git did not answer within {GIT_TIMEOUT_S:.0f} s in {cwd}") from exc
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                proc.communicate()


def _message(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return lines[0].removeprefix("fatal: ") if lines else "no message"


def _checked(name: str, result: _Result) -> bytes:
    code, out, err = result
    if code != 0:
        raise _NotCaptured(f"git {name} failed (exit {code}): {_message(err)}")
    return out


def _split_z(data: bytes) -> tuple[str, ...]:
    return tuple(p for p in data.decode("utf-8", "surrogateescape").split("\0") if p)


def _commands(full: bool, base: str = "HEAD") -> dict[str, list[str]]:
    diff = ["diff", base, *_DIFF_OPTIONS]
    cmds = {
        "head": ["rev-parse", "--show-toplevel", "--show-prefix", "--verify", "-q", "HEAD"],
        "diff": [*diff, "--binary"],
        "others": ["ls-files", "--others", "--exclude-standard", "-z", "--full-name",
                   f"--exclude={KEEL_DIR}/", "--", ":/"],
    }  # fmt: skip
    if full:
        cmds["branch"] = ["symbolic-ref", "-q", "HEAD"]
        cmds["names"] = [*diff, "--name-only", "-z"]
        cmds["remotes"] = ["config", "-z", "--get-regexp", r"^remote\..*\.url$"]
    return cmds


def _probe(root: Path, *, full: bool) -> _State:
    """Read the repository state of ``root``; raise _NotCaptured with a reason when impossible."""
    if not root.is_dir():
        raise _NotCaptured(f"project folder {root} does not exist")
    res = _run_all(root, _commands(full))
    code, out, err = res["head"]
    if code not in (0, 1) or len(out.splitlines()) < 2:
        reason = _message(err)
        if "not a git repository" in reason:
            raise _NotCaptured(f"{root} is not inside a git repository")
        raise _NotCaptured(f"git rev-parse failed (exit {code}): {reason}")
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    commit = lines[2] if code == 0 and len(lines) > 2 else None
    if commit is None:  # no commits yet: compare with the empty tree instead of HEAD
        tree = _run_all(root, {"tree": ["hash-object", "-t", "tree", os.devnull]})["tree"]
        cmds = _commands(full, _checked("hash-object", tree).decode().strip())
        res |= _run_all(root, {k: cmds[k] for k in ("diff", "names") if k in cmds})
    names = _split_z(_checked("diff", res["names"])) if full else ()
    return _State(
        toplevel=Path(lines[0]),
        prefix=lines[1].rstrip("/") or ".",
        commit=commit,
        diff=_checked("diff", res["diff"]),
        untracked=_split_z(_checked("ls-files", res["others"])),
        branch=_branch(res["branch"]) if full else None,
        remote=_remote(res["remotes"]) if full else None,
        diff_files=names,
    )  # fmt: skip


def _branch(result: _Result) -> str | None:
    code, out, _ = result
    ref = out.decode("utf-8", "surrogateescape").strip()
    return ref.removeprefix("refs/heads/") if code == 0 and ref else None


def _remote(result: _Result) -> str | None:
    code, out, _ = result
    if code != 0:
        return None
    urls: dict[str, str] = {}
    for item in _split_z(out):
        key, _, url = item.partition("\n")
        urls.setdefault(key.removeprefix("remote.").removesuffix(".url"), url)
    if not urls:
        return None
    return strip_url_credentials(urls.get("origin", next(iter(urls.values()))))


def strip_url_credentials(url: str) -> str:
    """``url`` without a password or token: ``https://user:tok@host/x`` → ``https://host/x``.

    An ssh user name is kept (``ssh://git@host/x``, ``git@host:x``); only its password goes.
    """
    if "://" not in url:
        match = _SCP_PASSWORD.match(url)
        return f"{match.group(1)}@{match.group(2)}" if match else url
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if parts.scheme in ("ssh", "git+ssh", "ssh+git"):
        hostport = f"{userinfo.split(':', 1)[0]}@{hostport}"
    return urllib.parse.urlunsplit(parts._replace(netloc=hostport))


def _untracked_entry(
    top: Path, rel: str, sink: BlobSink | None, cap: int
) -> tuple[dict[str, JsonValue], str]:
    """The manifest entry of one untracked file and its line in the fingerprint."""
    path = top / rel
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            return {"path": rel, "link": target}, f"{rel}\0link\0{target}"
        line = f"{rel}\0{st.st_size}\0{st.st_mtime_ns}"
        if not stat.S_ISREG(st.st_mode):
            return {"path": rel, "stored": False, "reason": "not a regular file"}, line
        if st.st_size > cap:
            reason = f"larger than the {cap}-byte limit for untracked files"
            return {"path": rel, "size": st.st_size, "stored": False, "reason": reason}, line
        entry: dict[str, JsonValue] = {"path": rel, "size": st.st_size}
        if sink is not None:
            entry["digest"] = str(sink.put_file(path))
        if st.st_mode & stat.S_IXUSR:
            entry["executable"] = True
        return entry, line
    except OSError as exc:  # deleted or unreadable between listing and reading
        return {"path": rel, "stored": False, "reason": f"unreadable: {exc.strerror}"}, rel


def _fingerprint(state: _State, lines: Sequence[str]) -> str:
    h = Hasher()
    h.update(f"commit:{state.commit}\0diff:{len(state.diff)}\0".encode())
    h.update(state.diff)
    for line in sorted(lines):
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return str(h.digest())


def capture_code(
    root: Path, sink: BlobSink, *, max_untracked_bytes: int = 50 * 2**20
) -> dict[str, JsonValue]:
    """Record the code state of the project folder ``root``, storing the diff and untracked files.

    Returns ``{"captured": False, "reason": ...}`` when git is missing or ``root`` is not in a
    repository. Untracked files above ``max_untracked_bytes`` are listed but not stored.

    Raises:
        keel.errors.KeelError: only when ``sink`` fails to store an object.
    """
    try:
        state = _probe(root, full=True)
        return _record(state, sink, max_untracked_bytes)
    except _NotCaptured as exc:
        return {"captured": False, "reason": str(exc)}
    except KeelError:
        raise
    except Exception as exc:  # an optional facet must never fail the run
        log.warning("code capture failed in %s", root, exc_info=True)
        return {"captured": False, "reason": f"code capture failed: {exc!r}"}


def _record(state: _State, sink: BlobSink, cap: int) -> dict[str, JsonValue]:
    entries = [_untracked_entry(state.toplevel, p, sink, cap) for p in state.untracked]
    untracked: list[JsonValue] = [e for e, _ in entries]
    return {
        "captured": True,
        "vcs": "git",
        "repo_root": str(state.toplevel),
        "project_subdir": state.prefix,
        "commit": state.commit,
        "branch": state.branch,
        "remote": state.remote,
        "dirty": bool(state.diff or state.untracked),
        "diff": str(sink.put_bytes(state.diff)) if state.diff else None,
        "diff_files": list(state.diff_files),
        "untracked": untracked,
        "fingerprint": _fingerprint(state, [line for _, line in entries]),
    }


def code_fingerprint(root: Path) -> str | None:
    """The ``fingerprint`` :func:`capture_code` would record now, or None when git cannot tell.

    Compare it with the captured value after a run to flag code that changed during the run.
    """
    try:
        state = _probe(root, full=False)
    except _NotCaptured as exc:
        log.debug("no code fingerprint for %s: %s", root, exc)
        return None
    except Exception:  # same isolation as the facet itself
        log.warning("code fingerprint failed in %s", root, exc_info=True)
        return None
    lines = [_untracked_entry(state.toplevel, p, None, 0)[1] for p in state.untracked]
    return _fingerprint(state, lines)


def restore_code(
    record: Mapping[str, JsonValue],
    dest: Path,
    fetch: Callable[[str], bytes],
    *,
    repo: Path | None = None,
) -> None:
    """Materialise a captured code state into ``dest`` (absent or an empty folder).

    The recorded commit is checked out as a detached worktree of the recorded repository (or
    ``repo``), the diff is applied, and untracked files are written from ``fetch(digest)``.
    Untracked files recorded with ``"stored": false`` cannot be restored and are skipped with a
    warning. Undo with :func:`discard_restored_code`.

    Raises:
        keel.errors.UserError: the record has no code, ``dest`` is not empty, the repository or
            commit is missing, or the diff does not apply.
    """
    if not record.get("captured"):
        raise UserError(f"code was not captured for this run ({record.get('reason')}); "
                        "there is nothing to restore")  # fmt: skip
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"cannot restore code into {dest}: it exists and is not an empty folder")
    dest = dest.absolute()
    commit = record.get("commit")
    if commit:
        source = repo or Path(str(record.get("repo_root")))
        # hooksPath=/dev/null: a checkout hook of the user's must not run for a restore.
        args = ["-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet"]
        _restore_run(source, "worktree add", [*args, str(dest), str(commit)])
    else:
        dest.mkdir(parents=True, exist_ok=True)
    if record.get("diff"):
        patch = fetch(str(record["diff"]))
        _restore_run(dest, "apply", ["apply", "--binary", "--whitespace=nowarn", "-"], patch)
    untracked = record.get("untracked")
    for entry in untracked if isinstance(untracked, list) else []:
        if isinstance(entry, dict):
            _write_untracked(dest, entry, fetch)


def _restore_run(cwd: Path, what: str, args: list[str], data: bytes | None = None) -> None:
    if not cwd.is_dir():
        raise UserError(f"repository {cwd} not found; clone it there or pass repo= to restore")
    # The ceiling keeps `git apply` in a commit-less restore from finding an enclosing repository.
    env = _git_env({"GIT_CEILING_DIRECTORIES": str(cwd.parent)})
    try:
        proc = subprocess.run(["git", *_CONFIG, *args], cwd=cwd, env=env, input=data,
                              capture_output=True, timeout=GIT_TIMEOUT_S, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"git {what} could not run in {cwd}: {exc}") from exc
    if proc.returncode != 0:
        hint = ("fetch the recorded commit into that repository (git fetch)" if what != "apply"
                else "the stored diff does not fit the commit; run `keel verify`")  # fmt: skip
        raise UserError(f"git {what} failed in {cwd}: {_message(proc.stderr)}; {hint}")


def _write_untracked(
    dest: Path, entry: Mapping[str, JsonValue], fetch: Callable[[str], bytes]
) -> None:
    rel = PurePosixPath(str(entry.get("path")))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UserError(f"refusing to restore untracked file with unsafe path {str(rel)!r}")
    target = dest.joinpath(*rel.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if "link" in entry:
        os.symlink(str(entry["link"]), target)
    elif "digest" in entry:
        target.write_bytes(fetch(str(entry["digest"])))
        if entry.get("executable"):
            target.chmod(target.stat().st_mode | 0o111)
    else:
        log.warning("untracked file %s was not stored (%s); not restored", rel, entry.get("reason"))


def discard_restored_code(
    record: Mapping[str, JsonValue], dest: Path, *, repo: Path | None = None
) -> None:
    """Remove a tree made by :func:`restore_code` and its worktree registration."""
    dest = dest.absolute()
    source = repo or Path(str(record.get("repo_root")))
    if record.get("commit") and source.is_dir():
        _restore_run(source, "worktree remove", ["worktree", "remove", "--force", str(dest)])
    elif dest.exists():
        shutil.rmtree(dest)
