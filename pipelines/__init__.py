"""Runnable Caspio pipelines: the module behind `caspio-sync` and the examples to copy."""
