"""The client of a company's own ops API, whose dialect is not the seed's: machines under
`/v2/machines` with cursor paging, `uuid`/`name`/`address`/`labels`, tasks with their own
states, an `X-Api-Key` header. It implements opsflow's `ExecutionBackend` seam; everything else
(TLS, retries, the audit log, redaction) comes from `opsflow.opsapi.JSONClient`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsflow.opsapi import FollowsJobs, Host, Job, JobResult, JobStatus, JSONClient, Transport

# The API's task and outcome states, as opsflow's.
STATES = {
    "QUEUED": JobStatus.pending,
    "RUNNING": JobStatus.running,
    "DONE": JobStatus.success,
    "ERROR": JobStatus.failed,
    "PARTIAL": JobStatus.partial,
    "ABORTED": JobStatus.cancelled,
    "EXPIRED": JobStatus.timeout,
}


class InHouseClient(FollowsJobs, JSONClient):
    """Machines and tasks of the in-house API (registration is not offered: optional)."""

    name = "in-house platform"

    def __init__(self, url: str, api_key: str, transport: Transport | None = None) -> None:
        super().__init__(url, headers={"X-Api-Key": api_key}, transport=transport)
        self.allow_post_retries("/v2/tasks")  # it honours X-Request-Key: a retry is safe

    def list_hosts(
        self, hostname: str | None = None, ip: str | None = None, tag: str | None = None
    ) -> list[Host]:
        machines, cursor = [], None
        while True:
            page = self.request("GET", "/v2/machines", params={"label": tag, "cursor": cursor})
            machines += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        hosts = [
            Host(id=m["uuid"], hostname=m["name"], ip=m["address"], tags=m["labels"])
            for m in machines
        ]
        return [h for h in hosts if hostname in (None, h.hostname) and ip in (None, h.ip)]

    def execute_job(
        self,
        host_ids: Sequence[str | int],
        command: str,
        timeout: int = 60,
        idempotency_key: str | None = None,
    ) -> str:
        body = {"targets": [str(h) for h in host_ids], "script": command, "deadline_s": timeout}
        key = {"X-Request-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/v2/tasks", json=body, headers=key)["ref"]

    def get_job(self, job_id: str) -> Job:
        return _job(self.request("GET", f"/v2/tasks/{job_id}"))

    def cancel_job(self, job_id: str) -> Job:
        return _job(self.request("POST", f"/v2/tasks/{job_id}/abort"))

    def list_jobs(
        self,
        host_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        command: str | None = None,
    ) -> list[Job]:
        jobs = [_job(t) for t in self.request("GET", "/v2/tasks", params={"opened_after": since})]
        return [
            j
            for j in jobs
            if command in (None, j.command)
            and status in (None, j.status.value)
            and (host_id is None or host_id in j.hosts)
        ]


def _job(task: dict[str, Any]) -> Job:
    return Job(
        job_id=task["ref"],
        status=STATES[task["state"]],
        command=task["script"],
        hosts=task["targets"],
        created_at=task["opened"],
        finished_at=task["closed"],
        results=[
            JobResult(
                host_id=o["machine"],
                hostname=o["name"],
                status=STATES[o["state"]],
                exit_code=o["rc"],
                stdout=o["out"],
                stderr=o["err"],
            )
            for o in task["outcomes"]
        ],
    )
