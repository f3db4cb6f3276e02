"""Runbook: restart overloaded hosts in batches and verify that they recovered.

    1. clients from blocks, the platform token from Vault
    2. load from Prometheus, hosts from the platform, joined; no data, no action
    3. plan: over the threshold, selected, not in cooldown, ordered by load, capped;
       the plan is an artifact and a dry run stops here
    4. optional approval in the Prefect UI (no answer in time = reject)
    5. per-host locks shared by every run; the fleet budget shared by every run (at most N
       hosts per window, however many runs); optional Alertmanager silence
    6. rolling restart: restart job, health-check job, load under the recovery threshold;
       stop once failures reach the limit
    7. silence expired, report artifact, notification, typed result

Example:
    >>> from opsflow.flows.restart_overloaded_hosts import restart_overloaded_hosts, RestartPolicy
    >>> report = restart_overloaded_hosts(RestartPolicy(threshold=4, dry_run=True))  # doctest: +SKIP
    >>> report.outcome                                                               # doctest: +SKIP
    'dry_run'
"""

from __future__ import annotations

import pandas as pd
from prefect import flow, get_run_logger
from prefect.states import State
from prefect.utilities.annotations import quote

from opsflow.blocks import Prometheus
from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.flows.approval import request_approval
from opsflow.opsapi.errors import OpsAPIError
from opsflow.opsapi.models import Host
from opsflow.tasks.alerts import expire_silence, silence_hosts
from opsflow.tasks.events import host_flapping, host_restarted, rollout_aborted
from opsflow.tasks.fleet_budget import claim_hosts
from opsflow.tasks.host_locks import (
    host_locks,
    locked_now,
    recently_restarted,
    restart_history,
)
from opsflow.tasks.hosts import list_hosts
from opsflow.tasks.jobs import cancel_grace, run_job
from opsflow.tasks.monitoring import current_values_of, wait_for_recovery
from opsflow.tasks.notify import notify_on_finish
from opsflow.tasks.parameters import PLATFORM_TYPES
from opsflow.tasks.restart_plan import (
    Candidate,
    RestartPlan,
    RestartPolicy,
    plan_markdown,
    plan_restarts,
)
from opsflow.tasks.restart_report import (
    FAILED_OUTCOMES,
    LOCKED_ELSEWHERE,
    RESTARTED_ELSEWHERE,
    HostOutcome,
    RestartReport,
    judge_batch,
    planned_outcomes,
    publish_report,
)
from opsflow.tasks.runbook import (
    chosen,
    final_state,
    read_metric,
    run_key,
    with_deployment_defaults,
)
from opsflow.tasks.wording import plural

DEFAULTS = RestartPolicy()  # the form's defaults; never mutated


@flow(
    name="restart-overloaded-hosts", on_completion=[notify_on_finish], on_failure=[notify_on_finish]
)
def restart_overloaded_hosts(policy: RestartPolicy = DEFAULTS) -> State:
    """Restart the service of hosts over a load threshold, in batches, and verify they recovered.

    The plan (who, in which batches) is an artifact; a dry run stops there. Failures are counted
    across batches and stop the rollout at `max_failures`.
    """
    return _restart_overloaded_hosts(with_deployment_defaults(policy, "policy"))


