"""The `opsflow` command line: runbooks run now, blocks, deployments, locks, alerts, the lab."""
