"""Layer 8: rendering runs and reports for people (rich renderables) and machines (JSON)."""