def _restart_overloaded_hosts(policy: RestartPolicy) -> State:
    platform = chosen(policy.platform, PLATFORM_TYPES, "platform")
    prometheus = chosen(policy.prometheus, Prometheus, "prometheus")

    loads = read_metric(prometheus, policy.query, "load", policy.max_sample_age_seconds)
    inventory = list_hosts(platform)
    selected = [h for h in inventory if policy.selector.matches(h)]
    history = restart_history(
        platform, policy.restart_command, policy.cooldown_minutes, policy.repeat_window_minutes
    )
    # quote(): Prefect would walk every host of a large inventory looking for futures before
    # the task starts (about 0.3 s at 1,000 hosts); these are plain values.
    plan = plan_restarts(
        quote(loads),
        quote(selected),
        quote({h.ip for h in inventory}),
        policy,
        quote(history.recent),
        quote(history.repeats),
    )

    if plan.cooling_down:  # back over the threshold after a restart, or still being restarted?
        ids = {h.hostname: h.id for h in selected}
        held = set(locked_now([ids[name] for name in plan.cooling_down if name in ids]))
        handled = [name for name in plan.cooling_down if ids.get(name) in held]
        plan = plan.model_copy(update={"being_handled": handled})

    if plan.blast_radius_exceeded:
        reason = (
            f"{plan.over_threshold_text} exceeds the blast-radius cap of {policy.max_hosts}: "
            "looks fleet-wide, nothing restarted"
        )
        return finish(plan, "aborted", reason, planned_outcomes(plan, "not touched"))
    if not selected:
        return finish(plan, "nothing_to_do", "nothing matched: the selector picked no host", [])
    if not plan.batches:
        recovered = recovered_since_named(loads, selected, plan, policy)
        why = [plan.over_threshold_text]
        if plan.cooling_down:
            why.append(f"{plural(len(plan.cooling_down), 'host')} within the cooldown")
        if plan.flapping:
            why.append(plan.flapping_text)
        if recovered:
            why.append(f"{plural(len(recovered), 'host')} recovered before restart")
        return finish(plan, "nothing_to_do", f"no host to restart: {', '.join(why)}", recovered)
    if policy.dry_run:
        would = f"would restart {plural(len(plan.candidates), 'host')} in {plural(len(plan.batches), 'batch')}"
        return finish(
            plan, "dry_run", f"{would}; nothing restarted", planned_outcomes(plan, "planned")
        )
    if policy.approval:
        answer = request_approval(
            plan_markdown(plan), plan.digest, policy.approval_timeout_seconds, policy.poll_seconds
        )
        if not answer.approves(plan.digest):
            return finish(
                plan,
                "aborted",
                f"not approved: {answer.note or 'rejected'}",
                planned_outcomes(plan, "not touched"),
                approved=None,
            )

    with host_locks([c.host_id for c in plan.candidates]) as (_, locked_elsewhere):
        # Checked again under the locks: another run may have restarted them meanwhile.
        again = recently_restarted(platform, policy.restart_command, policy.cooldown_minutes)
        busy = set(locked_elsewhere) | {c.host_id for c in plan.candidates if c.host_id in again}
        skipped = [o for o in planned_outcomes(plan, "not touched") if o.host_id in busy]
        for outcome in skipped:
            outcome.detail = (
                LOCKED_ELSEWHERE if outcome.host_id in locked_elsewhere else RESTARTED_ELSEWHERE
            )
        to_run = plan.without(busy, policy.batch_size)
        # What every run of this runbook did lately counts too (eight alerts, eight runs).
        claim = claim_hosts(policy.fleet_budget, [c.host_id for c in to_run.candidates])
        refused = set(claim.refused)
        over_budget = [o for o in planned_outcomes(plan, "not touched") if o.host_id in refused]
        for outcome in over_budget:
            outcome.detail = claim.reason
        to_run = to_run.without(refused, policy.batch_size)
        outcomes = skipped + over_budget + silenced_rollout(platform, prometheus, to_run, policy)

    approved = plan.digest if policy.approval else None
    failed = [o for o in outcomes if o.failed]
    reasons = []
    if failed:
        reasons.append(f"{plural(len(failed), 'host')} failed (limit {policy.max_failures})")
    if over_budget:
        reasons.append(f"{plural(len(over_budget), 'host')} not touched: {claim.reason}")
    if reasons:
        return finish(plan, "failed", "; ".join(reasons), outcomes, approved)
    verified = sum(o.verified for o in outcomes)
    reason = f"{plural(verified, 'host')} restarted and verified"
    return finish(plan, "completed", reason, outcomes, approved)


def recovered_since_named(
    loads: pd.DataFrame, selected: list[Host], plan: RestartPlan, policy: RestartPolicy
) -> list[HostOutcome]:
    """Hosts the run was started for by name (an alert's hosts) that are under the threshold
    now: the alert resolved before the run could act, so they are reported, not restarted."""
    if policy.selector.hostnames is None:
        return []
    planned = {c.host_id for c in plan.candidates} | set(plan.cooling_down)
    now = dict(zip(loads["ip"], loads["value"], strict=True))
    return [
        HostOutcome(
            hostname=h.hostname,
            host_id=h.id,
            ip=h.ip,
            load_before=now[h.ip],
            load_after=now[h.ip],
            result="recovered before restart",
            detail=f"load {now[h.ip]:.2f}, not over {policy.threshold:g} any more",
        )
        for h in selected
        if h.ip in now and h.id not in planned and h.hostname not in planned
    ]


