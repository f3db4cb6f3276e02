"""Per-host locks shared by every runbook, and the cooldown after a restart.

A lock is a Prefect global concurrency limit of 1 named ``opsflow-host-<id>``, created before it
is taken (a limit that does not exist locks nothing) and held with a 60 s lease (Prefect's
minimum) that Prefect renews while the run lives, so a crashed (even SIGKILLed) run frees its
hosts within about 75 s: the lease runs out and the server's repossessor (every 15 s) takes the
slots back. The cooldown is read from the platform's own job history, so it holds across
process restarts and for every tool that uses the platform.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.models import JobStatus
from opsflow.tasks.hosts import READ
from opsflow.tasks.wording import plural

LOCK_PREFIX = "opsflow-host-"
FALLBACK_WAIT_SECONDS = 2.0


class _HeldLockIsNotAnError(logging.Filter):
    """Prefect's slot service logs every acquisition timeout as an ERROR with a traceback; for
    host locks a timeout only means another run holds the host, which we report ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("ConcurrencySlotAcquisition" in message and "raised TimeoutError" in message)


logging.getLogger("prefect._internal.concurrency").addFilter(_HeldLockIsNotAnError())


def lock_name(host_id: str) -> str:
    return f"{LOCK_PREFIX}{host_id}"


@contextmanager
def host_locks(
    host_ids: list[str], wait_seconds: float = 10.0, lease_seconds: float = 60
) -> Iterator[tuple[list[str], list[str]]]:
    """Take the lock of each host; yield (locked by us, held by another run).

    Fails closed: a host whose lock cannot be taken is in the second list, never the first.
    The common case (nobody else holds any of them) costs one API call for all hosts.
    """
    names = [lock_name(h) for h in host_ids]
    with ExitStack() as stack:
        if names and _take(stack, names, wait_seconds, lease_seconds):
            yield list(host_ids), []
            return
        ours, theirs = [], []
        for host_id in host_ids:  # someone holds some of them: find out which, one by one
            # Waited once already; the short wait is for a busy API, not for the other run.
            took = _take(stack, [lock_name(host_id)], FALLBACK_WAIT_SECONDS, lease_seconds)
            (ours if took else theirs).append(host_id)
        if theirs:
            get_run_logger().warning(
                "%s locked by another run: %s",
                f"{plural(len(theirs), 'host')} {'is' if len(theirs) == 1 else 'are'}",
                ", ".join(theirs[:20]),
            )
        yield ours, theirs


def _take(stack: ExitStack, names: list[str], wait_seconds: float, lease_seconds: float) -> bool:
    """Hold every named lock (creating missing ones first) or none; False when one is held."""

    def enter() -> None:
        stack.enter_context(
            concurrency(
                names,
                occupy=1,
                timeout_seconds=wait_seconds,
                lease_duration=lease_seconds,
                strict=True,
                # A renewal that fails mid-rollout (Prefect API blip) warns instead of
                # cancelling the run between a restart and its verification; the platform's
                # job history (the cooldown) still keeps a host from a second restart.
                raise_on_lease_renewal_failure=False,
            )
        )

    try:
        enter()
    except ConcurrencySlotAcquisitionError:
        with get_client(sync_client=True) as client:  # a limit that does not exist locks nothing
            for name in names:
                client.upsert_global_concurrency_limit_by_name(name, limit=1)
        try:
            enter()
        except TimeoutError:
            return False
    except TimeoutError:
        return False
    return True


@task(name="Find recent restarts", **READ)
def recently_restarted(
    platform: ExecutionBackendBlock, command: str, minutes: float
) -> dict[str, float]:
    """Host id -> minutes since `command` last ran (or is running) there, within `minutes`."""
    if minutes <= 0:
        return {}
    now = time.time()
    with platform.get_client() as client:
        jobs = client.list_jobs(since=str(now - minutes * 60), command=command)
    recent: dict[str, float] = {}
    for job in jobs:
        if job.command != command or job.created_at is None:
            continue
        age = (now - job.created_at.timestamp()) / 60
        for result in job.results:
            if result.status in (JobStatus.success, JobStatus.running, JobStatus.pending):
                recent[result.host_id] = min(age, recent.get(result.host_id, age))
    return recent
