"""What runs for a long time beside the runbooks: deployments and their worker, the alert
receiver, the crash-marking automation, opsflow's local Prefect server."""
