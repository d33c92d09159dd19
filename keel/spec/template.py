"""Command templates: ``{name}`` placeholders in argv tokens (standard library only)."""

from __future__ import annotations

import string

SEED = "seed"
"""The placeholder that is always available: the run's root seed."""


def parse_template(token: str) -> list[tuple[str, str | None]]:
    """Split one argv token into ``(literal text, placeholder name or None)`` pieces.

    ``{{`` and ``}}`` are literal braces.

    Raises:
        ValueError: for unbalanced braces, or a placeholder with a format spec or conversion.
    """
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in string.Formatter().parse(token):
        if name is not None and (spec or conversion):
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        pieces.append((literal, name))
    return pieces
