"""The outcome of a rolling restart: per-host results, the typed report and its artifacts."""

from __future__ import annotations

from typing import ClassVar, Literal

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from opsflow.opsapi.models import Job
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.restart_plan import Candidate, RestartPlan, plan_markdown

HostResult = Literal[
    "verified",
    "restart failed",
    "unhealthy",
    "load did not recover",
    "not verified",
    "recovered before restart",
    "not touched",
    "planned",
]
NOT_FAILED: frozenset[str] = frozenset(
    {"verified", "recovered before restart", "not touched", "planned"}
)
Outcome = Literal["dry_run", "nothing_to_do", "completed", "needs_attention", "failed", "aborted"]
# Outcomes that end the run Failed: "needs_attention" is a run that left a host over the
# threshold alone (cooldown, flapping, locked elsewhere, fleet budget): not a silent success.
FAILED_OUTCOMES: frozenset[str] = frozenset({"needs_attention", "failed", "aborted"})
RESTARTED_ELSEWHERE = "restarted by another run meanwhile"
LOCKED_ELSEWHERE = "locked by another run"


class HostOutcome(BaseModel):
    """What happened to one planned host."""

    hostname: str
    host_id: str
    ip: str
    load_before: float
    load_after: float | None = None
    batch: int | None = None
    job_id: str | None = None
    result: HostResult = "not touched"
    verified: bool = False
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.result not in NOT_FAILED


class RestartReport(BaseModel):
    """The runbook's typed result."""

    table_columns: ClassVar[tuple[str, ...]] = (
        "hostname",
        "ip",
        "batch",
        "load_before",
        "load_after",
        "result",
        "detail",
    )

    outcome: Outcome
    reason: str
    plan_digest: str
    approved_plan: str | None = Field(
        default=None, description="The plan digest the approval was given for, if one was asked."
    )
    threshold: float
    hosts: list[HostOutcome] = Field(default_factory=list)
    hosts_without_data: list[str] = Field(default_factory=list)
    series_without_host: list[str] = Field(default_factory=list)
    cooling_down: dict[str, float] = Field(
        default_factory=dict, description="hostname -> minutes since its last restart"
    )
    flapping: dict[str, int] = Field(
        default_factory=dict, description="hostname -> restarts within the repeat window"
    )
    being_handled: list[str] = Field(
        default_factory=list,
        description="cooling-down hosts another run holds (still restarting or verifying them)",
    )

    def hostnames(self, result: HostResult) -> list[str]:
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
        """Hosts over the threshold this run left alone and nobody else is on: restarted
        within the cooldown and back over it, flapping, over the fleet budget, or after the
        rollout stopped. A host another run holds (restarting or verifying it) or restarted
        meanwhile is that run's to report; a run that died holding it is marked Crashed."""
        others = {RESTARTED_ELSEWHERE, LOCKED_ELSEWHERE}
        left = {h.hostname for h in self.hosts if h.result == "not touched"}
        left -= {h.hostname for h in self.hosts if h.detail in others}
        cooling = set(self.cooling_down) - set(self.being_handled)
        return sorted(left | cooling | set(self.flapping))

    @property
    def held_elsewhere(self) -> list[str]:
        """Hosts over the threshold another run holds (restarting or verifying them): left to
        it, said as a warning (a run that died holding them is marked Crashed)."""
        locked = {h.hostname for h in self.hosts if h.detail == LOCKED_ELSEWHERE}
        return sorted(locked | set(self.being_handled))

    @property
    def recovered_before_restart(self) -> list[str]:
        return self.hostnames("recovered before restart")

    @property
    def summary(self) -> str:
        """One line: what happened and why, then the counts when hosts were in play."""
        text = f"{self.outcome.replace('_', ' ')}: {self.reason}"
        if self.outcome in ("dry_run", "nothing_to_do") or not self.hosts:
            return text
        counts = [
            f"{len(self.verified)} verified",
            f"{len(self.failed)} failed",
            f"{len(self.not_touched)} not touched",
        ]
        if self.recovered_before_restart:
            counts.append(f"{len(self.recovered_before_restart)} recovered before restart")
        if self.needs_attention:
            counts.append(f"{len(self.needs_attention)} need attention")
        first = next((h for h in self.hosts if h.failed and h.detail), None)
        why = f"; first failure: {first.hostname}: {first.detail}" if first else ""
        return f"{text} — {', '.join(counts)}{why}"


def planned_outcomes(plan: RestartPlan, result: HostResult) -> list[HostOutcome]:
    """Every candidate of the plan, all marked `result` (before anything ran)."""
    batch_of = {c.host_id: n for n, batch in enumerate(plan.batches, 1) for c in batch}
    return [
        HostOutcome(
            hostname=c.hostname,
            host_id=c.host_id,
            ip=c.ip,
            load_before=c.value,
            batch=batch_of.get(c.host_id),
            result=result,
        )
        for c in plan.candidates
    ]


def judge_batch(
    batch: list[Candidate],
    number: int,
    restart: Job,
    health: Job | None,
    loads: dict[str, float | None],
    recovery_threshold: float,
    unverifiable: str = "",
) -> list[HostOutcome]:
    """Each host of a batch: restarted, healthy, and back under the recovery threshold?
    `unverifiable` says why the load could not be read after the restart (monitoring down):
    a restarted, healthy host is then "not verified", which counts as a failure."""
    outcomes = []
    for c in batch:
        outcome = HostOutcome(
            hostname=c.hostname,
            host_id=c.host_id,
            ip=c.ip,
            load_before=c.value,
            batch=number,
            job_id=restart.job_id,
            load_after=loads.get(c.ip),
        )
        restarted = restart.result_for(c.host_id)
        checked = health.result_for(c.host_id) if health else None
        if restarted is None or not restarted.succeeded:
            outcome.result = "restart failed"
            outcome.detail = _why(restarted, f"restart job {restart.status.value}")
        elif checked is None or not checked.succeeded:
            outcome.result = "unhealthy"
            outcome.detail = _why(checked, "health check did not run")
        elif unverifiable:
            outcome.result = "not verified"
            outcome.detail = f"restarted and healthy; not verified: {unverifiable}"[:300]
        elif outcome.load_after is None or outcome.load_after >= recovery_threshold:
            outcome.result = "load did not recover"
            shown = "no data" if outcome.load_after is None else f"{outcome.load_after:.2f}"
            outcome.detail = f"load {shown}, needs < {recovery_threshold:g}"
        else:
            outcome.result, outcome.verified = "verified", True
        outcomes.append(outcome)
    return outcomes


def _why(result: object, fallback: str) -> str:
    if result is None:
        return fallback
    text = (getattr(result, "stderr", "") or getattr(result, "stdout", "") or "").strip()
    if not text and result.status.value == "cancelled":  # type: ignore[attr-defined]
        text = "no result within the job timeout, so the runbook cancelled it"
    return f"{result.status.value}, exit {result.exit_code}: {mask_secrets(text)[:200]}"  # type: ignore[attr-defined]


@task(name="Publish report", cache_policy=NO_CACHE)
def publish_report(report: RestartReport, plan: RestartPlan) -> RestartReport:
    """The report as a table artifact and a markdown summary."""
    rows = [
        {
            "host": h.hostname,
            "ip": h.ip,
            "load before": round(h.load_before, 2),
            "load after": None if h.load_after is None else round(h.load_after, 2),
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
        key="restart-report",
        description=report.summary,
    )
    create_markdown_artifact(
        f"## Restart overloaded hosts: {report.outcome}\n\n{report.summary}\n\n{plan_markdown(plan)}",
        key="restart-summary",
    )
    return report
