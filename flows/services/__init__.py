"""What runs for a long time beside the runbooks: deployments and their worker, the alert
receiver, the crash-marking automation, the temporary local Prefect server."""
