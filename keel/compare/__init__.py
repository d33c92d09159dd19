"""Layer 7: pure comparisons over model types — diff, drift, verdicts, gates, noise."""
