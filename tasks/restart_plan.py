"""Planning a rolling restart: the policy (the runbook's parameters), the plan, the plan task."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field, model_validator

from opsflow.blocks import Alertmanager, Prometheus
from opsflow.opsapi.models import Host, HostSelector
from opsflow.tasks.fleet_budget import FleetBudget
from opsflow.tasks.monitoring import MAX_SAMPLE_AGE_SECONDS
from opsflow.tasks.parameters import (
    DEFAULT_BLOCK_HELP,
    NotifyBlock,
    Platform,
    StrictModel,
    by_name,
    not_above,
    notify_block_field,
)

SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$"


class RestartPolicy(StrictModel):
    """What to restart, how carefully, and how to tell that it worked.

    Example:
        >>> RestartPolicy(threshold=4, recovery_threshold=2, batch_size=2).restart_command
        'systemctl restart nginx'
    """

    platform: Platform = Field(
        default=None, description=f"The ops platform that runs the restarts. {DEFAULT_BLOCK_HELP}"
    )
    prometheus: Annotated[Prometheus | None, by_name(Prometheus)] = Field(
        default=None, description=f"Where the load is read. {DEFAULT_BLOCK_HELP}"
    )
    query: str = Field(
        default="node_load1", min_length=1, description="PromQL giving load per instance."
    )
    threshold: float = Field(
        default=4.0, gt=0, description="Restart hosts whose load is above this."
    )
    max_sample_age_seconds: float = Field(
        default=MAX_SAMPLE_AGE_SECONDS,
        ge=1,
        le=3600,
        description="Load samples older than this are stale: their hosts are not acted on.",
    )
    recovery_threshold: float = Field(
        default=2.0, gt=0, description="A restarted host is healthy again below this load."
    )
    selector: HostSelector = Field(
        default_factory=HostSelector, description="Only hosts with these tags / hostname pattern."
    )
    max_hosts: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Blast-radius cap: more candidates than this aborts the run (fleet-wide incident?).",
    )
    batch_size: int = Field(default=2, ge=1, le=1000, description="Hosts restarted at once.")
    max_failures: int = Field(
        default=1, ge=1, description="Stop the rollout once this many hosts failed (all batches)."
    )
    service: str = Field(default="nginx", pattern=SERVICE_NAME, description="Service to restart.")
    job_timeout_seconds: int = Field(
        default=120, ge=1, le=3600, description="Per-host timeout of the restart and check jobs."
    )
    verify_window_seconds: float = Field(
        default=60, ge=0, le=3600, description="How long a restarted host may take to recover."
    )
    poll_seconds: float = Field(default=1.0, gt=0, le=60, description="Polling interval.")
    cooldown_minutes: float = Field(
        default=30,
        ge=0,
        le=10_080,
        description="Skip hosts whose service was restarted within this many minutes.",
    )
    max_repeats: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="A host restarted this often within --repeat-window-minutes is flapping: "
        "escalated (event, notification, failed run), not restarted again.",
    )
    repeat_window_minutes: float = Field(
        default=360,
        ge=0,
        le=10_080,
        description="The window of --max-repeats, read from the backend's job history; 0: off.",
    )
    fleet_budget_hosts: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="Fleet budget: at most this many hosts restarted by all runs of this "
        "runbook together within --fleet-budget-minutes (eight alerts are eight runs). "
        "Empty: max_hosts.",
    )
    fleet_budget_minutes: float | None = Field(
        default=None,
        ge=0,
        le=10_080,
        description="The fleet budget's sliding window. Empty: cooldown_minutes; 0: no budget.",
    )
    fleet_budget_key: str = Field(
        default="",
        pattern=r"^[a-z0-9_-]{0,64}$",
        description="Runs with another key (a tag, a team) count against a budget of their own.",
    )
    approval: bool = Field(
        default=False, description="Pause for approval in the Prefect UI before acting."
    )
    approval_timeout_seconds: int = Field(
        default=3600, ge=1, le=604_800, description="No answer within this time means reject."
    )
    alertmanager: Annotated[Alertmanager | None, by_name(Alertmanager, fallback=None)] = Field(
        default=None, description="Silence the hosts' alerts here while they restart. Empty: none."
    )
    notify_block: NotifyBlock = notify_block_field()
    dry_run: bool = Field(default=False, description="Plan and report, restart nothing.")

    @model_validator(mode="after")
    def _recovery_below_threshold(self) -> RestartPolicy:
        not_above(self, "recovery_threshold", "threshold")
        return self

    @property
    def fleet_budget(self) -> FleetBudget:
        """The budget every run of this runbook (with this key) counts against."""
        return FleetBudget(
            runbook="restart-overloaded-hosts",
            hosts=self.max_hosts if self.fleet_budget_hosts is None else self.fleet_budget_hosts,
            minutes=(
                self.cooldown_minutes
                if self.fleet_budget_minutes is None
                else self.fleet_budget_minutes
            ),
            key=self.fleet_budget_key,
        )

    @property
    def restart_command(self) -> str:
        return f"systemctl restart {self.service}"

    @property
    def health_command(self) -> str:
        return f"systemctl is-active {self.service}"


class Candidate(BaseModel):
    """A host the plan will act on, with the value (load, disk usage, ...) that put it there."""

    host_id: str
    hostname: str
    ip: str
    instance: str
    value: float


class RestartPlan(BaseModel):
    """The hosts to restart, in batches, and everything that was left out and why."""

    threshold: float
    candidates: list[Candidate] = Field(default_factory=list)
    batches: list[list[Candidate]] = Field(default_factory=list)
    blast_radius_exceeded: bool = False
    max_hosts: int = 0
    hosts_without_data: list[str] = Field(default_factory=list)
    series_without_host: list[str] = Field(default_factory=list)
    hosts_considered: int = 0
    over_threshold: int = 0
    cooling_down: dict[str, float] = Field(
        default_factory=dict, description="hostname -> minutes since its last restart"
    )
    flapping: dict[str, int] = Field(
        default_factory=dict,
        description="hostname -> restarts within the repeat window (max_repeats reached)",
    )
    repeat_window_minutes: float = 0
    being_handled: list[str] = Field(
        default_factory=list,
        description="cooling-down hosts another run holds (still restarting or verifying them)",
    )

    @property
    def flapping_text(self) -> str:
        """ "flapping: lab-web-01 restarted 3 times in 6 h; escalated, not restarted" """
        hours = f"{self.repeat_window_minutes / 60:g} h"
        hosts = ", ".join(f"{h} restarted {n} times" for h, n in list(self.flapping.items())[:20])
        return f"flapping: {hosts} in {hours}; escalated, not restarted"

    @property
    def over_threshold_text(self) -> str:
        """ "3 of 10 hosts over 4" — the same words in the plan, the log and an abort."""
        return f"{self.over_threshold} of {self.hosts_considered} hosts over {self.threshold:g}"

    def without(self, host_ids: set[str], batch_size: int) -> RestartPlan:
        """The same plan minus some hosts, re-batched."""
        kept = [c for c in self.candidates if c.host_id not in host_ids]
        batches = [kept[i : i + batch_size] for i in range(0, len(kept), batch_size)]
        return self.model_copy(update={"candidates": kept, "batches": batches})

    @property
    def digest(self) -> str:
        """A short hash of what will be touched, in which order (for approvals)."""
        layout = [[c.host_id for c in batch] for batch in self.batches]
        return hashlib.sha256(json.dumps(layout).encode()).hexdigest()[:16]


def build_plan(
    values: pd.DataFrame,
    hosts: list[Host],
    all_ips: set[str],
    threshold: float,
    max_hosts: int,
    batch_size: int,
    recent: dict[str, float] | None = None,
    repeats: dict[str, int] | None = None,
    max_repeats: int = 0,
    repeat_window_minutes: float = 0,
) -> RestartPlan:
    """Join a metric with the selected hosts and decide; pure, so it is easy to test.

    Args:
        values: one row per instance with `instance`, `ip`, `value` (load, disk usage, ...).
        hosts: the selected hosts.
        all_ips: every IP in the inventory, to tell unselected hosts from unknown series.
        threshold: act on hosts whose value is above this.
        max_hosts: the blast-radius cap.
        batch_size: hosts per batch.
        recent: host id -> minutes since its last restart, for hosts within the cooldown.
        repeats: host id -> restarts within the repeat window; `max_repeats` or more (when
            given) is a flapping host: left out and escalated.
    """
    recent = recent or {}
    repeats = repeats or {}
    by_ip = {
        ip: (instance, value)
        for instance, ip, value in values[["instance", "ip", "value"]].itertuples(index=False)
    }
    without_data = sorted(h.hostname for h in hosts if h.ip not in by_ip)
    unknown = sorted(
        inst for inst, ip in zip(values["instance"], values["ip"], strict=True) if ip not in all_ips
    )
    over = [
        Candidate(
            host_id=h.id,
            hostname=h.hostname,
            ip=h.ip,
            instance=by_ip[h.ip][0],
            value=float(by_ip[h.ip][1]),
        )
        for h in hosts
        if h.ip in by_ip and by_ip[h.ip][1] > threshold
    ]
    over.sort(key=lambda c: (-c.value, c.hostname))
    # The cap counts every host over the threshold: cooling-down hosts are part of the incident.
    exceeded = len(over) > max_hosts
    flapping = {
        c.hostname: repeats[c.host_id]
        for c in over
        if max_repeats and repeats.get(c.host_id, 0) >= max_repeats
    }
    over = [c for c in over if c.hostname not in flapping]
    cooling = {c.hostname: round(recent[c.host_id], 1) for c in over if c.host_id in recent}
    over = [c for c in over if c.host_id not in recent]
    batches = (
        [] if exceeded else [over[i : i + batch_size] for i in range(0, len(over), batch_size)]
    )
    return RestartPlan(
        threshold=threshold,
        candidates=over,
        batches=batches,
        blast_radius_exceeded=exceeded,
        max_hosts=max_hosts,
        hosts_without_data=without_data,
        series_without_host=unknown,
        hosts_considered=len(hosts),
        over_threshold=len(over) + len(cooling) + len(flapping),
        cooling_down=cooling,
        flapping=flapping,
        repeat_window_minutes=repeat_window_minutes,
    )


@task(name="Plan restarts", cache_policy=NO_CACHE)
def plan_restarts(
    loads: pd.DataFrame,
    hosts: list[Host],
    all_ips: set[str],
    policy: RestartPolicy,
    recent: dict[str, float] | None = None,
    repeats: dict[str, int] | None = None,
) -> RestartPlan:
    """Decide what to restart and publish the plan as an artifact."""
    plan = build_plan(
        loads,
        hosts,
        all_ips,
        policy.threshold,
        policy.max_hosts,
        policy.batch_size,
        recent,
        repeats,
        policy.max_repeats if policy.repeat_window_minutes else 0,
        policy.repeat_window_minutes,
    )
    logger = get_run_logger()
    logger.info(
        "plan %s: %s; %s%s",
        plan.digest,
        plan.over_threshold_text,
        f"{len(plan.batches)} batch{'es' if len(plan.batches) != 1 else ''}",
        f", {len(plan.cooling_down)} cooling down" if plan.cooling_down else "",
    )
    if plan.flapping:
        logger.error(plan.flapping_text)
    if plan.hosts_without_data:
        logger.warning(
            "no load data for %d hosts (not acted on): %s",
            len(plan.hosts_without_data),
            ", ".join(plan.hosts_without_data[:20]),
        )
    if plan.series_without_host:
        logger.warning(
            "%d series match no host in the inventory: %s",
            len(plan.series_without_host),
            ", ".join(plan.series_without_host[:20]),
        )
    rows = [
        {"batch": n, "hostname": c.hostname, "ip": c.ip, "load": round(c.value, 2)}
        for n, batch in enumerate(plan.batches, 1)
        for c in batch
    ] or [
        {"batch": "-", "hostname": c.hostname, "ip": c.ip, "load": round(c.value, 2)}
        for c in plan.candidates
    ]
    create_table_artifact(rows, key="restart-plan", description=f"Restart plan {plan.digest}")
    return plan


PLAN_ROWS = 50  # hosts listed in the approval form; the plan artifact has every one


def plan_markdown(plan: RestartPlan) -> str:
    """The plan as markdown, for the approval and the summary: the hosts in their batches, then
    the caveats (hosts without data, unknown series, the cap, the cooldown)."""
    lines = [
        f"**Plan {plan.digest}**: {plan.over_threshold_text}; {len(plan.candidates)} to restart."
    ]
    if plan.batches:
        lines += ["", "| batch | host | ip | load |", "|---|---|---|---|"]
        rows = [(n, c) for n, batch in enumerate(plan.batches, 1) for c in batch]
        lines += [f"| {n} | {c.hostname} | {c.ip} | {c.value:.2f} |" for n, c in rows[:PLAN_ROWS]]
        if len(rows) > PLAN_ROWS:
            lines.append(f"| … | {PLAN_ROWS} of {len(rows)} shown | | |")
        lines.append("")
    if plan.blast_radius_exceeded:
        lines.append(
            f"- Blast radius exceeded: {plan.over_threshold} hosts over the threshold > cap {plan.max_hosts}."
        )
    if plan.cooling_down:
        cooling = ", ".join(f"{h} ({m:g} min ago)" for h, m in list(plan.cooling_down.items())[:50])
        lines.append(f"- Skipped, restarted within the cooldown: {cooling}")
    if plan.flapping:
        lines.append(f"- {plan.flapping_text[0].upper()}{plan.flapping_text[1:]}")
    if plan.hosts_without_data:
        lines.append(f"- No load data (not acted on): {', '.join(plan.hosts_without_data[:50])}")
    if plan.series_without_host:
        lines.append(f"- Series without a host: {', '.join(plan.series_without_host[:50])}")
    return "\n".join(lines)
