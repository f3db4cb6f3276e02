"""Deployments of every runbook: schedules and typed parameters, for `opsflow serve`."""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from opsflow.flows.registry import RUNBOOKS


def deployments(names: list[str] | None = None, schedules: bool = True) -> list[RunnerDeployment]:
    """One deployment per runbook (named after it), with its default cron schedule."""
    chosen = names or list(RUNBOOKS)
    unknown = sorted(set(chosen) - set(RUNBOOKS))
    if unknown:
        raise ValueError(f"unknown runbooks {unknown}; known: {sorted(RUNBOOKS)}")
    return [
        RUNBOOKS[name].flow.to_deployment(
            name=name,
            cron=RUNBOOKS[name].cron if schedules else None,
            description=f"{RUNBOOKS[name].summary} Schedule: {RUNBOOKS[name].why_this_schedule}.",
            tags=["opsflow"],
        )
        for name in chosen
    ]
