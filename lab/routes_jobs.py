"""The platform's jobs: `/api/v1/job/execute`, a job's status and cancel, `/api/v1/jobs`."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from opsflow.lab.jobs import JobRunner
from opsflow.lab.routes_common import ERRORS, MAX_ID, fail
from opsflow.lab.store import LabStore

JOB_STATUSES = ("pending", "running", "success", "failed", "partial", "cancelled", "timeout")


class ExecuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hosts: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=100_000)
    command: str = Field(min_length=1, max_length=10_000)
    timeout: int = Field(default=60, ge=1, le=3600)


class JobAccepted(BaseModel):
    job_id: str


class JobResultOut(BaseModel):
    host_id: int
    hostname: str | None
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    exit_code: int | None
    stdout: str
    stderr: str
    started_at: str | None
    finished_at: str | None


class JobOut(BaseModel):
    job_id: str
    command: str
    timeout: int
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    hosts: list[int]
    created_at: str | None
    finished_at: str | None
    results: list[JobResultOut]


class JobPage(BaseModel):
    data: list[JobOut]
    total: int


def jobs_router(store: LabStore, runner: JobRunner, auth: list[Any]) -> APIRouter:
    """The job routes: recorded in `store`, run by `runner`."""
    router = APIRouter()

    @router.post(
        "/api/v1/job/execute", response_model=JobAccepted, dependencies=auth, responses=ERRORS
    )
    def execute(
        body: ExecuteIn,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> dict[str, str]:
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        with store.lock:
            if idempotency_key:
                earlier = store.job_by_key(idempotency_key)
                if earlier is not None:
                    if earlier["fingerprint"] != fingerprint:
                        raise fail(
                            422,
                            "idempotency_key_reused",
                            "Idempotency-Key was used for a different request",
                        )
                    return {"job_id": earlier["id"]}
            hosts = store.hosts_by_ids(dict.fromkeys(body.hosts))
            missing = [h for h in dict.fromkeys(body.hosts) if h not in hosts]
            if missing:
                raise fail(422, "unknown_hosts", f"hosts do not exist: {missing[:20]}")
            job_id = uuid.uuid4().hex
            store.create_job(
                job_id, body.command, body.timeout, hosts, idempotency_key, fingerprint
            )
        runner.submit(job_id, body.command, body.timeout, hosts)
        return {"job_id": job_id}

    def job_or_404(job_id: str) -> dict[str, Any]:
        job = store.get_job(job_id)
        if job is None:
            raise fail(404, "job_not_found", f"job {job_id} does not exist")
        return job

    @router.get("/api/v1/job/{job_id}", response_model=JobOut, dependencies=auth, responses=ERRORS)
    async def get_job(job_id: str) -> dict[str, Any]:
        return job_or_404(job_id)

    @router.post(
        "/api/v1/job/{job_id}/cancel", response_model=JobOut, dependencies=auth, responses=ERRORS
    )
    def cancel_job(job_id: str) -> dict[str, Any]:
        if job_or_404(job_id)["status"] in ("pending", "running"):
            runner.cancel(job_id)
        return job_or_404(job_id)

    @router.get("/api/v1/jobs", response_model=JobPage, dependencies=auth, responses=ERRORS)
    def list_jobs(
        host_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        status: Literal[JOB_STATUSES] | None = None,  # type: ignore[valid-type]
        since: Annotated[float | None, Query(description="Unix time")] = None,
    ) -> dict[str, Any]:
        jobs = store.list_jobs(host_id, status, since)
        return {"data": jobs, "total": len(jobs)}

    return router
