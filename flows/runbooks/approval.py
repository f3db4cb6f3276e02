"""Asking a person before a runbook acts: in the Prefect UI, or on the operator's terminal.

A deployment's run pauses with a typed form in the Prefect UI. An ad hoc run on a terminal
(`opsflow run ... --approval`) asks right there: the operator types the plan digest's first
characters. Either way the answer records the digest of the plan it approved, and no answer in
time is a reject whose reason ("no answer within 10s") ends up in the run's message and report.

Example:
    >>> Approval(approve=True, plan_digest="7713dd83891ba21f").approves("7713dd83891ba21f")
    True
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Protocol

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from opsflow.tasks.rollout_report import ApprovalRecord

# Prefect fails a run whose pause outlives its own timeout ("never resumed"), which would lose
# our reason; so Prefect's deadline is later than ours, and at ours we answer "no" ourselves.
PREFECT_DEADLINE_MARGIN_SECONDS = 120


class Approval(RunInput):
    """The form the Prefect UI shows on a paused run."""

    approve: bool = Field(default=False, description="Approve this plan? Leave off to reject.")
    plan_digest: str = Field(
        default="", description="The plan this answer is about; a different plan is refused."
    )
    note: str = Field(default="", max_length=500, description="Why; recorded in the report.")
    approver: str = Field(
        default="",
        max_length=100,
        description="Your name: recorded with the decision, the note and the time in the report.",
    )

    def approves(self, digest: str) -> bool:
        """Yes, and for exactly this plan."""
        return self.approve and self.plan_digest == digest

    def record(self, digest: str) -> ApprovalRecord:
        """The audit record of this answer to the plan `digest` (the report keeps it)."""
        if self.approves(digest):
            decision = "approved"
        elif self.approver == NOBODY:
            decision = "no answer"
        else:
            decision = "rejected"
        return ApprovalRecord(
            decision=decision,  # type: ignore[arg-type]
            plan_digest=self.plan_digest or digest,
            note=self.note,
            approver=self.approver or "an unnamed user of the Prefect UI",
            answered_at=datetime.now(timezone.utc),
        )


NOBODY = "nobody"  # the approver of "no answer in time"


class Approver(Protocol):
    """Someone asked directly (the terminal) instead of through the Prefect UI."""

    def ask(self, summary: str, digest: str, timeout_seconds: int) -> Approval: ...


_direct: Approver | None = None


@contextmanager
def approvals_from(approver: Approver) -> Iterator[None]:
    """Within the block, `request_approval` asks `approver` instead of pausing for the UI."""
    global _direct
    previous, _direct = _direct, approver
    try:
        yield
    finally:
        _direct = previous


def request_approval(
    summary: str, digest: str, timeout_seconds: int, poll_seconds: float = 2.0
) -> Approval:
    """Ask for approval of the plan `digest`; no answer within `timeout_seconds` is a reject.

    Must be called from a flow (Prefect pauses flow runs, not task runs).

    Returns:
        The answer; ``answer.approves(digest)`` is the only yes.
    """
    logger = get_run_logger()
    if _direct is not None:
        answer = _direct.ask(summary, digest, timeout_seconds)
    else:
        logger.warning(
            "plan %s waits up to %ds for approval: press Resume on this run's page in the "
            "Prefect UI%s to approve or reject it: %s",
            digest,
            timeout_seconds,
            f" ({url})" if (url := run_page()) else "",
            summary,
        )
        answer = _pause_for_the_ui(summary, digest, timeout_seconds, poll_seconds)
    if answer.approve and answer.plan_digest != digest:
        answer = Approval(
            approve=False,
            plan_digest=answer.plan_digest,
            note=f"the answer approved plan {answer.plan_digest or '(none)'}, not {digest}",
            approver=answer.approver,
        )
    logger.info(
        "plan %s %s%s",
        digest,
        "approved" if answer.approves(digest) else "not approved",
        f": {answer.note}" if answer.note else "",
    )
    return answer


def run_page() -> str | None:
    """This flow run's page in the Prefect UI, where the approval form is."""
    from prefect.settings import PREFECT_UI_URL

    ui, run_id = PREFECT_UI_URL.value(), flow_run.get_id()
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui and run_id else None


def _pause_for_the_ui(
    summary: str, digest: str, timeout_seconds: int, poll_seconds: float
) -> Approval:
    form = Approval.with_initial_data(
        description=f"**Approve plan {digest}?**\n\n{summary}", plan_digest=digest
    )
    answered = threading.Event()
    no_answer = Approval(
        approve=False,
        plan_digest=digest,
        note=f"no answer within {timeout_seconds}s",
        approver=NOBODY,
    )
    run_id = flow_run.get_id()

    def reject_at_the_deadline() -> None:
        if answered.wait(timeout_seconds):
            return
        try:
            resume_flow_run(run_id, run_input=no_answer.model_dump(exclude={"metadata"}))
        except Exception:  # noqa: BLE001 - answered at the last moment: the answer stands
            pass

    watchdog = threading.Thread(target=reject_at_the_deadline, daemon=True)
    watchdog.start()
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=timeout_seconds + PREFECT_DEADLINE_MARGIN_SECONDS,
            poll_interval=max(1, round(poll_seconds)),
        )
    except FlowPauseTimeout:
        return no_answer
    finally:
        answered.set()
    return Approval(
        approve=answer.approve,
        plan_digest=answer.plan_digest,
        note=answer.note,
        approver=answer.approver.strip(),
    )
