"""'Did you mean ...?' hints for misspelt names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, options: Iterable[str]) -> str | None:
    """The valid option most similar to ``name``, or None when nothing is close."""
    opts = list(options)
    lowered = {o.lower(): o for o in opts}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, opts, n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """A hint naming the closest option, else listing the valid ones."""
    opts = sorted(options)
    best = closest(name, opts)
    if best is not None:
        return f"did you mean '{best}'?"
    if not opts:
        return "nothing is declared here"
    return "valid names: " + ", ".join(opts)
