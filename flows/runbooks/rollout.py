"""The rollout engine: every acting runbook is one rollout, with the same guarantees.

    1. read the inventory and select (a host named that it lacks is refused with the closest
       names; a selector that picks none ends `nothing_matched`, a Failed run of its own, never
       "nothing to do"); read the signal (no usable data, no action)
    2. plan: hosts on the bad side of the threshold (every selected host when there is no
       signal), minus those within the cooldown and the flapping ones, ordered worst first,
       capped (`max_hosts`); the plan is an artifact with a digest; a dry run stops here
    3. optional approval bound to the plan's digest (UI form or terminal)
    4. per-host locks shared by every run; the cooldown re-checked under them; the fleet
       budget shared by every run of the runbook (N hosts per window); optional silence
    5. batches: re-read the signal (a host that recovered is left alone), the action job,
       the optional health job, verification (the signal back on its good side of the
       recovery bound within the window); stop once failures reach `max_failures`
    6. report, events, notification, typed result: one end for every runbook

A runbook is a `Rollout` (what it does, what it answers) and a policy (its parameters):

Example:
    >>> from opsflow.tasks.rollout_policy import Action, Rollout, RolloutPolicy
    >>> uptime = Rollout(runbook="uptime", action=Action(name="command", done="ran", command="uptime"))
    >>> roll_out(uptime, RolloutPolicy(selector={"tags": ["db"]}, dry_run=True))    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger
from prefect.states import State
from prefect.utilities.annotations import quote

from opsflow.blocks import Prometheus
from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.flows.runbooks.approval import request_approval
from opsflow.opsapi.errors import OpsAPIError, UnknownHosts
from opsflow.opsapi.models import Host
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.alerts import expire_silence, silence_hosts
from opsflow.tasks.events import host_acted_on, host_flapping, rollout_aborted
from opsflow.tasks.fleet_budget import claim_hosts
from opsflow.tasks.host_locks import action_history, host_locks, locked_now, recently_acted_on
from opsflow.tasks.host_selection import HostSelection
from opsflow.tasks.hosts import select_hosts
from opsflow.tasks.jobs import cancel_grace, run_job
from opsflow.tasks.monitoring import Reading, current_values_of, wait_for_recovery
from opsflow.tasks.parameters import PLATFORM_TYPES
from opsflow.tasks.rollout_plan import Candidate, RolloutPlan, plan_markdown, plan_rollout
from opsflow.tasks.rollout_policy import RemediationPolicy, Rollout, RolloutPolicy
from opsflow.tasks.rollout_report import (
    FAILED_OUTCOMES,
    LOCKED_ELSEWHERE,
    ApprovalRecord,
    HostOutcome,
    RolloutReport,
    acted_elsewhere,
    judge_batch,
    planned_outcomes,
    publish_report,
)
from opsflow.tasks.runbook import (
    NOTHING_MATCHED,
    chosen,
    final_state,
    read_metric,
    refused,
    run_key,
)
from opsflow.tasks.wording import plural


def roll_out(rollout: Rollout, policy: RolloutPolicy) -> State:
    """Run `rollout` under `policy` from the first reading to the report; call it from a flow.

    The run ends Failed (with the report as its data) when a host failed, the rollout was
    aborted or not approved, or a host on the bad side was left alone with nobody else on it;
    Failed named `NothingMatched` when the selector picked no host; Failed with the one line
    of `UnknownHosts` as its message when it named a host the inventory lacks.
    """
    engine = _Engine(rollout, policy)
    try:
        plan, selection, values = engine.plan()
    except UnknownHosts as exc:  # a host named that the inventory lacks: nothing is done
        return refused(exc)
    action = rollout.action
    if plan.blast_radius_exceeded:
        why = "looks fleet-wide" if rollout.signal else "narrow the selector or raise max_hosts"
        reason = (
            f"{plan.over_threshold_text} exceeds the blast-radius cap of {policy.max_hosts}: "
            f"{why}, nothing {action.done}"
        )
        return engine.finish(plan, "aborted", reason, planned_outcomes(plan, "not touched"))
    if not selection.selected:  # a typo, a renamed tag: never "nothing to do", never green
        return engine.finish(plan, "nothing_matched", selection.nothing_matched, [])
    if not plan.batches:
        recovered = engine.recovered_since_named(values, selection.selected, plan)
        why = [plan.over_threshold_text]
        if plan.cooling_down:
            why.append(f"{plural(len(plan.cooling_down), 'host')} within the cooldown")
        if plan.flapping:
            why.append(plan.flapping_text)
        if recovered:
            why.append(f"{plural(len(recovered), 'host')} recovered before {action.name}")
        reason = f"no host to {action.doing}: {', '.join(why)}"
        return engine.finish(plan, "nothing_to_do", reason, recovered)
    if policy.dry_run:
        would = (
            f"would {action.doing} {plural(len(plan.candidates), 'host')} "
            f"in {plural(len(plan.batches), 'batch')}"
        )
        return engine.finish(
            plan, "dry_run", f"{would}; nothing {action.done}", planned_outcomes(plan, "planned")
        )
    if policy.approval:
        answer = request_approval(
            plan_markdown(plan), plan.digest, policy.approval_timeout_seconds, policy.poll_seconds
        )
        engine.approval = answer.record(plan.digest)
        if not answer.approves(plan.digest):
            return engine.finish(
                plan,
                "aborted",
                f"not approved: {answer.note or 'rejected'}",
                planned_outcomes(plan, "not touched"),
                approved=None,
            )
    return engine.locked_rollout(plan)


class _Engine:
    """The steps of `roll_out`, each over the rollout, its policy and its blocks."""

    def __init__(self, rollout: Rollout, policy: RolloutPolicy) -> None:
        self.rollout, self.action, self.signal = rollout, rollout.action, rollout.signal
        self.policy = policy
        self.approval: ApprovalRecord | None = None  # the decision, when approval was asked
        self.guarded = policy if isinstance(policy, RemediationPolicy) else None
        if self.signal is not None and self.guarded is None:
            raise TypeError("a rollout with a signal needs a RemediationPolicy (its Prometheus)")
        self.platform: ExecutionBackendBlock = chosen(policy.platform, PLATFORM_TYPES, "platform")
        self.prometheus: Prometheus | None = (
            chosen(self.guarded.prometheus, Prometheus, "prometheus")
            if self.guarded and self.signal
            else None
        )

    # -- 1-2: read, select, plan -------------------------------------------------------------

    def plan(self) -> tuple[RolloutPlan, HostSelection, Sequence[Reading] | None]:
        """The plan, the selection and the first reading of the signal (None without).

        The inventory is read first: a host named that it lacks is refused (`UnknownHosts`)
        and a selector that picks none is planned empty, before the signal is read.
        """
        signal, policy, guarded = self.signal, self.policy, self.guarded
        selection = select_hosts(self.platform, policy.selector)
        selected = selection.selected
        if signal is None or guarded is None or not selected:
            # No signal, or no host to read it for: a selector that picked none ends
            # nothing_matched whatever the monitoring says (it may be down too).
            return plan_rollout(self.rollout, policy, quote(selected)), selection, None
        values = read_metric(
            self.prometheus,
            signal.query,
            signal.name,
            signal.max_sample_age_seconds,
            signal.freshness_query,
        )
        inventory = selection.inventory
        history = action_history(
            self.platform,
            self.action.command,
            guarded.cooldown_minutes,
            guarded.repeat_window_minutes,
        )
        # quote(): Prefect would walk every host of a large inventory looking for futures
        # before the task starts (about 0.3 s at 1,000 hosts); these are plain values.
        plan = plan_rollout(
            self.rollout,
            policy,
            quote(selected),
            quote({h.ip for h in inventory}),
            quote(values),
            quote(history.recent),
            quote(history.repeats),
        )
        if plan.cooling_down:
            plan = self.cooling_checked(plan, selected)
        return plan, selection, values

    def cooling_checked(self, plan: RolloutPlan, selected: list[Host]) -> RolloutPlan:
        """Hosts within the cooldown and still bad: is another run still on them (its lock),
        or are they bad again after an action that ended? Those nobody holds are read again
        after the locks were asked: a run that verified one and let go of it a moment ago did
        so after this run's first reading, which may be older than that recovery (seen in CI:
        six overlapping runs, one Failed "needs attention" over a host verified meanwhile)."""
        signal = self.signal
        hosts = {h.hostname: h for h in selected}
        cooling = [n for n in plan.cooling_down if n in hosts]
        held = set(locked_now([hosts[n].id for n in cooling]))
        handled = [n for n in cooling if hosts[n].id in held]
        free = [n for n in cooling if n not in handled]
        recovered: list[str] = []
        if free and signal is not None:
            try:
                now = current_values_of(
                    self.prometheus,
                    signal.query,
                    [hosts[n].ip for n in free],
                    signal.max_sample_age_seconds,
                    signal.freshness_query,
                )
            except OpsAPIError:  # cannot tell: they stay bad, and the report says so
                now = {}
            recovered = [
                n for n in free if (v := now.get(hosts[n].ip)) is not None and not signal.bad(v)
            ]
        if recovered:
            get_run_logger().info(
                "recovered since the first reading (%s within the cooldown): %s",
                self.action.done,
                ", ".join(recovered),
            )
        still = {n: m for n, m in plan.cooling_down.items() if n not in recovered}
        return plan.model_copy(update={"being_handled": handled, "cooling_down": still})

    def recovered_since_named(
        self, values: Sequence[Reading] | None, selected: list[Host], plan: RolloutPlan
    ) -> list[HostOutcome]:
        """Hosts the run was started for by name (an alert's hosts) that are on the good side
        now: the alert resolved before the run could act, so they are reported, not acted on."""
        if self.signal is None or self.policy.selector.hostnames is None:
            return []
        planned = {c.host_id for c in plan.candidates} | set(plan.cooling_down)
        now = {r.ip: r.value for r in values or []}
        return [
            HostOutcome(
                hostname=h.hostname,
                host_id=h.id,
                ip=h.ip,
                value_before=now[h.ip],
                value_after=now[h.ip],
                result=f"recovered before {self.action.name}",
                detail=f"{self.signal.name} {now[h.ip]:.2f}, not {self.signal.over} "
                f"{self.signal.threshold:g} any more",
            )
            for h in selected
            if h.ip in now and h.id not in planned and h.hostname not in planned
        ]

    # -- 4: locks, re-check, budget, silence -------------------------------------------------

    def locked_rollout(self, plan: RolloutPlan) -> State:
        policy, guarded = self.policy, self.guarded
        over_budget: list[HostOutcome] = []
        claim_reason = ""
        with host_locks([c.host_id for c in plan.candidates]) as (_, locked_elsewhere):
            # Checked again under the locks: another run may have acted on them meanwhile.
            again = (
                recently_acted_on(self.platform, self.action.command, guarded.cooldown_minutes)
                if guarded and guarded.cooldown_minutes
                else {}
            )
            busy = set(locked_elsewhere) | {
                c.host_id for c in plan.candidates if c.host_id in again
            }
            skipped = [o for o in planned_outcomes(plan, "not touched") if o.host_id in busy]
            for outcome in skipped:
                outcome.detail = (
                    LOCKED_ELSEWHERE
                    if outcome.host_id in locked_elsewhere
                    else acted_elsewhere(self.action.done)
                )
            to_run = plan.without(busy, policy.batch_size)
            if guarded is not None:
                # What every run of this runbook did lately counts too (eight alerts, eight runs).
                claim = claim_hosts(guarded.fleet_budget, [c.host_id for c in to_run.candidates])
                refused = set(claim.refused)
                over_budget = [
                    o for o in planned_outcomes(plan, "not touched") if o.host_id in refused
                ]
                for outcome in over_budget:
                    outcome.detail = claim_reason = claim.reason
                to_run = to_run.without(refused, policy.batch_size)
            outcomes = skipped + over_budget + self.silenced(to_run)

        approved = plan.digest if policy.approval else None
        failed = [o for o in outcomes if o.failed]
        reasons = []
        if failed:
            reasons.append(f"{plural(len(failed), 'host')} failed (limit {policy.max_failures})")
        if over_budget:
            reasons.append(f"{plural(len(over_budget), 'host')} not touched: {claim_reason}")
        if reasons:
            return self.finish(plan, "failed", "; ".join(reasons), outcomes, approved)
        if self.signal is None:
            ran = sum(o.result == "succeeded" for o in outcomes)
            command = mask_secrets(self.action.command)
            reason = f"{command[:200]!r} succeeded on {plural(ran, 'host')}"
        else:
            verified = sum(o.verified for o in outcomes)
            reason = f"{plural(verified, 'host')} {self.action.done} and verified"
        return self.finish(plan, "completed", reason, outcomes, approved)

    def silenced(self, plan: RolloutPlan) -> list[HostOutcome]:
        """The batches, inside an Alertmanager silence when one is configured."""
        if not plan.batches:
            return []
        alertmanager = self.guarded.alertmanager if self.guarded else None
        if alertmanager is None:
            return self.batches(plan)
        timeout = self.policy.job_timeout_seconds
        job_seconds = timeout + cancel_grace(timeout)
        per_batch = 2 * job_seconds + self.guarded.verify_window_seconds  # type: ignore[union-attr]
        minutes = max(5.0, len(plan.batches) * per_batch / 60)
        silence_id = silence_hosts(
            alertmanager,
            [c.instance for c in plan.candidates],
            minutes,
            f"opsflow {self.rollout.runbook}, plan {plan.digest}",
        )
        try:
            return self.batches(plan)
        finally:
            expire_silence(alertmanager, silence_id)

    # -- 5: batches ---------------------------------------------------------------------------

    def batches(self, plan: RolloutPlan) -> list[HostOutcome]:
        """Batch by batch: re-read, act, health-check, verify; stop at the failure limit."""
        logger = get_run_logger()
        key = run_key()
        outcomes: list[HostOutcome] = []
        failures, limit = 0, self.policy.max_failures
        for number, batch in enumerate(plan.batches, 1):
            if failures >= limit:
                skipped = [o for o in planned_outcomes(plan, "not touched") if o.batch == number]
                for outcome in skipped:
                    outcome.detail = f"rollout stopped after {failures} failures"
                outcomes += skipped
                continue
            try:
                batch, recovered = self.still_bad(batch, number)
            except OpsAPIError as exc:
                # The signal cannot be read again before the batch: it and the batches after it
                # are not touched (acting on what may have changed is what the re-read prevents).
                logger.error("rollout stopped before batch %d: %s", number, exc)
                left = [
                    o for o in planned_outcomes(plan, "not touched") if (o.batch or 0) >= number
                ]
                for outcome in left:
                    outcome.detail = (
                        f"not {self.action.done}: the {self.signal.name if self.signal else 'signal'} "
                        f"could not be read again: {exc}"
                    )[:300]
                return outcomes + left
            outcomes += recovered
            if not batch:
                continue
            logger.info(
                "batch %d/%d: %s", number, len(plan.batches), ", ".join(c.hostname for c in batch)
            )
            try:
                judged = self.act(batch, number, key)
            except OpsAPIError as exc:
                # The backend failed mid-batch (a job could not be submitted or followed): these
                # hosts count as failed, and the report says which step broke.
                logger.error("batch %d broke off: %s", number, exc)
                in_batch = {c.host_id for c in batch}  # not those that recovered before it
                judged = [
                    o
                    for o in planned_outcomes(plan, f"{self.action.name} failed")
                    if o.host_id in in_batch
                ]
                for outcome in judged:
                    outcome.detail = f"batch broke off: {exc}"[:300]
            failures += sum(o.failed for o in judged)
            outcomes += judged
            if failures >= limit and number < len(plan.batches):
                logger.error(
                    "rollout stopped: %d failures reached the limit of %d", failures, limit
                )
        return outcomes

    def still_bad(
        self, batch: list[Candidate], number: int
    ) -> tuple[list[Candidate], list[HostOutcome]]:
        """The batch's hosts still on the bad side now (an approval may come an hour after the
        plan); the others are reported and left alone. A host is never added."""
        signal = self.signal
        if signal is None:
            return batch, []
        now = current_values_of(
            self.prometheus,
            signal.query,
            [c.ip for c in batch],
            signal.max_sample_age_seconds,
            signal.freshness_query,
        )
        still, recovered = [], []
        for c in batch:
            value = now.get(c.ip)
            if value is not None and signal.bad(value):
                still.append(c)
                continue
            recovered.append(
                HostOutcome(
                    hostname=c.hostname,
                    host_id=c.host_id,
                    ip=c.ip,
                    value_before=c.value,
                    value_after=value,
                    batch=number,
                    result=f"recovered before {self.action.name}",
                    detail=(
                        f"{signal.name} {value:.2f}, not {signal.over} {signal.threshold:g} any more"
                        if value is not None
                        else f"no current {signal.name} data: not {self.action.done}"
                    ),
                )
            )
        return still, recovered

    def act(self, batch: list[Candidate], number: int, key: str) -> list[HostOutcome]:
        """One batch: the action job, the health job on the hosts it succeeded on, then the
        signal's recovery on the healthy ones."""
        action, signal, policy = self.action, self.signal, self.policy
        job = run_job(
            self.platform,
            [c.host_id for c in batch],
            action.command,
            policy.job_timeout_seconds,
            f"{key}:{action.name}:{number}",
            policy.poll_seconds,
        )
        done = [c for c in batch if (r := job.result_for(c.host_id)) and r.succeeded]
        health = None
        if done and action.health_command:
            health = run_job(
                self.platform,
                [c.host_id for c in done],
                action.health_command,
                policy.job_timeout_seconds,
                f"{key}:health:{number}",
                policy.poll_seconds,
            )
            done = [c for c in done if (r := health.result_for(c.host_id)) and r.succeeded]
        values: dict[str, float | None] = {}
        unverifiable = ""
        if done and signal is not None and self.guarded is not None:
            try:
                values = wait_for_recovery(
                    self.prometheus,
                    signal.query,
                    [c.ip for c in done],
                    signal.recovery,
                    self.guarded.verify_window_seconds,
                    policy.poll_seconds,
                    signal.max_sample_age_seconds,
                    signal.freshness_query,
                    signal.side,
                )
            except OpsAPIError as exc:  # acted on, but whether they recovered cannot be told
                get_run_logger().error("batch %d not verified: %s", number, exc)
                unverifiable = f"monitoring unreachable: {exc}"
        return judge_batch(batch, number, action, job, health, values, signal, unverifiable)

    # -- 6: the end ----------------------------------------------------------------------------

    def finish(
        self,
        plan: RolloutPlan,
        outcome: str,
        reason: str,
        hosts: list[HostOutcome],
        approved: str | None = None,
    ) -> State:
        """Publish the report; the run fails (with the report as its data) on failure or abort,
        and when it left a host on the bad side alone that nobody else is on (bad again within
        the cooldown, flapping, fleet budget): a run that fixed nothing of a sick host is not a
        green one. Hosts another run holds are left to it, with a warning."""
        report = RolloutReport(
            runbook=self.rollout.runbook,
            action=self.action.name,
            done=self.action.done,
            signal=self.signal.name if self.signal else None,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            plan_digest=plan.digest,
            approved_plan=approved,
            approval=self.approval,
            threshold=plan.threshold,
            hosts=hosts,
            hosts_without_data=plan.hosts_without_data,
            series_without_host=plan.series_without_host,
            cooling_down=plan.cooling_down,
            flapping=plan.flapping,
            being_handled=plan.being_handled,
        )
        logger = get_run_logger()
        side = f"{self.signal.over} the threshold" if self.signal else ""
        if outcome in ("completed", "nothing_to_do") and report.needs_attention:
            left = report.needs_attention
            report.outcome = "needs_attention"
            parts = [reason]
            if plan.flapping and plan.flapping_text not in reason:
                parts.append(plan.flapping_text)
            parts.append(
                f"{plural(len(left), 'host')} {side} left alone: "
                f"{', '.join(left[:10])}{' …' if len(left) > 10 else ''}"
            )
            report.reason = "; ".join(parts)
        elif outcome in ("completed", "nothing_to_do") and report.held_elsewhere:
            held = report.held_elsewhere
            report.reason = (
                f"{reason}; {plural(len(held), 'host')} {side} left to the run holding "
                f"{'it' if len(held) == 1 else 'them'}: {', '.join(held[:10])}"
            )
            logger.warning(report.reason)
        report = publish_report(quote(report), quote(plan))
        self.emit_events(report, plan)
        if report.outcome == "nothing_matched":
            logger.error(report.summary)
            return final_state(report, failed=True, name=NOTHING_MATCHED)
        failed = report.outcome in FAILED_OUTCOMES
        (logger.error if failed else logger.info)(report.summary)
        return final_state(report, failed)

    def emit_events(self, report: RolloutReport, plan: RolloutPlan) -> None:
        """A verified host, a flapping host, an aborted rollout: events for automations."""
        name = self.signal.name.replace(" ", "_") if self.signal else "value"
        for host in report.hosts:
            if host.verified:
                host_acted_on(
                    self.action.done,
                    host.hostname,
                    {
                        f"{name}_before": host.value_before,
                        f"{name}_after": host.value_after,
                        "job_id": host.job_id,
                        "runbook": report.runbook,
                    },
                )
        for hostname, times in report.flapping.items():
            host_flapping(
                hostname,
                {
                    "times": times,
                    "action": self.action.name,
                    "runbook": report.runbook,
                    "window_minutes": plan.repeat_window_minutes,
                    "plan": plan.digest,
                },
            )
        if report.outcome in FAILED_OUTCOMES:
            rollout_aborted(
                report.runbook,
                report.summary,
                {"plan": plan.digest, "not_touched": report.not_touched},
            )