def silenced_rollout(
    platform: ExecutionBackendBlock,
    prometheus: Prometheus,
    plan: RestartPlan,
    policy: RestartPolicy,
) -> list[HostOutcome]:
    """The rolling restart, inside an Alertmanager silence when one is configured."""
    if not plan.batches:
        return []
    alertmanager = policy.alertmanager
    if alertmanager is None:
        return rolling_restart(platform, prometheus, plan, policy)
    job_seconds = policy.job_timeout_seconds + cancel_grace(policy.job_timeout_seconds)
    per_batch = 2 * job_seconds + policy.verify_window_seconds
    minutes = max(5.0, len(plan.batches) * per_batch / 60)
    silence_id = silence_hosts(
        alertmanager,
        [c.instance for c in plan.candidates],
        minutes,
        f"opsflow restart-overloaded-hosts, plan {plan.digest}",
    )
    try:
        return rolling_restart(platform, prometheus, plan, policy)
    finally:
        expire_silence(alertmanager, silence_id)


def rolling_restart(
    platform: ExecutionBackendBlock,
    prometheus: Prometheus,
    plan: RestartPlan,
    policy: RestartPolicy,
) -> list[HostOutcome]:
    """Batch by batch: restart, health-check, wait for the load to fall; stop at the limit."""
    logger = get_run_logger()
    key = run_key()
    outcomes: list[HostOutcome] = []
    failures = 0
    for number, batch in enumerate(plan.batches, 1):
        if failures >= policy.max_failures:
            skipped = [o for o in planned_outcomes(plan, "not touched") if o.batch == number]
            for outcome in skipped:
                outcome.detail = f"rollout stopped after {failures} failures"
            outcomes += skipped
            continue
        try:
            batch, recovered = still_over(prometheus, batch, number, policy)
        except OpsAPIError as exc:
            # The load cannot be read again before the batch: it and the batches after it
            # are not touched (acting on what may have changed is what the re-read prevents).
            logger.error("rollout stopped before batch %d: %s", number, exc)
            left = [o for o in planned_outcomes(plan, "not touched") if (o.batch or 0) >= number]
            for outcome in left:
                outcome.detail = f"not restarted: the load could not be read again: {exc}"[:300]
            return outcomes + left
        outcomes += recovered
        if not batch:
            continue
        logger.info(
            "batch %d/%d: %s", number, len(plan.batches), ", ".join(c.hostname for c in batch)
        )
        try:
            judged = restart_batch(platform, prometheus, batch, number, policy, key)
        except OpsAPIError as exc:
            # The platform failed mid-batch (a job could not be submitted or followed): these
            # hosts count as failed, and the report says which step broke.
            logger.error("batch %d broke off: %s", number, exc)
            in_batch = {c.host_id for c in batch}  # not those that recovered before it
            judged = [o for o in planned_outcomes(plan, "restart failed") if o.host_id in in_batch]
            for outcome in judged:
                outcome.detail = f"batch broke off: {exc}"[:300]
        failures += sum(not o.verified for o in judged)
        outcomes += judged
        if failures >= policy.max_failures and number < len(plan.batches):
            logger.error(
                "rollout stopped: %d failures reached the limit of %d",
                failures,
                policy.max_failures,
            )
    return outcomes


def still_over(
    prometheus: Prometheus, batch: list[Candidate], number: int, policy: RestartPolicy
) -> tuple[list[Candidate], list[HostOutcome]]:
    """The batch's hosts whose load is still over the threshold now (an approval may come an
    hour after the plan); the others are reported and left alone. A host is never added."""
    now = current_values_of(
        prometheus, policy.query, [c.ip for c in batch], policy.max_sample_age_seconds
    )
    still, recovered = [], []
    for c in batch:
        load = now.get(c.ip)
        if load is not None and load > policy.threshold:
            still.append(c)
            continue
        outcome = HostOutcome(
            hostname=c.hostname,
            host_id=c.host_id,
            ip=c.ip,
            load_before=c.value,
            load_after=load,
            batch=number,
            result="recovered before restart",
        )
        outcome.detail = (
            f"load {load:.2f}, not over {policy.threshold:g} any more"
            if load is not None
            else "no current load data: not restarted"
        )
        recovered.append(outcome)
    return still, recovered


