"""The lab ops platform: the design's API table, served by FastAPI (OpenAPI at /openapi.json).

`create_app` builds the app: shared state, the token check, error handlers, and one router per
concern (lab/routes_hosts, routes_jobs, routes_monitoring, routes_metrics, routes_admin).
"""

from __future__ import annotations

import hmac
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsflow.lab.faults import FaultInjector
from opsflow.lab.jobs import JobRunner
from opsflow.lab.routes_admin import admin_router, lab_host_specs
from opsflow.lab.routes_hosts import hosts_router
from opsflow.lab.routes_jobs import jobs_router
from opsflow.lab.routes_metrics import metrics_router
from opsflow.lab.routes_monitoring import monitoring_router
from opsflow.lab.store import LabStore

__all__ = ["RequestIdMiddleware", "create_app", "lab_host_specs"]


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

    auth = [Depends(authorized)]
    app.include_router(hosts_router(store, root, auth))
    app.include_router(jobs_router(store, runner, auth))
    app.include_router(monitoring_router(prometheus_url, auth))
    app.include_router(metrics_router(store, runner))
    app.include_router(admin_router(store, runner, root, app.state.faults, auth))
    return app
