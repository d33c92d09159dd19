"""Reading keel.lock back, with errors that name the line at fault and say what to do.

``tomllib`` reports syntax errors with a line and column; a file that parses but was edited by
hand into the wrong shape is reported here, at the line of the key (or of its table) that is
wrong. Every message ends with what to do: re-create the file with `keel lock`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn, TypeVar

from keel.base.canonical import JsonValue
from keel.errors import UserError
from keel.model.manifest import ParamValue
from keel.spec.lockfile import (
    LOCK_FORMAT,
    CodeState,
    EnvironmentState,
    ExperimentState,
    InputState,
    Lock,
)

KeyPath = tuple[str, ...]
T = TypeVar("T")
RECREATE = "re-create it with `keel lock`"
_AT = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def decode(raw: bytes | str, file: str) -> str:
    """The file's text; raise UserError naming the line of the first byte that is not UTF-8."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{file}: line {line}: not UTF-8 text; {RECREATE}") from exc


def syntax_message(file: str, exc: tomllib.TOMLDecodeError) -> str:
    """One line naming the line and column tomllib stopped at, and what to do."""
    text = str(exc)
    match = _AT.match(text)
    if match is None:
        return f"{file} is not valid TOML ({text}): it is damaged or was edited by hand; {RECREATE}"
    msg = match["msg"][:1].lower() + match["msg"][1:]
    return (
        f"{file}: line {match['line']}, column {match['col']}: {msg}: "
        f"the file is damaged or was edited by hand; {RECREATE}"
    )


class _Bad(Exception):
    """A field of the parsed file has the wrong shape."""

    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class Reader:
    """Typed access to parsed keel.lock data; ``run`` makes shape errors one-line UserErrors."""

    def __init__(self, text: str, file: str) -> None:
        self._lines = text.splitlines()
        self._file = file

    def run(self, build: Callable[[], T]) -> T:
        """Call ``build``; a shape error becomes a UserError naming the file, line and key."""
        try:
            return build()
        except _Bad as bad:
            line = self.line_of(bad.path)
            where = f"{self._file}: line {line}" if line else self._file
            key = ".".join(bad.path)
            raise UserError(
                f"{where}: {key}: {bad.message}; the file was edited by hand or is damaged; "
                f"{RECREATE}"
            ) from None

    def fail(self, path: KeyPath, message: str) -> NoReturn:
        """Report a shape error at ``path``."""
        raise _Bad(path, message)

    def table(
        self, parent: dict[str, object], path: KeyPath, *, required: bool = True
    ) -> dict[str, object]:
        """The table at ``path`` (``{}`` when absent and not required)."""
        value = parent.get(path[-1])
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "missing table" if value is None else "should be a table")
        return value

    def text(self, parent: dict[str, object], path: KeyPath) -> str:
        """The required string at ``path``."""
        value = self.maybe_text(parent, path)
        if value is None:
            self.fail(path, "missing value")
        return value

    def maybe_text(self, parent: dict[str, object], path: KeyPath) -> str | None:
        """The string at ``path``, or None when absent."""
        value = parent.get(path[-1])
        if value is not None and not isinstance(value, str):
            self.fail(path, f"should be text, not {value!r}")
        return value

    def integer(self, parent: dict[str, object], path: KeyPath) -> int:
        """The required integer at ``path``."""
        value = self.maybe_integer(parent, path)
        if value is None:
            self.fail(path, "missing value")
        return value

    def maybe_integer(self, parent: dict[str, object], path: KeyPath) -> int | None:
        """The integer at ``path``, or None when absent."""
        value = parent.get(path[-1])
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(path, f"should be an integer, not {value!r}")
        return value

    def boolean(self, parent: dict[str, object], path: KeyPath) -> bool:
        """The required boolean at ``path``."""
        value = parent.get(path[-1])
        if not isinstance(value, bool):
            self.fail(
                path,
                "missing value" if value is None else f"should be true or false, not {value!r}",
            )
        return value

    def text_table(self, parent: dict[str, object], path: KeyPath) -> dict[str, str]:
        """A table of name = text (``{}`` when absent)."""
        table = self.table(parent, path, required=False)
        return {k: self.text(table, (*path, k)) for k in table}

    def json_text(self, parent: dict[str, object], path: KeyPath) -> JsonValue:
        """A value kept as JSON text (for values TOML cannot hold, such as null)."""
        try:
            value: JsonValue = json.loads(self.text(parent, path))
        except ValueError:
            self.fail(path, "is not valid JSON")
        return value

    def plain(self, value: object, path: KeyPath) -> JsonValue:
        """A TOML value that must also be plain JSON (no dates or times)."""
        if isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.plain(v, path) for v in value]
        if isinstance(value, dict):
            return {str(k): self.plain(v, path) for k, v in value.items()}
        self.fail(path, f"holds {type(value).__name__}, which a parameter cannot be")

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the key at ``path``, else of the nearest enclosing table header."""
        for depth in range(len(path), 0, -1):
            header = "[" + ".".join(_key(p) for p in path[:depth]) + "]"
            start = self._find(re.compile(rf"^\s*{re.escape(header)}\s*$").match)
            if start is None:
                continue
            if depth == len(path) - 1:
                key = re.compile(rf"^\s*{re.escape(_key(path[-1]))}\s*=")
                found = self._find(key.match, after=start, stop_at_table=True)
                return found if found is not None else start
            return start
        return None

    def _find(
        self, test: Callable[[str], object], *, after: int = 0, stop_at_table: bool = False
    ) -> int | None:
        """1-based number of the first line after line ``after`` passing ``test``."""
        for number in range(after + 1, len(self._lines) + 1):
            line = self._lines[number - 1]
            if stop_at_table and line.lstrip().startswith("["):
                return None
            if test(line):
                return number
        return None


def _key(part: str) -> str:
    """A key as the TOML writer spells it: bare when it can be, else a quoted string."""
    return part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)


def read_lock(path: Path) -> Lock:
    """Read and check a keel.lock.

    Raises:
        keel.errors.UserError: the file is missing ("run `keel lock` first"), not TOML, or not
            a lock this keel understands; the message names the line and what to do.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(
            f"no {path.name} in {path.parent}: run `keel lock` first to record the current state"
        ) from exc
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_lock(raw, file=path.name)


