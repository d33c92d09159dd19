"""Layer 6: the object store (source of truth) and the metadata index (rebuildable)."""
