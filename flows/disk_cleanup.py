"""Runbook: hosts whose root filesystem is nearly full get their old logs cleaned, then verified.

The daily chore behind most "disk 90 %" pages: find the full hosts, delete compressed logs
older than a week, check that usage fell under the target. Same discipline as the restart
runbook: no data, no action; a blast-radius cap; batches; a report.

Example:
    >>> disk_cleanup(DiskCleanupParams(threshold_percent=85, dry_run=True))       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import State
from pydantic import BaseModel, Field, model_validator

from opsflow.blocks import Prometheus
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.host_locks import host_locks
from opsflow.tasks.hosts import list_hosts
from opsflow.tasks.jobs import run_job
from opsflow.tasks.monitoring import MAX_SAMPLE_AGE_SECONDS, wait_for_recovery
from opsflow.tasks.notify import notify_on_finish
from opsflow.tasks.parameters import (
    DEFAULT_BLOCK_HELP,
    PLATFORM_TYPES,
    NotifyBlock,
    Platform,
    StrictModel,
    by_name,
    not_above,
    notify_block_field,
)
from opsflow.tasks.restart_plan import build_plan
from opsflow.tasks.runbook import (
    chosen,
    final_state,
    read_metric,
    run_key,
    with_deployment_defaults,
)

USAGE_QUERY = (
    '100 * (1 - node_filesystem_avail_bytes{mountpoint="/"} '
    '/ node_filesystem_size_bytes{mountpoint="/"})'
)
# USAGE_QUERY is computed, so `timestamp()` of it is the evaluation time, never stale; the age
# of the exporter's own sample is read from a plain selector of the same series instead.
FRESHNESS_QUERY = 'node_filesystem_avail_bytes{mountpoint="/"}'


class DiskCleanupParams(StrictModel):
    """Which hosts count as full, what cleaning means, and what counts as fixed."""

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
    max_sample_age_seconds: float = Field(
        default=MAX_SAMPLE_AGE_SECONDS,
        ge=1,
        le=3600,
        description="Usage samples older than this are stale: their hosts are not acted on.",
    )
    cleanup_command: str = Field(
        default="find var/log -name '*.gz' -mtime +7 -delete",
        description="Run on each full host (lab default is relative to the host directory; "
        "on real hosts use an absolute path such as /var/log).",
    )
    selector: HostSelector = Field(default_factory=HostSelector, description="Which hosts.")
    max_hosts: int = Field(
        default=20, ge=1, description="Blast-radius cap: more full hosts aborts."
    )
    batch_size: int = Field(default=10, ge=1, description="Hosts cleaned at once.")
    verify_window_seconds: float = Field(default=60, ge=0, description="Time to fall under target.")
    job_timeout_seconds: int = Field(default=300, ge=1, le=3600, description="Per-host timeout.")
    poll_seconds: float = Field(default=1.0, gt=0, le=60, description="Polling interval.")
    platform: Platform = Field(
        default=None, description=f"The ops platform that runs the cleanup. {DEFAULT_BLOCK_HELP}"
    )
    prometheus: Annotated[Prometheus | None, by_name(Prometheus)] = Field(
        default=None, description=f"Where disk usage is read. {DEFAULT_BLOCK_HELP}"
    )
    dry_run: bool = Field(default=False, description="Report the full hosts, clean nothing.")
    notify_block: NotifyBlock = notify_block_field()

    @model_validator(mode="after")
    def _target_below_threshold(self) -> DiskCleanupParams:
        not_above(self, "target_percent", "threshold_percent")
        return self


class CleanedHost(BaseModel):
    hostname: str
    used_before: float
    used_after: float | None = None
    result: str = "planned"
    detail: str = ""


class DiskCleanupResult(BaseModel):
    table_columns: ClassVar[tuple[str, ...]] = (
        "hostname",
        "used_before",
        "used_after",
        "result",
        "detail",
    )
    percent_columns: ClassVar[tuple[str, ...]] = ("used_before", "used_after")

    outcome: str
    reason: str = ""
    hosts: list[CleanedHost] = Field(default_factory=list)

    @property
    def summary(self) -> str:
        fixed = sum(h.result == "cleaned" for h in self.hosts)
        text = f"{self.outcome}: {fixed} of {len(self.hosts)} full hosts cleaned under target"
        return f"{text}; {self.reason}" if self.reason else text


DEFAULTS = DiskCleanupParams()  # the form's defaults; never mutated


@flow(name="disk-cleanup", on_completion=[notify_on_finish], on_failure=[notify_on_finish])
def disk_cleanup(params: DiskCleanupParams = DEFAULTS) -> State:
    """Clean old logs on hosts whose root filesystem is nearly full, and verify usage fell."""
    params = with_deployment_defaults(params, "params")
    platform = chosen(params.platform, PLATFORM_TYPES, "platform")
    prometheus = chosen(params.prometheus, Prometheus, "prometheus")
    usage = read_metric(
        prometheus,
        params.usage_query,
        "disk usage",
        params.max_sample_age_seconds,
        params.freshness_query,
    )
    inventory = list_hosts(platform)
    selected = [h for h in inventory if params.selector.matches(h)]
    plan = build_plan(
        usage,
        selected,
        {h.ip for h in inventory},
        params.threshold_percent,
        params.max_hosts,
        params.batch_size,
    )
    hosts = {
        c.host_id: CleanedHost(hostname=c.hostname, used_before=round(c.value, 1))
        for c in plan.candidates
    }

    if plan.blast_radius_exceeded:
        return _finish(
            "aborted",
            list(hosts.values()),
            f"{plan.over_threshold} full hosts exceed the cap of {params.max_hosts}",
        )
    if params.dry_run or not plan.batches:
        return _finish("dry_run" if params.dry_run else "nothing_to_do", list(hosts.values()))

    key = run_key()
    with host_locks(list(hosts)) as (_, locked_elsewhere):
        for host_id in locked_elsewhere:
            hosts[host_id].result, hosts[host_id].detail = "not touched", "locked by another run"
        for number, batch in enumerate(plan.batches, 1):
            batch = [c for c in batch if c.host_id not in locked_elsewhere]
            if not batch:
                continue
            job = run_job(
                platform,
                [c.host_id for c in batch],
                params.cleanup_command,
                params.job_timeout_seconds,
                f"{key}:cleanup:{number}",
                params.poll_seconds,
            )
            ran = [c for c in batch if (r := job.result_for(c.host_id)) and r.succeeded]
            after = (
                wait_for_recovery(
                    prometheus,
                    params.usage_query,
                    [c.ip for c in ran],
                    params.target_percent,
                    params.verify_window_seconds,
                    params.poll_seconds,
                    params.max_sample_age_seconds,
                    params.freshness_query,
                )
                if ran
                else {}
            )
            for c in batch:
                host = hosts[c.host_id]
                host.used_after = None if after.get(c.ip) is None else round(after[c.ip], 1)
                if c not in ran:
                    result = job.result_for(c.host_id)
                    host.result = "cleanup failed"
                    host.detail = (
                        f"job {job.job_id} {result.status.value if result else job.status.value}"
                    )
                elif host.used_after is not None and host.used_after < params.target_percent:
                    host.result = "cleaned"
                else:
                    host.result = "still full"
    failed = [h for h in hosts.values() if h.result != "cleaned"]
    return _finish("failed" if failed else "completed", list(hosts.values()))


def _finish(outcome: str, hosts: list[CleanedHost], reason: str = "") -> State:
    result = DiskCleanupResult(outcome=outcome, reason=reason, hosts=hosts)
    create_table_artifact(
        [h.model_dump() for h in hosts] or [{"hostname": "-", "result": outcome}],
        key="disk-cleanup",
        description=result.summary,
    )
    failed = outcome in ("failed", "aborted")
    (get_run_logger().error if failed else get_run_logger().info)(result.summary)
    return final_state(result, failed)
