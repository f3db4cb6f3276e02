"""Planning a rollout: which hosts, in which batches, and what was left out and why.

Example:
    >>> from opsflow.opsapi.models import Host
    >>> from opsflow.tasks.monitoring import Reading
    >>> values = [Reading(instance="10.0.0.1:9100", ip="10.0.0.1", value=9.0)]
    >>> host = Host(id="1", hostname="web-1", ip="10.0.0.1")
    >>> plan = build_plan(values, [host], {"10.0.0.1"}, threshold=4, max_hosts=5, batch_size=2)
    >>> [[c.hostname for c in batch] for batch in plan.batches]
    [['web-1']]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Literal

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from opsflow.opsapi.models import Host
from opsflow.tasks.monitoring import Reading
from opsflow.tasks.rollout_policy import RemediationPolicy, Rollout, RolloutPolicy
from opsflow.tasks.wording import minutes_ago, plural


class Candidate(BaseModel):
    """A host the plan will act on, with the value (load, disk usage, ...) that put it there."""

    host_id: str
    hostname: str
    ip: str
    instance: str = ""
    value: float | None = Field(default=None, description="None: no signal (run-command).")


class RolloutPlan(BaseModel):
    """The hosts to act on, in batches, and everything that was left out and why."""

    action: str = "restart"
    doing: str = "restart"
    done: str = "restarted"
    signal: str | None = "load"
    side: Literal["above", "below"] = "above"
    threshold: float | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    batches: list[list[Candidate]] = Field(default_factory=list)
    blast_radius_exceeded: bool = False
    max_hosts: int = 0
    hosts_without_data: list[str] = Field(default_factory=list)
    series_without_host: list[str] = Field(default_factory=list)
    hosts_considered: int = 0
    over_threshold: int = 0
    cooling_down: dict[str, float] = Field(
        default_factory=dict, description="hostname -> minutes since the action last ran there"
    )
    flapping: dict[str, int] = Field(
        default_factory=dict,
        description="hostname -> times acted on within the repeat window (max_repeats reached)",
    )
    repeat_window_minutes: float = 0
    being_handled: list[str] = Field(
        default_factory=list,
        description="cooling-down hosts another run holds (still acting on or verifying them)",
    )

    @property
    def flapping_text(self) -> str:
        """ "flapping: lab-web-01 restarted 3 times in 6 h; escalated, not restarted" """
        hours = f"{self.repeat_window_minutes / 60:g} h"
        hosts = ", ".join(f"{h} {self.done} {n} times" for h, n in list(self.flapping.items())[:20])
        return f"flapping: {hosts} in {hours}; escalated, not {self.done}"

    @property
    def over_threshold_text(self) -> str:
        """ "3 of 10 hosts over 4" — the same words in the plan, the log and an abort."""
        if self.signal is None:
            return f"{plural(self.hosts_considered, 'host')} selected"
        over = "over" if self.side == "above" else "under"
        return f"{self.over_threshold} of {self.hosts_considered} hosts {over} {self.threshold:g}"

    def without(self, host_ids: set[str], batch_size: int) -> RolloutPlan:
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
    values: Sequence[Reading],
    hosts: list[Host],
    all_ips: set[str],
    threshold: float,
    max_hosts: int,
    batch_size: int,
    recent: dict[str, float] | None = None,
    repeats: dict[str, int] | None = None,
    max_repeats: int = 0,
    repeat_window_minutes: float = 0,
    side: Literal["above", "below"] = "above",
) -> RolloutPlan:
    """Join a metric with the selected hosts and decide; pure, so it is easy to test.

    Args:
        values: one reading per instance: `instance`, `ip`, `value` (load, disk usage, ...).
        hosts: the selected hosts.
        all_ips: every IP in the inventory, to tell unselected hosts from unknown series.
        threshold: act on hosts whose value is on the bad `side` of this.
        max_hosts: the blast-radius cap.
        batch_size: hosts per batch.
        recent: host id -> minutes since the action last ran there, within the cooldown.
        repeats: host id -> times acted on within the repeat window; `max_repeats` or more
            (when given) is a flapping host: left out and escalated.
        side: "above" (the default: worst = highest first) or "below" (worst = lowest first).
    """
    recent = recent or {}
    repeats = repeats or {}
    by_ip = {r.ip: (r.instance, r.value) for r in values}
    without_data = sorted(h.hostname for h in hosts if h.ip not in by_ip)
    unknown = sorted(r.instance for r in values if r.ip not in all_ips)
    sign = 1 if side == "above" else -1
    over = [
        Candidate(
            host_id=h.id,
            hostname=h.hostname,
            ip=h.ip,
            instance=by_ip[h.ip][0],
            value=float(by_ip[h.ip][1]),
        )
        for h in hosts
        if h.ip in by_ip and sign * by_ip[h.ip][1] > sign * threshold
    ]
    over.sort(key=lambda c: (-sign * (c.value or 0), c.hostname))
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
    return RolloutPlan(
        side=side,
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


@task(name="Plan rollout", cache_policy=NO_CACHE)
def plan_rollout(
    rollout: Rollout,
    policy: RolloutPolicy,
    hosts: list[Host],
    all_ips: set[str] | None = None,
    values: Sequence[Reading] | None = None,
    recent: dict[str, float] | None = None,
    repeats: dict[str, int] | None = None,
) -> RolloutPlan:
    """Decide which hosts to act on and publish the plan as an artifact.

    With a signal: the hosts on its bad side (`values` joined with `hosts`), minus cooling-down
    and flapping ones. Without one: every host given, in order.
    """
    signal = rollout.signal
    if signal is None or values is None:
        chosen = [Candidate(host_id=h.id, hostname=h.hostname, ip=h.ip) for h in hosts]
        plan = RolloutPlan(
            signal=None,
            candidates=chosen,
            batches=[
                chosen[i : i + policy.batch_size] for i in range(0, len(chosen), policy.batch_size)
            ],
            max_hosts=policy.max_hosts,
            hosts_considered=len(hosts),
            over_threshold=len(hosts),
        )
        if len(chosen) > policy.max_hosts:
            plan = plan.model_copy(update={"blast_radius_exceeded": True, "batches": []})
    else:
        guarded = policy if isinstance(policy, RemediationPolicy) else None
        plan = build_plan(
            values,
            hosts,
            all_ips or set(),
            signal.threshold,
            policy.max_hosts,
            policy.batch_size,
            recent,
            repeats,
            guarded.max_repeats if guarded and guarded.repeat_window_minutes else 0,
            guarded.repeat_window_minutes if guarded else 0,
            signal.side,
        ).model_copy(update={"signal": signal.name})
    action = rollout.action
    plan = plan.model_copy(
        update={"action": action.name, "doing": action.doing, "done": action.done}
    )
    logger = get_run_logger()
    logger.info(
        "plan %s: %s; %s%s",
        plan.digest,
        plan.over_threshold_text,
        plural(len(plan.batches), "batch"),
        f", {len(plan.cooling_down)} cooling down" if plan.cooling_down else "",
    )
    if plan.flapping:
        logger.error(plan.flapping_text)
    if plan.hosts_without_data:
        logger.warning(
            "no %s data for %d hosts (not acted on): %s",
            plan.signal,
            len(plan.hosts_without_data),
            ", ".join(plan.hosts_without_data[:20]),
        )
    if plan.series_without_host:
        logger.warning(
            "%d series match no host in the inventory: %s",
            len(plan.series_without_host),
            ", ".join(plan.series_without_host[:20]),
        )
    create_table_artifact(
        _plan_rows(plan),
        key=f"{plan.action}-plan",
        description=f"{plan.action.capitalize()} plan {plan.digest}",
    )
    return plan


def _plan_rows(plan: RolloutPlan) -> list[dict[str, object]]:
    def row(batch: int | str, c: Candidate) -> dict[str, object]:
        shown = {"batch": batch, "hostname": c.hostname, "ip": c.ip}
        if plan.signal is not None:
            shown[plan.signal] = None if c.value is None else round(c.value, 2)
        return shown

    rows = [row(n, c) for n, batch in enumerate(plan.batches, 1) for c in batch]
    return rows or [row("-", c) for c in plan.candidates]


PLAN_ROWS = 50  # hosts listed in the approval form; the plan artifact has every one


def plan_markdown(plan: RolloutPlan) -> str:
    """The plan as markdown, for the approval and the summary: the hosts in their batches, then
    the caveats (hosts without data, unknown series, the cap, the cooldown)."""
    lines = [
        f"**Plan {plan.digest}**: {plan.over_threshold_text}; "
        f"{len(plan.candidates)} to {plan.doing}."
    ]
    if plan.batches:
        measured = plan.signal is not None
        lines += [
            "",
            f"| batch | host | ip |{f' {plan.signal} |' if measured else ''}",
            f"|---|---|---|{'---|' if measured else ''}",
        ]
        rows = [(n, c) for n, batch in enumerate(plan.batches, 1) for c in batch]
        lines += [
            f"| {n} | {c.hostname} | {c.ip} |"
            + (f" {c.value:.2f} |" if measured and c.value is not None else "")
            for n, c in rows[:PLAN_ROWS]
        ]
        if len(rows) > PLAN_ROWS:
            lines.append(f"| … | {PLAN_ROWS} of {len(rows)} shown | |{' |' if measured else ''}")
        lines.append("")
    if plan.blast_radius_exceeded:
        lines.append(f"- Blast radius exceeded: {plan.over_threshold_text} > cap {plan.max_hosts}.")
    if plan.cooling_down:
        cooling = ", ".join(
            f"{h} ({minutes_ago(m)})" for h, m in list(plan.cooling_down.items())[:50]
        )
        lines.append(f"- Skipped, {plan.done} within the cooldown: {cooling}")
    if plan.flapping:
        lines.append(f"- {plan.flapping_text[0].upper()}{plan.flapping_text[1:]}")
    if plan.hosts_without_data:
        lines.append(
            f"- No {plan.signal} data (not acted on): {', '.join(plan.hosts_without_data[:50])}"
        )
    if plan.series_without_host:
        lines.append(f"- Series without a host: {', '.join(plan.series_without_host[:50])}")
    return "\n".join(lines)
