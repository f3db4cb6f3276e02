"""Runbook: hosts whose root filesystem is nearly full get their old logs cleaned, then verified.

The daily chore behind most "disk 90 %" pages: find the full hosts, delete compressed logs
older than a week, check that usage fell under the target. A rollout on the same engine as the
restart runbook (`opsflow.flows.runbooks.rollout`), so it has every guarantee it has: no data, no action;
a blast-radius cap; a plan with a digest and a dry run; approval; per-host locks; the cooldown
and flapping read from the backend's job history; the fleet budget; a silence; the usage
re-read before each batch; `max_failures`; a report, events and a notification.

Example:
    >>> disk_cleanup(DiskCleanupParams(threshold_percent=85, dry_run=True))       # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

from prefect.states import State
from pydantic import Field, model_validator

from opsflow.flows.runbooks.rollout import roll_out
from opsflow.flows.runbooks.runbook_flow import runbook
from opsflow.tasks.parameters import ordered_fields
from opsflow.tasks.rollout_policy import Action, RemediationPolicy, Rollout, Signal
from opsflow.tasks.runbook import with_deployment_defaults

USAGE_QUERY = (
    '100 * (1 - node_filesystem_avail_bytes{mountpoint="/"} '
    '/ node_filesystem_size_bytes{mountpoint="/"})'
)
# USAGE_QUERY is computed, so `timestamp()` of it is the evaluation time, never stale; the age
# of the exporter's own sample is read from a plain selector of the same series instead.
FRESHNESS_QUERY = 'node_filesystem_avail_bytes{mountpoint="/"}'


class DiskCleanupParams(RemediationPolicy):
    """Which hosts count as full, what cleaning means, and what counts as fixed."""

    runbook: ClassVar[str] = "disk-cleanup"
    NOT_ABOVE: ClassVar[dict[str, str]] = {"target_percent": "threshold_percent"}

    threshold_percent: float = Field(
        default=85, gt=0, lt=100, description="Clean hosts above this usage."
    )
    target_percent: float = Field(
        default=80, gt=0, lt=100, description="Cleaned hosts must fall under this."
    )
    usage_query: str = Field(default=USAGE_QUERY, description="PromQL: used percent per instance.")
    freshness_query: str = Field(
        default=FRESHNESS_QUERY,
        description="PromQL selector whose sample time shows how old the usage data is.",
    )
    cleanup_command: str = Field(
        default="find var/log -name '*.gz' -mtime +7 -delete",
        min_length=1,
        description="Run on each full host (lab default is relative to the host directory; "
        "on real hosts use an absolute path such as /var/log).",
    )
    max_hosts: int = Field(
        default=20, ge=1, le=100_000, description="Blast-radius cap: more full hosts aborts."
    )
    batch_size: int = Field(default=10, ge=1, le=10_000, description="Hosts cleaned at once.")
    job_timeout_seconds: int = Field(
        default=300, ge=1, le=3600, description="Per-host timeout of the cleanup job."
    )

    @model_validator(mode="after")
    def _target_below_threshold(self) -> DiskCleanupParams:
        ordered_fields(self)
        return self

    @property
    def rollout(self) -> Rollout:
        """This runbook as the engine runs it."""
        return Rollout(
            runbook=self.runbook,
            action=Action(
                name="cleanup", done="cleaned", verb="clean up", command=self.cleanup_command
            ),
            signal=Signal(
                name="disk usage",
                query=self.usage_query,
                threshold=self.threshold_percent,
                recovery=self.target_percent,
                freshness_query=self.freshness_query,
                max_sample_age_seconds=self.max_sample_age_seconds,
            ),
        )


DEFAULTS = DiskCleanupParams()  # the form's defaults; never mutated


@runbook(name="disk-cleanup")
def disk_cleanup(params: DiskCleanupParams = DEFAULTS) -> State:
    """Clean old logs on hosts whose root filesystem is nearly full, and verify usage fell."""
    params = with_deployment_defaults(params, "params")
    return roll_out(params.rollout, params)
