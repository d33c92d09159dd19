"""Layer 0: digests, canonical JSON, atomic writes, clocks and name suggestions."""