def parse_lock(raw: bytes | str, *, file: str = "keel.lock") -> Lock:
    """Parse keel.lock text; raise UserError naming the line at fault and what to do."""
    text = decode(raw, file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(syntax_message(file, exc)) from exc
    reader = Reader(text, file)
    return reader.run(lambda: _lock_from(reader, data))


def _lock_from(r: Reader, data: dict[str, object]) -> Lock:
    header = r.table(data, ("keel",))
    fmt = r.integer(header, ("keel", "lock_format"))
    if fmt > LOCK_FORMAT:
        r.fail(
            ("keel", "lock_format"),
            f"lock_format {fmt} is newer than this keel understands ({LOCK_FORMAT}); "
            f"upgrade keel, or {RECREATE}",
        )
    version = r.text(header, ("keel", "version"))
    envs = r.table(data, ("environments",), required=False)
    environments = {eid: _environment_from(r, envs, eid) for eid in envs}
    exps = r.table(data, ("experiments",), required=False)
    experiments = {n: _experiment_from(r, exps, n, environments) for n in sorted(exps)}
    return Lock(experiments=experiments, keel_version=version, lock_format=fmt)


def _environment_from(r: Reader, envs: dict[str, object], eid: str) -> EnvironmentState:
    path = ("environments", eid)
    table = r.table(envs, path)
    return EnvironmentState(
        python_implementation=r.text(table, (*path, "python_implementation")),
        python_version=r.text(table, (*path, "python_version")),
        platform=r.text(table, (*path, "platform")),
        packages=r.text_table(table, (*path, "packages")),
        lock_files=r.text_table(table, (*path, "lock_files")),
        threads=r.text_table(table, (*path, "threads")),
    )


def _experiment_from(
    r: Reader,
    exps: dict[str, object],
    name: str,
    environments: Mapping[str, EnvironmentState],
) -> ExperimentState:
    path = ("experiments", name)
    table = r.table(exps, path)
    env_id = r.maybe_text(table, (*path, "environment"))
    if env_id is not None and env_id not in environments:
        r.fail((*path, "environment"), f"names environment '{env_id}', which is not in the file")
    params = r.table(table, (*path, "params"), required=False)
    inputs = r.table(table, (*path, "inputs"), required=False)
    return ExperimentState(
        name=name,
        profile=r.text(table, (*path, "profile")),
        params={p: _param_from(r, params, (*path, "params", p)) for p in params},
        seed=r.integer(table, (*path, "seed")),
        command=r.maybe_text(table, (*path, "command")),
        entrypoint=r.maybe_text(table, (*path, "entrypoint")),
        inputs=tuple(_input_from(r, inputs, (*path, "inputs", i)) for i in sorted(inputs)),
        environment=environments[env_id] if env_id is not None else None,
        code=_code_from(r, table, (*path, "code")),
    )


_RE_KIND = re.compile(r"^(file|dir|missing)$")


def _param_from(r: Reader, params: dict[str, object], path: KeyPath) -> ParamValue:
    table = r.table(params, path)
    source = r.text(table, (*path, "source"))
    if "json" in table:
        return ParamValue(value=r.json_text(table, (*path, "json")), source=source)
    if "value" not in table:
        r.fail(path, "has no value")
    return ParamValue(value=r.plain(table["value"], (*path, "value")), source=source)


def _input_from(r: Reader, inputs: dict[str, object], path: KeyPath) -> InputState:
    table = r.table(inputs, path)
    kind = r.text(table, (*path, "kind"))
    if not _RE_KIND.match(kind):
        r.fail((*path, "kind"), f"'{kind}' is not one of file, dir, missing")
    return InputState(
        path=path[-1],
        kind=kind,
        digest=r.maybe_text(table, (*path, "digest")),
        size=r.maybe_integer(table, (*path, "size")),
        files=r.maybe_integer(table, (*path, "files")),
        dataset=r.maybe_text(table, (*path, "dataset")),
        version=r.maybe_text(table, (*path, "version")),
    )


def _code_from(r: Reader, table: dict[str, object], path: KeyPath) -> CodeState | None:
    if "code" not in table:
        return None
    code = r.table(table, path)
    return CodeState(
        commit=r.maybe_text(code, (*path, "commit")),
        dirty=r.boolean(code, (*path, "dirty")),
        reason=r.maybe_text(code, (*path, "not_captured")),
    )
