"""Layer 4: the Executor port, the local executor and the in-run API (`keel.log_metric` & co)."""
