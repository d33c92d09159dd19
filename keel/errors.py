"""keel's exception hierarchy: one root, stable codes, messages that say what to do.

    KeelError                      code 1   a keel bug unless a subclass says otherwise
    ├── UserError                  code 2   the user can fix it; the CLI prints one line
    │   ├── ProjectNotFound        code 3   no keel.yaml above the working directory
    │   ├── ValidationError        code 4   keel.yaml / parameters: every problem at once
    │   │   └── InvalidParameter   code 5   (also ValueError) a -p value or name is wrong
    │   ├── RunRefError            code 6   (also KeyError) unknown or ambiguous run reference
    │   ├── StrictViolation        code 7   a strict profile refused to run
    │   ├── MissingExtra           code 8   (also ImportError) an optional extra is not installed
    │   ├── SchemaOutdated         code 9   the metadata index needs `keel migrate`
    │   └── ConcurrentUpdate       code 10  another keel process holds what this one needs
    ├── StoreError                 code 20  the object store failed
    │   ├── ObjectNotFound         code 21  (also KeyError) no object with that digest
    │   ├── CorruptObject          code 22  stored bytes no longer match their digest
    │   └── StoreUnavailable       code 23  the store location cannot be reached or written
    ├── IndexUnavailable           code 30  the metadata database cannot be reached
    └── ExecutionError             code 40  the executor could not start or supervise a run

CorruptObject, StoreUnavailable and IndexUnavailable are also UserErrors: they are reported
in one line that says what to do (run `keel verify`, check the URL or credentials).
Codes are stable: the CLI exits with them and the dashboard maps them to HTTP statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


class KeelError(Exception):
    """Root of every error keel raises on purpose."""

    code = 1


class UserError(KeelError):
    """Something the user can fix; reported as one line without a traceback."""

    code = 2


class ProjectNotFound(UserError):
    """No `keel.yaml` in the given folder or any parent of it."""

    code = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One validation problem, located as precisely as the input allows."""

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        key = f"{self.key}: " if self.key else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}{key}{self.message}{hint}"


class ValidationError(UserError):
    """One or more problems found in a spec or in parameter values, all reported together."""

    code = 4

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InvalidParameter(ValidationError, ValueError):
    """A parameter name or value given for a run is not valid."""

    code = 5


class RunRefError(UserError, KeyError):
    """A run reference matches no run, or more than one."""

    code = 6

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StrictViolation(UserError):
    """A strict profile refused to start a run (dirty tree, missing input, ...)."""

    code = 7


class MissingExtra(UserError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""

    code = 8


class SchemaOutdated(UserError):
    """The metadata index schema is not the revision this keel expects."""

    code = 9


class ConcurrentUpdate(UserError):
    """Another process is updating the same thing; retry when it is done."""

    code = 10


class StoreError(KeelError):
    """The object store failed."""

    code = 20


class ObjectNotFound(StoreError, KeyError):
    """No object with the requested digest is in the store."""

    code = 21

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptObject(StoreError, UserError):
    """An object's bytes no longer match its digest; it is never returned to a reader."""

    code = 22


class StoreUnavailable(StoreError, UserError):
    """The store location cannot be reached, read or written."""

    code = 23


class IndexUnavailable(UserError):
    """The metadata database cannot be reached or opened."""

    code = 30


class ExecutionError(KeelError):
    """The executor could not start or supervise a run."""

    code = 40
