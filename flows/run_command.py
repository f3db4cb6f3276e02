"""Runbook: run a command on the hosts a selector picks, in batches; results per host.

Example:
    >>> run_command(RunCommandParams(command="uptime", selector={"tags": ["web"]}))  # doctest: +SKIP
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from pydantic import BaseModel, Field, model_validator

from opsflow.blocks import OpsPlatform
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.command_policy import check_command
from opsflow.tasks.hosts import list_hosts
from opsflow.tasks.jobs import execute_job, wait_for_job
from opsflow.tasks.notify import notify_on_finish


class RunCommandParams(BaseModel):
    """The command, where it runs, and how carefully."""

    command: str = Field(min_length=1, max_length=10_000, description="Command for /bin/sh -c.")
    selector: HostSelector = Field(
        default_factory=HostSelector, description="Which hosts (tags, hostname pattern)."
    )
    all_hosts: bool = Field(
        default=False, description="Allow an empty selector, i.e. every host in the inventory."
    )
    allowlist: list[str] | None = Field(
        default=None, description="Regular expressions; the command must match one completely."
    )
    batch_size: int = Field(default=50, ge=1, le=10_000, description="Hosts per job.")
    timeout_seconds: int = Field(default=60, ge=1, le=3600, description="Per-host timeout.")
    platform_block: str = Field(default="lab", description="Name of the Ops Platform block.")
    notify_block: str | None = Field(
        default=None, description="Notification block (type-slug/name) told how the run ended."
    )

    @model_validator(mode="after")
    def _scope(self) -> RunCommandParams:
        if not (self.selector.tags or self.selector.hostname_pattern) and not self.all_hosts:
            raise ValueError("selector is empty: give tags or hostname_pattern, or set all_hosts")
        return self


class HostCommandResult(BaseModel):
    hostname: str
    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    job_id: str


class RunCommandResult(BaseModel):
    command: str
    results: list[HostCommandResult] = Field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [r.hostname for r in self.results if r.status != "success" or r.exit_code != 0]

    @property
    def summary(self) -> str:
        return f"{self.command!r} on {len(self.results)} hosts: {len(self.failed)} failed"


@flow(name="run-command", on_completion=[notify_on_finish], on_failure=[notify_on_finish])
def run_command(params: RunCommandParams) -> State:
    """Check the command, pick the hosts, run batch by batch, publish per-host results."""
    command = check_command(params.command, params.allowlist)  # refused before anything runs
    platform = OpsPlatform.load(params.platform_block)
    hosts = list_hosts(platform, params.selector)
    names = {h.id: h.hostname for h in hosts}
    run_key = str(flow_run.get_id() or "adhoc")
    result = RunCommandResult(command=command)
    for number, start in enumerate(range(0, len(hosts), params.batch_size), 1):
        batch = hosts[start : start + params.batch_size]
        job_id = execute_job(
            platform,
            [h.id for h in batch],
            command,
            params.timeout_seconds,
            f"{run_key}:command:{number}",
        )
        job = wait_for_job(platform, job_id, params.timeout_seconds + 60, 1.0)
        result.results += [
            HostCommandResult(
                hostname=names.get(r.host_id, r.host_id),
                status=r.status.value,
                exit_code=r.exit_code,
                stdout=r.stdout[-2000:],
                stderr=r.stderr[-2000:],
                job_id=job.job_id,
            )
            for r in job.results
        ]
    create_table_artifact(
        [
            {
                **r.model_dump(exclude={"stdout", "stderr"}),
                "stdout": r.stdout[-200:],
                "stderr": r.stderr[-200:],
            }
            for r in result.results
        ]
        or [{"hostname": "-"}],
        key="run-command",
        description=result.summary,
    )
    get_run_logger().info(result.summary)
    if result.failed:
        return Failed(message=result.summary, data=result)
    return Completed(message=result.summary, data=result)
