"""The outcome of a rollout: per-host results, the typed report and its artifacts.

A run's outcome is one of: completed, dry_run, nothing_to_do (hosts were selected and none is
on the bad side), nothing_matched (the selector picked no host: a typo, a renamed tag, an
empty inventory; never "all healthy"), needs_attention, failed, aborted.

A host's result is one of: verified (the signal came back), succeeded (no signal: the job
exited 0), "<action> failed", unhealthy (the health job failed), "<signal> did not recover",
not verified (monitoring unreachable after the action), "recovered before <action>", not
touched, planned. Every result but verified, succeeded, recovered and not touched/planned counts
against `max_failures`.

Example:
    >>> report = RolloutReport(outcome="dry_run", reason="would restart 1 host", plan_digest="ab")
    >>> report.summary
    'dry run: would restart 1 host'
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from opsflow.opsapi.models import Job, JobResult
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.rollout_plan import Candidate, RolloutPlan, plan_markdown
from opsflow.tasks.rollout_policy import Action, Signal

NOT_FAILED: frozenset[str] = frozenset({"verified", "succeeded", "not touched", "planned"})
Outcome = Literal[
    "dry_run",
    "nothing_matched",
    "nothing_to_do",
    "completed",
    "needs_attention",
    "failed",
    "aborted",
]
# Outcomes that end the run Failed: "needs_attention" is a run that left a host on the bad side
# alone (cooldown, flapping, fleet budget): not a silent success. "nothing_matched" (the
# selector picked no host) ends Failed too, under a state name of its own (`NOTHING_MATCHED`):
# it is not an aborted rollout, and "nothing_to_do" is kept for a fleet with nothing to fix.
FAILED_OUTCOMES: frozenset[str] = frozenset({"needs_attention", "failed", "aborted"})
LOCKED_ELSEWHERE = "locked by another run"
OUTPUT_KEPT = 2000  # characters of each host's stdout and stderr kept in the report


def acted_elsewhere(done: str) -> str:
    """The detail of a host another run acted on after this run's plan ("restarted by ...")."""
    return f"{done} by another run meanwhile"


class ApprovalRecord(BaseModel):
    """Who decided about a plan, what, when and why: part of the report and its artifact.

    Example:
        >>> ApprovalRecord(decision="approved", plan_digest="ab", approver="kim (terminal)",
        ...                answered_at=datetime(2026, 12, 4, tzinfo=timezone.utc)).line
        'approved plan ab by kim (terminal) at 2026-12-04 00:00:00 UTC'
    """

    decision: Literal["approved", "rejected", "no answer"]
    plan_digest: str = Field(description="The plan the answer was about.")
    note: str = ""
    approver: str = Field(description="Who answered: the UI form's name, or the terminal's user.")
    answered_at: datetime

    @property
    def line(self) -> str:
        when = self.answered_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        note = f": {self.note}" if self.note else ""
        return f"{self.decision} plan {self.plan_digest} by {self.approver} at {when}{note}"


class HostOutcome(BaseModel):
    """What happened to one planned host."""

    hostname: str
    host_id: str
    ip: str
    value_before: float | None = None
    value_after: float | None = None
    batch: int | None = None
    job_id: str | None = None
    result: str = "not touched"
    verified: bool = False
    detail: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def failed(self) -> bool:
        return self.result not in NOT_FAILED and not self.result.startswith("recovered before")


