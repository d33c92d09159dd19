"""Layer 9: use cases (run, show, ls, verify, reindex, init) over a `Workspace`."""
