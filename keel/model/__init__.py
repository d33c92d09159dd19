"""Layer 1: immutable value types shared by every stage."""