class RolloutReport(BaseModel):
    """A rollout runbook's typed result."""

    runbook: str = ""
    action: str = "restart"
    done: str = "restarted"
    signal: str | None = "load"
    outcome: Outcome
    reason: str
    plan_digest: str
    approved_plan: str | None = Field(
        default=None, description="The plan digest the approval was given for, if one was asked."
    )
    approval: ApprovalRecord | None = Field(
        default=None, description="The decision on the plan, when approval was asked."
    )
    threshold: float | None = None
    hosts: list[HostOutcome] = Field(default_factory=list)
    hosts_without_data: list[str] = Field(default_factory=list)
    series_without_host: list[str] = Field(default_factory=list)
    cooling_down: dict[str, float] = Field(
        default_factory=dict, description="hostname -> minutes since the action last ran there"
    )
    flapping: dict[str, int] = Field(
        default_factory=dict, description="hostname -> times acted on within the repeat window"
    )
    being_handled: list[str] = Field(
        default_factory=list,
        description="cooling-down hosts another run holds (still acting on or verifying them)",
    )

    @property
    def table_columns(self) -> tuple[str, ...]:
        if self.signal is None:
            return ("hostname", "batch", "result", "exit_code", "stdout", "detail")
        return ("hostname", "ip", "batch", "value_before", "value_after", "result", "detail")

    @property
    def table_titles(self) -> dict[str, str]:
        return {"value_before": f"{self.signal} before", "value_after": f"{self.signal} after"}

    def hostnames(self, result: str) -> list[str]:
        return [h.hostname for h in self.hosts if h.result == result]

    @property
    def verified(self) -> list[str]:
        return [h.hostname for h in self.hosts if h.verified]

    @property
    def failed(self) -> list[str]:
        return [h.hostname for h in self.hosts if h.failed]

    @property
    def not_touched(self) -> list[str]:
        return self.hostnames("not touched")

    @property
    def needs_attention(self) -> list[str]:
        """Hosts on the bad side this run left alone and nobody else is on: acted on within
        the cooldown and bad again, flapping, over the fleet budget, or after the rollout
        stopped. A host another run holds (acting on or verifying it) or acted on meanwhile is
        that run's to report; a run that died holding it is marked Crashed."""
        if self.signal is None:
            return []
        others = {acted_elsewhere(self.done), LOCKED_ELSEWHERE}
        left = {h.hostname for h in self.hosts if h.result == "not touched"}
        left -= {h.hostname for h in self.hosts if h.detail in others}
        cooling = set(self.cooling_down) - set(self.being_handled)
        return sorted(left | cooling | set(self.flapping))

    @property
    def held_elsewhere(self) -> list[str]:
        """Hosts another run holds (acting on or verifying them): left to it, said as a
        warning (a run that died holding them is marked Crashed)."""
        locked = {h.hostname for h in self.hosts if h.detail == LOCKED_ELSEWHERE}
        return sorted(locked | set(self.being_handled))

    @property
    def recovered_before(self) -> list[str]:
        return [h.hostname for h in self.hosts if h.result.startswith("recovered before")]

    @property
    def summary(self) -> str:
        """One line: what happened and why, then the counts when hosts were in play."""
        text = f"{self.outcome.replace('_', ' ')}: {self.reason}"
        if self.outcome in ("dry_run", "nothing_matched", "nothing_to_do") or not self.hosts:
            return text
        fine = "verified" if self.signal is not None else "succeeded"
        counts = [
            f"{len(self.hostnames(fine))} {fine}",
            f"{len(self.failed)} failed",
            f"{len(self.not_touched)} not touched",
        ]
        if self.recovered_before:
            counts.append(f"{len(self.recovered_before)} recovered before {self.action}")
        if self.needs_attention:
            counts.append(f"{len(self.needs_attention)} need attention")
        first = next((h for h in self.hosts if h.failed and h.detail), None)
        why = f"; first failure: {first.hostname}: {first.detail}" if first else ""
        return f"{text} — {', '.join(counts)}{why}"


def planned_outcomes(plan: RolloutPlan, result: str) -> list[HostOutcome]:
    """Every candidate of the plan, all marked `result` (before anything ran)."""
    batch_of = {c.host_id: n for n, batch in enumerate(plan.batches, 1) for c in batch}
    return [
        HostOutcome(
            hostname=c.hostname,
            host_id=c.host_id,
            ip=c.ip,
            value_before=c.value,
            batch=batch_of.get(c.host_id),
            result=result,
        )
        for c in plan.candidates
    ]


