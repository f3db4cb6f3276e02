"""The platform's monitoring pass-through: `/api/v1/prometheus/query`, answered by the lab's
Prometheus, its errors in the platform's error shape."""

from __future__ import annotations

from typing import Annotated, Any

import requests
from fastapi import APIRouter, Query, Response

from opsflow.lab.routes_common import ERRORS, ErrorBody, fail

MONITORING_ERRORS = {
    **ERRORS,
    502: {"model": ErrorBody, "description": "Prometheus unreachable or answered garbage."},
    503: {"model": ErrorBody, "description": "No Prometheus configured, or it is overloaded."},
}


def monitoring_router(prometheus_url: str | None, auth: list[Any]) -> APIRouter:
    """The query route, passed on to `prometheus_url` (None: every query is a 503)."""
    router = APIRouter()

    @router.get("/api/v1/prometheus/query", dependencies=auth, responses=MONITORING_ERRORS)
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

    return router
