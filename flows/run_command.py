"""Runbook: run a command on the hosts a selector picks, in batches; results per host.

The same brakes as the other acting runbooks: a blast-radius cap (`max_hosts`), a dry run,
the per-host locks, and jobs that are cancelled when they outlive their timeout.

Example:
    >>> run_command(RunCommandParams(command="uptime", selector={"tags": ["web"]}))  # doctest: +SKIP
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import State
from pydantic import BaseModel, Field, field_serializer, field_validator, model_validator

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.models import Host, HostSelector
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.command_policy import check_command, check_patterns
from opsflow.tasks.host_locks import host_locks
from opsflow.tasks.hosts import list_hosts
from opsflow.tasks.jobs import run_job
from opsflow.tasks.notify import notify_on_finish
from opsflow.tasks.parameters import (
    DEFAULT_BLOCK_HELP,
    PLATFORM_TYPES,
    NotifyBlock,
    Platform,
    StrictModel,
    notify_block_field,
)
from opsflow.tasks.runbook import chosen, final_state, run_key, with_deployment_defaults

OUTPUT_KEPT = 2000  # characters of each host's stdout and stderr kept in the result


class RunCommandParams(StrictModel):
    """The command, where it runs, and how carefully."""

    command: str = Field(min_length=1, max_length=10_000, description="Command for /bin/sh -c.")
    selector: HostSelector = Field(
        default_factory=HostSelector, description="Which hosts (tags, hostname pattern)."
    )
    all_hosts: bool = Field(
        default=False, description="Allow an empty selector, i.e. every host in the inventory."
    )
    max_hosts: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Blast-radius cap: more selected hosts than this runs nothing.",
    )
    allowlist: list[str] | None = Field(
        default=None, description="Regular expressions; the command must match one completely."
    )
    batch_size: int = Field(default=50, ge=1, le=10_000, description="Hosts per job.")
    timeout_seconds: int = Field(default=60, ge=1, le=3600, description="Per-host timeout.")
    platform: Platform = Field(
        default=None, description=f"The ops platform that runs the command. {DEFAULT_BLOCK_HELP}"
    )
    dry_run: bool = Field(default=False, description="Show the hosts it would run on; run nothing.")
    notify_block: NotifyBlock = notify_block_field()

    @field_serializer("command", when_used="json")
    def _command_as_stored(self, command: str) -> str:
        # What Prefect stores as the run's parameters: a password typed into a command is not.
        return mask_secrets(command)

    @field_validator("allowlist")
    @classmethod
    def _patterns_compile(cls, value: list[str] | None) -> list[str] | None:
        return check_patterns(value)

    @model_validator(mode="after")
    def _scope(self) -> RunCommandParams:
        chosen = self.selector.tags or self.selector.hostname_pattern
        if not chosen and self.selector.hostnames is None and not self.all_hosts:
            raise ValueError(
                "selector is empty: give tags, hostname_pattern or hostnames, or set all_hosts"
            )
        check_command(self.command, self.allowlist)  # refused before anything starts
        return self


class HostCommandResult(BaseModel):
    hostname: str
    status: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    job_id: str | None = None


class RunCommandResult(BaseModel):
    command: str
    outcome: str = "completed"
    reason: str = ""
    results: list[HostCommandResult] = Field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [r.hostname for r in self.results if r.status != "success" or r.exit_code != 0]

    @property
    def summary(self) -> str:
        if self.outcome in ("aborted", "dry_run", "nothing_to_do"):
            return f"{self.outcome}: {self.reason}"
        return f"{self.command!r} on {len(self.results)} hosts: {len(self.failed)} failed"


@flow(name="run-command", on_completion=[notify_on_finish], on_failure=[notify_on_finish])
def run_command(params: RunCommandParams) -> State:
    """Run a command on the hosts a selector picks, in batches, with per-host results."""
    params = with_deployment_defaults(params, "params")
    command = check_command(params.command, params.allowlist)
    platform = chosen(params.platform, PLATFORM_TYPES, "platform")
    hosts = list_hosts(platform, params.selector)
    result = RunCommandResult(command=mask_secrets(command))
    if not hosts:
        result.outcome, result.reason = "nothing_to_do", "the selector matched no host"
    elif len(hosts) > params.max_hosts:
        result.outcome = "aborted"
        result.reason = (
            f"{len(hosts)} hosts selected, over the cap of {params.max_hosts}: nothing ran; "
            "narrow the selector or raise max_hosts"
        )
    elif params.dry_run:
        result.outcome = "dry_run"
        result.reason = f"would run on {len(hosts)} hosts: " + ", ".join(
            h.hostname for h in hosts[:50]
        )
        result.results = [HostCommandResult(hostname=h.hostname, status="planned") for h in hosts]
    else:
        result.results = run_on(platform, hosts, command, params)
    return _finish(result)


def run_on(
    platform: ExecutionBackendBlock, hosts: list[Host], command: str, params: RunCommandParams
) -> list[HostCommandResult]:
    """Batch by batch under the hosts' locks; a host locked by another run is left alone."""
    names = {h.id: h.hostname for h in hosts}
    key = run_key()
    results: list[HostCommandResult] = []
    with host_locks([h.id for h in hosts]) as (ours, theirs):
        results += [
            HostCommandResult(hostname=names[h], status="not run", stderr="locked by another run")
            for h in theirs
        ]
        for number, start in enumerate(range(0, len(ours), params.batch_size), 1):
            batch = ours[start : start + params.batch_size]
            job = run_job(
                platform, batch, command, params.timeout_seconds, f"{key}:command:{number}"
            )
            reported = {r.host_id for r in job.results}
            results += [
                HostCommandResult(
                    hostname=names.get(r.host_id, r.host_id),
                    status=r.status.value,
                    exit_code=r.exit_code,
                    stdout=mask_secrets(r.stdout[-OUTPUT_KEPT:]),
                    stderr=mask_secrets(r.stderr[-OUTPUT_KEPT:]),
                    job_id=job.job_id,
                )
                for r in job.results
            ] + [
                HostCommandResult(hostname=names[h], status=job.status.value, job_id=job.job_id)
                for h in batch
                if h not in reported
            ]
    return results


def _finish(result: RunCommandResult) -> State:
    create_table_artifact(
        [
            {
                **r.model_dump(exclude={"stdout", "stderr"}),
                "stdout": r.stdout[-200:],
                "stderr": r.stderr[-200:],
            }
            for r in result.results
        ]
        or [{"hostname": "-", "status": result.outcome}],
        key="run-command",
        description=result.summary,
    )
    failed = result.outcome == "aborted" or bool(result.failed and result.outcome == "completed")
    (get_run_logger().error if failed else get_run_logger().info)(result.summary)
    return final_state(result, failed)
