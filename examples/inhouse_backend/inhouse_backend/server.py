"""The in-house ops API as a small server, for the example's tests: its own paths, field
names, task states and cursor paging, over any opsflow backend (the tests put the opsflow lab
behind it, so a restart through it really lowers a host's load in Prometheus).

Example:
    >>> from opsflow.blocks import OpsPlatform                       # doctest: +SKIP
    >>> app = create_app(OpsPlatform.load("lab").get_client(), api_key="k-123456")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query

from inhouse_backend.client import STATES
from opsflow.opsapi import ExecutionBackend, Job

PAGE = 4  # machines per page: the lab's 10 hosts take three pages
NAMES = {status: name for name, status in STATES.items()}


def create_app(backend: ExecutionBackend, api_key: str) -> FastAPI:
    """The API, answering from `backend`; every call needs `X-Api-Key: <api_key>`."""

    def authorized(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if x_api_key != api_key:
            raise HTTPException(401, "bad or missing X-Api-Key")

    app = FastAPI(title="in-house ops API", dependencies=[Depends(authorized)])

    @app.get("/v2/machines")
    def machines(label: str | None = None, cursor: str | None = None) -> dict[str, Any]:
        hosts = backend.list_hosts(tag=label)
        start = int(cursor or 0)
        page = hosts[start : start + PAGE]
        following = start + PAGE if start + PAGE < len(hosts) else None
        return {
            "items": [
                {"uuid": h.id, "name": h.hostname, "address": h.ip, "labels": h.tags} for h in page
            ],
            "next_cursor": str(following) if following is not None else None,
        }

    @app.post("/v2/tasks")
    def submit(
        task: Annotated[dict[str, Any], Body()],
        x_request_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, str]:
        ref = backend.execute_job(
            task["targets"], task["script"], task["deadline_s"], idempotency_key=x_request_key
        )
        return {"ref": ref}

    @app.get("/v2/tasks/{ref}")
    def read(ref: str) -> dict[str, Any]:
        return _task(backend.get_job(ref))

    @app.post("/v2/tasks/{ref}/abort")
    def abort(ref: str) -> dict[str, Any]:
        return _task(backend.cancel_job(ref))

    @app.get("/v2/tasks")
    def recent(opened_after: Annotated[str | None, Query()] = None) -> list[dict[str, Any]]:
        return [_task(job) for job in backend.list_jobs(since=opened_after)]

    return app


def _task(job: Job) -> dict[str, Any]:
    return {
        "ref": job.job_id,
        "state": NAMES[job.status],
        "script": job.command,
        "targets": job.hosts,
        "opened": job.created_at,
        "closed": job.finished_at,
        "outcomes": [
            {
                "machine": r.host_id,
                "name": r.hostname,
                "state": NAMES[r.status],
                "rc": r.exit_code,
                "out": r.stdout,
                "err": r.stderr,
            }
            for r in job.results
        ],
    }
