"""Tasks over the platform's jobs: run a command on many hosts, follow it, cancel it; and
`run_job`, the one way every runbook runs a job."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.errors import JobTimedOut
from opsflow.opsapi.models import Job
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.events import job_submitted
from opsflow.tasks.hosts import READ
from opsflow.tasks.wording import plural


@task(name="Execute job", cache_policy=NO_CACHE)
def execute_job(
    platform: ExecutionBackendBlock,
    host_ids: list[str],
    command: str,
    timeout: int = 60,
    idempotency_key: str | None = None,
) -> str:
    """Start `command` on the hosts; return the job id.

    Not retried by Prefect: the client's own retries reuse the Idempotency-Key, so the
    platform starts the job once however often the request is sent.

    Example:
        >>> execute_job(OpsPlatform.load("lab"), ["1", "2"], "uptime")        # doctest: +SKIP
    """
    with platform.get_client() as client:
        job_id = client.execute_job(host_ids, command, timeout, idempotency_key=idempotency_key)
    shown = mask_secrets(command)
    get_run_logger().info("job %s: %r on %s", job_id, shown, plural(len(host_ids), "host"))
    job_submitted(job_id, shown, [str(h) for h in host_ids])
    return job_id


@task(name="Get job", **READ)
def get_job(platform: ExecutionBackendBlock, job_id: str) -> Job:
    """The job's status and per-host results now."""
    with platform.get_client() as client:
        return client.get_job(job_id)


@task(name="Wait for job", cache_policy=NO_CACHE)
def wait_for_job(
    platform: ExecutionBackendBlock,
    job_id: str,
    max_wait_seconds: float = 300,
    poll_frequency_seconds: float = 1.0,
) -> Job:
    """Poll until the job is final; `JobTimedOut` after `max_wait_seconds`."""
    with platform.get_client() as client:
        job = client.wait_for_job(job_id, max_wait_seconds, poll_frequency_seconds)
    failed = [r.hostname or r.host_id for r in job.results if not r.succeeded]
    get_run_logger().info(
        "job %s %s: %s ok, %d not%s",
        job_id,
        job.status.value,
        plural(len(job.results) - len(failed), "host"),
        len(failed),
        f" ({', '.join(failed[:10])})" if failed else "",
    )
    return job


@task(name="Cancel job", cache_policy=NO_CACHE)
def cancel_job(platform: ExecutionBackendBlock, job_id: str) -> Job:
    """Cancel a job that is still running (harmless when it is final)."""
    with platform.get_client() as client:
        job = client.cancel_job(job_id)
    get_run_logger().warning("job %s cancelled (now %s)", job_id, job.status.value)
    return job


def cancel_grace(timeout_seconds: int) -> float:
    """Seconds to wait past a job's own per-host timeout before cancelling it: the platform
    enforces the timeout itself and needs a moment to notice; a job still running after that
    is one the platform lost track of."""
    return min(30, max(5, timeout_seconds))


def run_job(
    platform: ExecutionBackendBlock,
    host_ids: list[str],
    command: str,
    timeout_seconds: int,
    key: str,
    poll_seconds: float = 1.0,
) -> Job:
    """Start `command` on the hosts, wait for it, and cancel it if it outlives its timeout
    plus a grace; the job returned is final (a cancelled job's hosts did not succeed).

    Call from a flow: each step is a task run of its own, visible in the UI.

    Args:
        key: the Idempotency-Key, e.g. ``f"{run_key()}:restart:{batch}"``: one job per key.
    """
    job_id = execute_job(platform, host_ids, command, timeout_seconds, key)
    try:
        return wait_for_job(
            platform, job_id, timeout_seconds + cancel_grace(timeout_seconds), poll_seconds
        )
    except JobTimedOut:
        # The job as the cancel left it: some systems keep no result for a cancelled job.
        return cancel_job(platform, job_id)
