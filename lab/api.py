"""The lab ops platform: the design's API table, served by FastAPI (OpenAPI at /openapi.json).

Also: `/metrics` (each host's simulated load and service state, Prometheus text format) and
`/lab/...` admin endpoints for the lab's command line and tests (not in the OpenAPI document).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import shutil
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import requests
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsflow.lab.faults import FaultInjector, FaultRule
from opsflow.lab.hosts import (
    DISK_SIZE_BYTES,
    base_load_for,
    current_load,
    disk_used,
    fill_disk,
    host_dir,
    set_host_flag,
)
from opsflow.lab.jobs import JobRunner
from opsflow.lab.store import Duplicate, LabStore

HOSTNAME_PATTERN = (
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
BASE_DISK = 3 * 1024**3  # what the OS takes on every lab host: 30 % used when calm
MAX_ID = 2**63 - 1  # SQLite's INTEGER
HostId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
JOB_STATUSES = ("pending", "running", "success", "failed", "partial", "cancelled", "timeout")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


IPAddress = Annotated[
    str,
    AfterValidator(_ip_address),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
]


class HostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(pattern=HOSTNAME_PATTERN, max_length=253)
    ip: IPAddress
    os: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )


class HostPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str | None = Field(default=None, pattern=HOSTNAME_PATTERN, max_length=253)
    ip: IPAddress | None = None
    os: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=50
    )


class Host(HostIn):
    model_config = ConfigDict(extra="ignore")
    id: int
    created_at: float


class HostPage(BaseModel):
    data: list[Host]
    total: int
    page: int
    page_size: int


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


class ResetIn(BaseModel):
    hosts: int = Field(default=10, ge=0, le=200_000)


class OverloadIn(BaseModel):
    load: float | None = Field(default=8.0, ge=0, description="None clears the overload.")


class FillDiskIn(BaseModel):
    gigabytes: float = Field(default=8.0, gt=0, le=10)


STALE_SAMPLE_AGE = 90.0


class MetricsFaultIn(BaseModel):
    fault: Literal["nan", "stale", "absent"] | None = Field(
        description="nan: the load is NaN; stale: a relay replays the load the host has now "
        f"as a sample taken {STALE_SAMPLE_AGE:g} s ago (a new series, exporter=replay: "
        "Prometheus serves it for 5 minutes and never marks it stale); absent: no load series; "
        "null: normal again."
    )


class FailRestartIn(BaseModel):
    fail: bool = True


class HangRestartIn(BaseModel):
    hang: bool = True


class JobPage(BaseModel):
    data: list[JobOut]
    total: int


ERRORS = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed request: the body is not JSON, or the query does not parse.",
        401: "Missing or wrong token.",
        404: "No such resource.",
        409: "Conflict with an existing resource.",
        422: "Invalid input.",
    }.items()
}


class RequestIdMiddleware:
    """Echo the caller's X-Request-ID (or a new one) on every answer; plain ASGI, so cheap."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id") or uuid.uuid4().hex.encode()

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", given[:100]))
            await send(message)

        await self.app(scope, receive, send_with_id)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


MONITORING_ERRORS = {
    **ERRORS,
    502: {"model": ErrorBody, "description": "Prometheus unreachable or answered garbage."},
    503: {"model": ErrorBody, "description": "No Prometheus configured, or it is overloaded."},
}


# Reads are answered on the event loop (SQLite answers in microseconds); writes and jobs use
# FastAPI's thread pool.


