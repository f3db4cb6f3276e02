"""The runbooks: each a flow that reads as its steps, the acting ones on the rollout engine."""
