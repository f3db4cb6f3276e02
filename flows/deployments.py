"""Deployments of every runbook: schedules and typed parameters, for `opsflow serve`."""

from __future__ import annotations

from prefect.blocks.core import Block
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from opsflow.flows.catalog import CATALOG
from opsflow.flows.registry import load_runbook

SCHEDULE_TIMEZONE = "UTC"  # the same as prefect.yaml's, so both deploy the same schedules


def deployments(
    names: list[str] | None = None,
    schedules: bool = True,
    blocks: dict[str, Block] | None = None,
) -> list[RunnerDeployment]:
    """One deployment per runbook (named after it), with its default cron schedule (UTC).

    Args:
        blocks: parameter name -> saved block (e.g. ``{"platform": OpsPlatform.load("prod")}``),
            the default of that parameter in every runbook that has it; scheduled runs use it,
            and the UI's run form shows it picked.
    """
    chosen = names or list(CATALOG)
    unknown = sorted(set(chosen) - set(CATALOG))
    if unknown:
        raise ValueError(f"unknown runbooks {unknown}; known: {sorted(CATALOG)}")
    made = []
    for name in chosen:
        runbook = load_runbook(name)
        defaults = {
            field: block
            for field, block in (blocks or {}).items()
            if field in runbook.params.model_fields
        }
        made.append(
            runbook.flow.to_deployment(
                name=name,
                schedule=(
                    Cron(runbook.cron, timezone=SCHEDULE_TIMEZONE)
                    if schedules and runbook.cron
                    else None
                ),
                description=f"{runbook.summary} Schedule: {runbook.why_this_schedule} (UTC).",
                tags=["opsflow"],
                parameters={runbook.param_name: defaults} if defaults else None,
            )
        )
    return made
