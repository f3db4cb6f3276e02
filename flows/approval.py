"""Asking a person in the Prefect UI before a runbook acts."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field


class Approval(RunInput):
    """The form the Prefect UI shows on a paused run."""

    approve: bool = Field(default=False, description="Approve this plan? Leave off to reject.")
    note: str = Field(default="", max_length=500, description="Why; recorded in the report.")


def request_approval(summary: str, timeout_seconds: int, poll_seconds: float = 2.0) -> Approval:
    """Pause the flow run until someone approves or rejects; no answer in time is a reject.

    Must be called from a flow (Prefect pauses flow runs, not task runs).
    """
    logger = get_run_logger()
    logger.warning("waiting up to %ds for approval in the Prefect UI: %s", timeout_seconds, summary)
    form = Approval.with_initial_data(description=f"**Approve this rollout?**\n\n{summary}")
    try:
        answer = pause_flow_run(
            wait_for_input=form, timeout=timeout_seconds, poll_interval=max(1, round(poll_seconds))
        )
    except FlowPauseTimeout:
        return Approval(approve=False, note=f"no answer within {timeout_seconds}s")
    logger.info("approval: %s (%s)", "approved" if answer.approve else "rejected", answer.note)
    return Approval(approve=answer.approve, note=answer.note)
