"""What a rollout is: the action, the signal it answers, and the policy fields every acting runbook
shares (the brakes, the batches, the guarantees across runs).

A runbook is a rollout spec plus its own parameter model built on `RolloutPolicy` (an action on
hosts a selector picks: `run-command`) or `RemediationPolicy` (an action on hosts a Prometheus
signal shows as bad, verified by the same signal: `restart-overloaded-hosts`, `disk-cleanup`).

Example:
    >>> spec = Rollout(
    ...     runbook="disk-cleanup",
    ...     action=Action(name="cleanup", done="cleaned", command="find /var/log -delete"),
    ...     signal=Signal(name="disk usage", query="disk_used_percent", threshold=85, recovery=80),
    ... )
    >>> spec.signal.side
    'above'
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field

from opsflow.blocks import Alertmanager, Prometheus
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.fleet_budget import FleetBudget
from opsflow.tasks.monitoring import MAX_SAMPLE_AGE_SECONDS
from opsflow.tasks.parameters import (
    DEFAULT_BLOCK_HELP,
    NotifyBlock,
    Platform,
    StrictModel,
    by_name,
    notify_block_field,
)


class Action(BaseModel, frozen=True):
    """What the rollout does to each host, and the optional check that it took."""

    name: str = Field(description="One word: job keys, artifact keys and wording (restart).")
    done: str = Field(description="Its past tense, for reports and events (restarted).")
    verb: str = Field(
        default="", description="How a plan says it (clean up, run the command on). Empty: name."
    )
    command: str = Field(min_length=1, description="Run on each host of a batch.")
    health_command: str | None = Field(
        default=None, description="Run on the hosts the action succeeded on; must exit 0."
    )

    @property
    def doing(self) -> str:
        """ "would restart 2 hosts", "no host to clean up" """
        return self.verb or self.name


class Signal(BaseModel, frozen=True):
    """The metric that picks the hosts and tells whether the action fixed them."""

    name: str = Field(description="What the values are, for wording (load, disk usage).")
    query: str = Field(min_length=1, description="PromQL: one value per instance.")
    threshold: float = Field(description="Hosts on the bad side of this are acted on.")
    recovery: float = Field(description="An acted-on host is fixed once on the good side of this.")
    side: Literal["above", "below"] = Field(
        default="above",
        description="Which side of the threshold is bad: above (load, disk usage) or below "
        "(free memory, healthy replicas).",
    )
    freshness_query: str | None = Field(
        default=None,
        description="A plain selector of the same series whose sample time shows the data's "
        "age, when `query` is computed (a computed value is always 'now').",
    )
    max_sample_age_seconds: float = MAX_SAMPLE_AGE_SECONDS

    def bad(self, value: float) -> bool:
        """On the bad side of the threshold (the threshold itself is good)."""
        return value > self.threshold if self.side == "above" else value < self.threshold

    def recovered(self, value: float) -> bool:
        """Strictly on the good side of the recovery bound."""
        return value < self.recovery if self.side == "above" else value > self.recovery

    @property
    def over(self) -> str:
        """ "over" or "under": how a bad host is said to be."""
        return "over" if self.side == "above" else "under"


class Rollout(BaseModel, frozen=True):
    """A runbook as the engine sees it: which runbook, what it does, what it answers."""

    runbook: str = Field(description="The flow's name: events, budgets, notifications.")
    action: Action
    signal: Signal | None = Field(
        default=None, description="None: every host the selector picks (run-command)."
    )


class RolloutPolicy(StrictModel):
    """The fields every acting runbook has: where, how many, how carefully."""

    platform: Platform = Field(
        default=None, description=f"The backend that runs the jobs. {DEFAULT_BLOCK_HELP}"
    )
    selector: HostSelector = Field(
        default_factory=HostSelector, description="Only hosts with these tags / hostname pattern."
    )
    max_hosts: int = Field(
        default=5,
        ge=1,
        le=100_000,
        description="Blast-radius cap: more hosts than this aborts the run (fleet-wide incident?).",
    )
    batch_size: int = Field(default=2, ge=1, le=10_000, description="Hosts acted on at once.")
    max_failures: int = Field(
        default=1, ge=1, description="Stop the rollout once this many hosts failed (all batches)."
    )
    job_timeout_seconds: int = Field(
        default=120, ge=1, le=3600, description="Per-host timeout of each job."
    )
    poll_seconds: float = Field(default=1.0, gt=0, le=60, description="Polling interval.")
    approval: bool = Field(
        default=False, description="Pause for approval in the Prefect UI before acting."
    )
    approval_timeout_seconds: int = Field(
        default=3600, ge=1, le=604_800, description="No answer within this time means reject."
    )
    notify_block: NotifyBlock = notify_block_field()
    dry_run: bool = Field(default=False, description="Plan and report, act on nothing.")


class RemediationPolicy(RolloutPolicy):
    """A rollout that answers a signal: the data's freshness, verification, and the guarantees
    that hold across runs (cooldown, flapping, the fleet budget) and the alerts' silence."""

    runbook: ClassVar[str] = ""  # the runbook whose budget `fleet_budget` names

    prometheus: Annotated[Prometheus | None, by_name(Prometheus)] = Field(
        default=None, description=f"Where the signal is read. {DEFAULT_BLOCK_HELP}"
    )
    max_sample_age_seconds: float = Field(
        default=MAX_SAMPLE_AGE_SECONDS,
        ge=1,
        le=3600,
        description="Samples older than this are stale: their hosts are not acted on.",
    )
    verify_window_seconds: float = Field(
        default=60, ge=0, le=3600, description="How long an acted-on host may take to recover."
    )
    cooldown_minutes: float = Field(
        default=30,
        ge=0,
        le=10_080,
        description="Skip hosts the action ran on within this many minutes.",
    )
    max_repeats: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="A host acted on this often within --repeat-window-minutes is flapping: "
        "escalated (event, notification, failed run), not acted on again.",
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
        description="Fleet budget: at most this many hosts acted on by all runs of this "
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
    alertmanager: Annotated[Alertmanager | None, by_name(Alertmanager, fallback=None)] = Field(
        default=None, description="Silence the hosts' alerts here while they are acted on."
    )

    @property
    def fleet_budget(self) -> FleetBudget:
        """The budget every run of this runbook (with this key) counts against."""
        return FleetBudget(
            runbook=self.runbook,
            hosts=self.max_hosts if self.fleet_budget_hosts is None else self.fleet_budget_hosts,
            minutes=(
                self.cooldown_minutes
                if self.fleet_budget_minutes is None
                else self.fleet_budget_minutes
            ),
            key=self.fleet_budget_key,
        )