def judge_batch(
    batch: list[Candidate],
    number: int,
    action: Action,
    job: Job,
    health: Job | None,
    values: dict[str, float | None],
    signal: Signal | None,
    unverifiable: str = "",
) -> list[HostOutcome]:
    """Each host of a batch: did the action succeed, is it healthy, and is the signal back on
    its good side? `unverifiable` says why the signal could not be read after the action
    (monitoring down): a host acted on and healthy is then "not verified", a failure. Without
    a signal a host that exited 0 (and passed the health job, if any) "succeeded"."""
    outcomes = []
    for c in batch:
        ran = job.result_for(c.host_id)
        outcome = HostOutcome(
            hostname=c.hostname,
            host_id=c.host_id,
            ip=c.ip,
            value_before=c.value,
            batch=number,
            job_id=job.job_id,
            value_after=values.get(c.ip),
            **_output(ran),
        )
        checked = health.result_for(c.host_id) if health else None
        if ran is None or not ran.succeeded:
            outcome.result = f"{action.name} failed"
            outcome.detail = _why(ran, f"{action.name} job {job.status.value}")
        elif action.health_command and (checked is None or not checked.succeeded):
            outcome.result = "unhealthy"
            outcome.detail = _why(checked, "health check did not run")
        elif signal is None:
            outcome.result = "succeeded"
        elif unverifiable:
            outcome.result = "not verified"
            outcome.detail = f"{action.done} and healthy; not verified: {unverifiable}"[:300]
        elif outcome.value_after is None or not signal.recovered(outcome.value_after):
            outcome.result = f"{signal.name} did not recover"
            after = outcome.value_after
            shown = "no data" if after is None else f"{after:.2f}"
            needs = "<" if signal.side == "above" else ">"
            outcome.detail = f"{signal.name} {shown}, needs {needs} {signal.recovery:g}"
        else:
            outcome.result, outcome.verified = "verified", True
        outcomes.append(outcome)
    return outcomes


def _output(result: JobResult | None) -> dict[str, object]:
    """A host's exit code and the tail of its output, secrets masked."""
    if result is None:
        return {}
    return {
        "exit_code": result.exit_code,
        "stdout": mask_secrets(result.stdout[-OUTPUT_KEPT:]),
        "stderr": mask_secrets(result.stderr[-OUTPUT_KEPT:]),
    }


def _why(result: JobResult | None, fallback: str) -> str:
    if result is None:
        return fallback
    text = (result.stderr or result.stdout or "").strip()
    if not text and result.status.value == "cancelled":
        text = "no result within the job timeout, so the runbook cancelled it"
    return f"{result.status.value}, exit {result.exit_code}: {mask_secrets(text)[:200]}"


@task(name="Publish report", cache_policy=NO_CACHE)
def publish_report(report: RolloutReport, plan: RolloutPlan) -> RolloutReport:
    """The report as a table artifact and a markdown summary."""
    signal = report.signal
    rows = [
        {
            "host": h.hostname,
            "ip": h.ip,
            **(
                {
                    f"{signal} before": _rounded(h.value_before),
                    f"{signal} after": _rounded(h.value_after),
                }
                if signal is not None
                else {
                    "exit code": h.exit_code,
                    "stdout": h.stdout[-200:],
                    "stderr": h.stderr[-200:],
                }
            ),
            "batch": h.batch,
            "job": h.job_id,
            "result": h.result,
            "verified": h.verified,
            "detail": h.detail,
        }
        for h in report.hosts
    ]
    create_table_artifact(
        rows or [{"host": "-", "result": report.outcome}],
        key=f"{report.action}-report",
        description=report.summary,
    )
    approval = f"**Approval**: {report.approval.line}\n\n" if report.approval else ""
    create_markdown_artifact(
        f"## {report.runbook}: {report.outcome}\n\n{report.summary}\n\n{approval}"
        f"{plan_markdown(plan)}",
        key=f"{report.action}-summary",
    )
    return report


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
