"""Child-process launcher for ``entrypoint: package.module:function`` experiments.

Run as ``python -m keel.execute.entry package.module:function``: imports the function and calls
it with the run's resolved parameters (a dict). A returned mapping of numbers is logged as
metrics. The exit code is 0 on success, 1 when the function raises (traceback on stderr).
"""

from __future__ import annotations

import importlib
import sys
import traceback


def main(argv: list[str]) -> int:
    """Import and call the entrypoint named in ``argv[0]``."""
    from keel.execute import inrun

    target = argv[0] if argv else ""
    module_name, _, func_name = target.partition(":")
    if not module_name or not func_name:
        print(
            f"keel: entrypoint must look like package.module:function, got {target!r}",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, ".")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        print(f"keel: cannot load entrypoint {target!r}: {exc}", file=sys.stderr)
        return 2
    try:
        result = func(inrun.params())
    except Exception:
        traceback.print_exc()
        return 1
    if isinstance(result, dict):
        for name, value in result.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                inrun.log_metric(str(name), float(value))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