def create_app(
    root: Path,
    token: str,
    prometheus_url: str | None = None,
    store: LabStore | None = None,
    readonly_token: str | None = None,
) -> FastAPI:
    """The lab platform app over the lab directory `root`. `token` may do anything;
    `readonly_token`, when given, may only read (GET and HEAD), as a platform's read-only API
    key does: a runbook that only reports needs no more."""
    store = store or LabStore(root / "platform.db")
    runner = JobRunner(store, root)
    app = FastAPI(
        title="opsflow lab ops platform",
        version="1.0",
        description="Reference ops platform: hosts, jobs, monitoring pass-through.",
    )
    app.state.store, app.state.runner = store, runner
    app.state.faults = FaultInjector()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):
            return _error(exc.status_code, exc.detail["code"], exc.detail["message"])
        code = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        ]
        return _error(422, "invalid_input", "; ".join(problems)[:2000])

    app.add_middleware(RequestIdMiddleware)

    async def authorized(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        given_bytes = given.strip().encode()
        if scheme in ("Token", "Bearer") and hmac.compare_digest(given_bytes, token.encode()):
            return
        if (
            scheme in ("Token", "Bearer")
            and readonly_token
            and hmac.compare_digest(given_bytes, readonly_token.encode())
        ):
            if request.method in ("GET", "HEAD"):
                return
            raise HTTPException(
                403,
                {
                    "code": "read_only_token",
                    "message": "this token may only read: a change needs a read-write token",
                },
            )
        raise HTTPException(
            401,
            {
                "code": "unauthorized",
                "message": "missing or invalid token: send "
                "'Authorization: Token <token>' or 'Bearer <token>'",
            },
        )

    def fail(status: int, code: str, message: str) -> HTTPException:
        return HTTPException(status, {"code": code, "message": message})

    def host_or_404(host_id: int) -> dict[str, Any]:
        host = store.get_host(host_id)
        if host is None:
            raise fail(404, "host_not_found", f"host {host_id} does not exist")
        return host

    auth = [Depends(authorized)]

    # hosts -------------------------------------------------------------------------------

    @app.get("/api/v1/hosts", response_model=HostPage, dependencies=auth, responses=ERRORS)
    async def list_hosts(
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
        hostname: str | None = None,
        ip: str | None = None,
        tag: str | None = None,
    ) -> dict[str, Any]:
        rows, total = store.list_hosts(page, page_size, hostname, ip, tag)
        return {"data": rows, "total": total, "page": page, "page_size": page_size}

    @app.post(
        "/api/v1/hosts", response_model=Host, status_code=201, dependencies=auth, responses=ERRORS
    )
    def create_host(spec: HostIn) -> dict[str, Any]:
        try:
            [host_id] = store.create_hosts([spec.model_dump()], [base_load_for(spec.hostname)])
        except Duplicate:
            raise fail(
                409,
                "duplicate_host",
                f"a host with hostname {spec.hostname!r} or ip {spec.ip!r} exists",
            ) from None
        host_dir(root, spec.hostname)
        return host_or_404(host_id)

    @app.get("/api/v1/hosts/{host_id}", response_model=Host, dependencies=auth, responses=ERRORS)
    async def get_host(host_id: HostId) -> dict[str, Any]:
        return host_or_404(host_id)

    def change(host_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        host_or_404(host_id)
        try:
            store.update_host(host_id, fields)
        except Duplicate:
            raise fail(409, "duplicate_host", "another host has that hostname or ip") from None
        return host_or_404(host_id)

    @app.put("/api/v1/hosts/{host_id}", response_model=Host, dependencies=auth, responses=ERRORS)
    def replace_host(host_id: HostId, spec: HostIn) -> dict[str, Any]:
        return change(host_id, spec.model_dump())

    @app.patch("/api/v1/hosts/{host_id}", response_model=Host, dependencies=auth, responses=ERRORS)
    def update_host(host_id: HostId, patch: HostPatch) -> dict[str, Any]:
        return change(host_id, patch.model_dump(exclude_unset=True, exclude_none=True))

    @app.delete("/api/v1/hosts/{host_id}", status_code=204, dependencies=auth, responses=ERRORS)
    def delete_host(host_id: HostId) -> Response:
        if not store.delete_host(host_id):
            raise fail(404, "host_not_found", f"host {host_id} does not exist")
        return Response(status_code=204)

    # jobs --------------------------------------------------------------------------------

    @app.post(
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

    @app.get("/api/v1/job/{job_id}", response_model=JobOut, dependencies=auth, responses=ERRORS)
    async def get_job(job_id: str) -> dict[str, Any]:
        return job_or_404(job_id)

    @app.post(
        "/api/v1/job/{job_id}/cancel", response_model=JobOut, dependencies=auth, responses=ERRORS
    )
    def cancel_job(job_id: str) -> dict[str, Any]:
        if job_or_404(job_id)["status"] in ("pending", "running"):
            runner.cancel(job_id)
        return job_or_404(job_id)

    @app.get("/api/v1/jobs", response_model=JobPage, dependencies=auth, responses=ERRORS)
    def list_jobs(
        host_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        status: Literal[JOB_STATUSES] | None = None,  # type: ignore[valid-type]
        since: Annotated[float | None, Query(description="Unix time")] = None,
    ) -> dict[str, Any]:
        jobs = store.list_jobs(host_id, status, since)
        return {"data": jobs, "total": len(jobs)}

    # monitoring --------------------------------------------------------------------------

    @app.get("/api/v1/prometheus/query", dependencies=auth, responses=MONITORING_ERRORS)
    def prometheus_query(
        query: Annotated[str, Query(min_length=1)], time: float | None = None
    ) -> Response:
        if not prometheus_url:
            raise fail(503, "monitoring_unconfigured", "the lab has no Prometheus configured")
        params: dict[str, Any] = {"query": query}
        if time is not None:
            params["time"] = time
        try:
            answer = requests.get(f"{prometheus_url}/api/v1/query", params=params, timeout=10)
        except requests.RequestException as exc:
            raise fail(502, "monitoring_unreachable", f"Prometheus: {type(exc).__name__}") from None
        if answer.ok:
            return Response(answer.content, media_type="application/json")
        try:  # Prometheus' own error, in the platform's error shape
            said = answer.json()
            code, message = f"prometheus_{said['errorType']}", str(said["error"])
        except (ValueError, KeyError, TypeError):
            code, message = "prometheus_error", answer.text[:500] or answer.reason
        status = answer.status_code if answer.status_code in (400, 422, 503) else 502
        raise fail(status, code, message)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        runner.sync_noted_restarts()
        return PlainTextResponse(render_metrics(store), media_type="text/plain; version=0.0.4")

    # lab admin ---------------------------------------------------------------------------

    @app.post("/lab/reset", dependencies=auth, include_in_schema=False)
    def reset(body: ResetIn) -> dict[str, Any]:
        runner.cancel_all()
        store.delete_all_hosts()
        shutil.rmtree(root / "hosts", ignore_errors=True)
        specs = lab_host_specs(body.hosts)
        store.create_hosts(specs, [base_load_for(s["hostname"]) for s in specs])
        return {"hosts": body.hosts}

    def by_name(hostname: str) -> dict[str, Any]:
        host = store.get_host_by_name(hostname)
        if host is None:
            raise fail(404, "host_not_found", f"no lab host named {hostname!r}")
        return host

    @app.post("/lab/hosts/{hostname}/overload", dependencies=auth, include_in_schema=False)
    def overload(hostname: str, body: OverloadIn) -> dict[str, Any]:
        host = by_name(hostname)
        store.set_state(
            host["id"],
            overload=body.load,
            overloaded_at=time.time() if body.load is not None else None,
        )
        return lab_state(hostname)

    @app.post("/lab/hosts/{hostname}/fail-restart", dependencies=auth, include_in_schema=False)
    def fail_restart(hostname: str, body: FailRestartIn) -> dict[str, Any]:
        host = by_name(hostname)
        set_host_flag(root, hostname, "fail-restart", body.fail)
        store.set_state(host["id"], fail_restart=int(body.fail))
        return lab_state(hostname)

    @app.post("/lab/hosts/{hostname}/metrics", dependencies=auth, include_in_schema=False)
    def metrics_fault(hostname: str, body: MetricsFaultIn) -> dict[str, Any]:
        host = by_name(hostname)
        state = store.host_state(host["id"])
        store.set_state(
            host["id"],
            metrics_fault=body.fault,
            metrics_frozen_at=time.time() - STALE_SAMPLE_AGE,
            metrics_frozen_load=current_load(state),  # type: ignore[arg-type]
        )
        return lab_state(hostname)

    @app.post("/lab/hosts/{hostname}/hang-restart", dependencies=auth, include_in_schema=False)
    def hang_restart(hostname: str, body: HangRestartIn) -> dict[str, Any]:
        by_name(hostname)
        set_host_flag(root, hostname, "hang-restart", body.hang)
        return lab_state(hostname)

    @app.put("/lab/faults", dependencies=auth, include_in_schema=False)
    def set_faults(rules: list[FaultRule]) -> list[FaultRule]:
        app.state.faults.set(rules)
        return app.state.faults.rules

    @app.get("/lab/faults", dependencies=auth, include_in_schema=False)
    def get_faults() -> list[FaultRule]:
        return app.state.faults.rules

    @app.post("/lab/hosts/{hostname}/fill-disk", dependencies=auth, include_in_schema=False)
    def fill(hostname: str, body: FillDiskIn) -> dict[str, Any]:
        host = by_name(hostname)
        fill_disk(root, hostname, body.gigabytes)
        store.set_state(host["id"], disk_used=disk_used(root, hostname))
        return lab_state(hostname)

    @app.get("/lab/hosts/{hostname}", dependencies=auth, include_in_schema=False)
    def lab_state(hostname: str) -> dict[str, Any]:
        state = store.host_state(by_name(hostname)["id"])
        return {**dict(state), "load": current_load(state)}  # type: ignore[arg-type]

    @app.get("/lab/hosts", dependencies=auth, include_in_schema=False)
    def lab_states() -> list[dict[str, Any]]:
        runner.sync_noted_restarts()
        now = time.time()
        return [{**dict(s), "load": current_load(s, now)} for s in store.host_states()]

    return app


def lab_host_specs(count: int) -> list[dict[str, Any]]:
    """`count` lab hosts on loopback addresses (127.10.x.y, then 127.11.x.y...), tagged by role."""
    specs = []
    for n in range(1, count + 1):
        block, rest = divmod(n, 250 * 250)
        high, low = divmod(rest, 250)
        role = "web" if n % 2 else "db"
        specs.append(
            {
                "hostname": f"lab-{role}-{n:02d}",
                "ip": f"127.{10 + block}.{high}.{low + 1}",
                "os": "Debian 12",
                "owner": "ops-lab",
                "tags": ["lab", role],
            }
        )
    return specs


LAB_EPOCH = 1_700_000_000.0  # the lab hosts' simulated boot time


def render_metrics(store: LabStore) -> str:
    """Prometheus text format for every host: load, service, CPUs and the root filesystem."""
    now = time.time()
    families: dict[str, tuple[str, list[str]]] = {
        "node_load1": ("1m load average (simulated by the opsflow lab).", []),
        "lab_service_up": ("Whether the host's service is active.", []),
        "node_cpu_seconds_total": ("Seconds the CPUs spent idle (simulated).", []),
        "node_filesystem_size_bytes": ("Filesystem size (simulated).", []),
        "node_filesystem_avail_bytes": ("Filesystem space available (simulated).", []),
    }
    for s in store.host_states():
        address = f"[{s['ip']}]" if ":" in s["ip"] else s["ip"]  # IPv6 as Prometheus writes it
        labels = f'instance="{address}:9100",hostname="{s["hostname"]}"'
        disk = f'{labels},mountpoint="/"'
        avail = max(0.0, DISK_SIZE_BYTES - BASE_DISK - s["disk_used"])
        load, fault = current_load(s, now), s["metrics_fault"]
        if fault == "nan":
            families["node_load1"][1].append(f"node_load1{{{labels}}} NaN")
        elif fault == "stale":  # a relay replaying an old sample with its own timestamp
            then, frozen = int(s["metrics_frozen_at"] * 1000), s["metrics_frozen_load"]
            families["node_load1"][1].append(
                f'node_load1{{{labels},exporter="replay"}} {frozen} {then}'
            )
        elif fault != "absent":
            families["node_load1"][1].append(f"node_load1{{{labels}}} {load}")
        families["lab_service_up"][1].append(
            f'lab_service_up{{{labels},service="nginx"}} {s["service_up"]}'
        )
        idle = round(now - LAB_EPOCH, 1)
        families["node_cpu_seconds_total"][1].extend(
            f'node_cpu_seconds_total{{{labels},cpu="{cpu}",mode="idle"}} {idle}'
            for cpu in range(s["cpus"])
        )
        families["node_filesystem_size_bytes"][1].append(
            f"node_filesystem_size_bytes{{{disk}}} {DISK_SIZE_BYTES}"
        )
        families["node_filesystem_avail_bytes"][1].append(
            f"node_filesystem_avail_bytes{{{disk}}} {avail}"
        )
    lines = []
    for name, (text, samples) in families.items():
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"
