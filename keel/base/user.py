"""The login name recorded as who made a run, a dataset version or a baseline mark."""

from __future__ import annotations

import os
from collections.abc import Mapping


def os_user(environ: Mapping[str, str] | None = None) -> str:
    """The login name from ``environ`` (default: this process's), else the password database.

    Reads the variables first so that the run path does not import getpass and its terminal
    modules; falls back to the numeric uid when the user has no entry.
    """
    env = os.environ if environ is None else environ
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if name := env.get(var):
            return name
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