def restart_batch(
    platform: ExecutionBackendBlock,
    prometheus: Prometheus,
    batch: list[Candidate],
    number: int,
    policy: RestartPolicy,
    run_key: str,
) -> list[HostOutcome]:
    """One batch: restart job, health-check job on the restarted, recovery of the healthy."""
    restart = run_job(
        platform,
        [c.host_id for c in batch],
        policy.restart_command,
        policy.job_timeout_seconds,
        f"{run_key}:restart:{number}",
        policy.poll_seconds,
    )
    restarted = [c for c in batch if (r := restart.result_for(c.host_id)) and r.succeeded]
    health = None
    if restarted:
        health = run_job(
            platform,
            [c.host_id for c in restarted],
            policy.health_command,
            policy.job_timeout_seconds,
            f"{run_key}:health:{number}",
            policy.poll_seconds,
        )
    healthy = [
        c for c in restarted if health and (r := health.result_for(c.host_id)) and r.succeeded
    ]
    loads, unverifiable = {}, ""
    if healthy:
        try:
            loads = wait_for_recovery(
                prometheus,
                policy.query,
                [c.ip for c in healthy],
                policy.recovery_threshold,
                policy.verify_window_seconds,
                policy.poll_seconds,
                policy.max_sample_age_seconds,
            )
        except OpsAPIError as exc:  # restarted, but whether they recovered cannot be told
            get_run_logger().error("batch %d not verified: %s", number, exc)
            unverifiable = f"monitoring unreachable: {exc}"
    return judge_batch(
        batch, number, restart, health, loads, policy.recovery_threshold, unverifiable
    )


def finish(
    plan: RestartPlan,
    outcome: str,
    reason: str,
    hosts: list[HostOutcome],
    approved: str | None = None,
) -> State:
    """Publish the report; the run fails (with the report as its data) on failure or abort, and
    when it left a host over the threshold alone that nobody else is on (back over it within
    the cooldown, flapping, fleet budget): a run that fixed nothing of a sick host is not a
    green one. Hosts another run holds are left to it, with a warning."""
    report = RestartReport(
        outcome=outcome,
        reason=reason,
        plan_digest=plan.digest,
        approved_plan=approved,
        threshold=plan.threshold,
        hosts=hosts,
        hosts_without_data=plan.hosts_without_data,
        series_without_host=plan.series_without_host,
        cooling_down=plan.cooling_down,
        flapping=plan.flapping,
        being_handled=plan.being_handled,
    )
    if outcome in ("completed", "nothing_to_do") and report.needs_attention:
        left = report.needs_attention
        report.outcome = "needs_attention"
        parts = [reason]
        if plan.flapping and plan.flapping_text not in reason:
            parts.append(plan.flapping_text)
        parts.append(
            f"{plural(len(left), 'host')} over the threshold left alone: "
            f"{', '.join(left[:10])}{' …' if len(left) > 10 else ''}"
        )
        report.reason = "; ".join(parts)
    elif outcome in ("completed", "nothing_to_do") and report.held_elsewhere:
        held = report.held_elsewhere
        report.reason = (
            f"{reason}; {plural(len(held), 'host')} over the threshold left to the run holding "
            f"{'it' if len(held) == 1 else 'them'}: {', '.join(held[:10])}"
        )
        get_run_logger().warning(report.reason)
    report = publish_report(quote(report), quote(plan))
    for host in report.hosts:
        if host.verified:
            host_restarted(
                host.hostname,
                {
                    "load_before": host.load_before,
                    "load_after": host.load_after,
                    "job_id": host.job_id,
                },
            )
    for hostname, restarts in report.flapping.items():
        host_flapping(
            hostname,
            {
                "restarts": restarts,
                "window_minutes": plan.repeat_window_minutes,
                "plan": plan.digest,
            },
        )
    failed = report.outcome in FAILED_OUTCOMES
    if failed:
        rollout_aborted(
            "restart-overloaded-hosts",
            report.summary,
            {"plan": plan.digest, "not_touched": report.not_touched},
        )
    (get_run_logger().error if failed else get_run_logger().info)(report.summary)
    return final_state(report, failed)
