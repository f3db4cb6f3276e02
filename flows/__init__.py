"""Runbooks: Prefect flows that chain tasks, and the `opsflow` command line."""
