"""Layer 5: provenance facets (code, environment, hardware, data) and the manifest builder."""
