"""The seam between runbooks and the systems that run commands on hosts.

A runbook needs five things from an ops system, whatever it is: its hosts (with tags and an
address to join Prometheus on), a command started on some of them under an idempotency key, the
job read back with each host's status, exit code and output, the job cancelled, and the recent
jobs (for the cooldown). `ExecutionBackend` says exactly that; registering hosts
(`RegistersHosts`) is optional; the seed-style platform
(`OpsPlatformClient`) and SaltStack through salt-api (`SaltAPIClient`) implement it, and
docs/backends.md maps AWX/Tower and JumpServer onto the same methods.

Example:
    >>> from opsflow.opsapi.platform import OpsPlatformClient
    >>> isinstance(OpsPlatformClient("https://ops.example", token="token-123456"), ExecutionBackend)
    True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from opsflow.opsapi.errors import JobTimedOut
from opsflow.opsapi.models import Host, HostSpec, Job

__all__ = ["ExecutionBackend", "FollowsJobs", "RegistersHosts"]


@runtime_checkable
class ExecutionBackend(Protocol):
    """What every runbook asks of an ops system (and nothing else)."""

    name: str

    def list_hosts(
        self, hostname: str | None = None, ip: str | None = None, tag: str | None = None
    ) -> list[Host]:
        """Every host, narrowed by the filters the system can apply itself."""

    def execute_job(
        self,
        host_ids: Sequence[str | int],
        command: str,
        timeout: int = 60,
        idempotency_key: str | None = None,
    ) -> str:
        """Start `command` on the hosts; the job id. The same key never starts a second job."""

    def get_job(self, job_id: str) -> Job:
        """The job now: per-host status, exit code, stdout and stderr."""

    def wait_for_job(
        self, job_id: str, max_wait_seconds: float = 300, poll_frequency_seconds: float = 1.0
    ) -> Job:
        """Poll until the job is final; `JobTimedOut` after `max_wait_seconds`."""

    def cancel_job(self, job_id: str) -> Job:
        """Stop what still runs; the job as it ends (hosts that had not finished: cancelled)."""

    def list_jobs(
        self,
        host_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        command: str | None = None,
    ) -> list[Job]:
        """Jobs started since the UNIX time `since`, of `command` if given (the cooldown)."""

    def close(self) -> None: ...

    def __enter__(self) -> ExecutionBackend: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class RegistersHosts(Protocol):
    """What `register-hosts` asks besides (optional: a backend without it cannot register, and
    that runbook says so before it reads anything)."""

    def create_host(self, spec: HostSpec) -> Host:
        """Register a host (or say in one clear line why this system cannot)."""

    def replace_host(self, host_id: str | int, spec: HostSpec) -> Host:
        """Overwrite a host's record (or say why this system cannot)."""


class FollowsJobs:
    """`wait_for_job` for any backend with a `get_job`: poll until the job is final."""

    def get_job(self, job_id: str) -> Job:  # pragma: no cover - every backend defines it
        raise NotImplementedError

    def wait_for_job(
        self, job_id: str, max_wait_seconds: float = 300, poll_frequency_seconds: float = 1.0
    ) -> Job:
        """Poll until the job is final; raise `JobTimedOut` after `max_wait_seconds`."""
        deadline = time.monotonic() + max_wait_seconds
        while True:
            job = self.get_job(job_id)
            if job.status.is_final:
                return job
            if time.monotonic() >= deadline:
                waiting = [r.hostname or r.host_id for r in job.results if not r.status.is_final]
                raise JobTimedOut(
                    f"job {job_id} ({job.command!r}) still {job.status.value} after "
                    f"{max_wait_seconds:g}s; hosts not finished: {', '.join(waiting[:20]) or '?'}"
                )
            time.sleep(poll_frequency_seconds)
