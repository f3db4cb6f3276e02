"""Fault injection for the lab platform: the failures real platforms produce, on demand.

A rule matches requests by method and path (a regular expression) and does one thing to the
next `times` of them:

    status     answer `status` (500, 502, 503, 429...) with the documented error body,
               and a Retry-After header when `retry_after` is set
    latency    wait `seconds`, then answer normally
    drop       close the connection after the status line, before any body (nothing was done)
    lost       do the work, then close the connection the same way (the answer is lost)
    truncate   send half of the answer's body, then close the connection

(uvicorn answers 500 for an app that fails before it starts its answer, so a dropped
connection is one that closes after the headers: the client sees a cut-off answer.)
    non_json   answer 200 with an HTML page instead of JSON

`/lab/...` and `/metrics` are never touched, so the lab stays controllable.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any, Literal

from pydantic import BaseModel, Field

FaultKind = Literal["status", "latency", "drop", "lost", "truncate", "non_json"]


class FaultRule(BaseModel):
    """One injected fault."""

    path: str = Field(description="Regular expression matched against the request path.")
    method: str = Field(default="*", description="HTTP method, or * for any.")
    fault: FaultKind
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    seconds: float = Field(default=1.0, ge=0, le=600)
    times: int = Field(default=1, ge=1, le=1_000_000, description="How many requests it affects.")
    hits: int = 0


class ConnectionDropped(Exception):
    """Raised inside the app so that uvicorn closes the connection without a (full) answer."""


class FaultInjector:
    """The rules in force; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def set(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self.rules = list(rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first active rule for this request, counting the hit."""
        with self._lock:
            for rule in self.rules:
                if (
                    rule.hits < rule.times
                    and rule.method in ("*", method)
                    and re.search(rule.path, path)
                ):
                    rule.hits += 1
                    return rule
        return None


class FaultMiddleware:
    """ASGI middleware applying the injector's rules."""

    def __init__(self, app: Any, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/lab/") or path == "/metrics":
            await self.app(scope, receive, send)
            return
        rule = self.injector.take(scope["method"], path)
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.fault == "latency":
            await asyncio.sleep(rule.seconds)
            await self.app(scope, receive, send)
        elif rule.fault == "status":
            headers = [(b"content-type", b"application/json")]
            if rule.retry_after is not None:
                headers.append((b"retry-after", f"{rule.retry_after:g}".encode()))
            body = b'{"error":{"code":"injected_fault","message":"injected %d"}}' % rule.status
            await send({"type": "http.response.start", "status": rule.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif rule.fault == "non_json":
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/html")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif rule.fault in ("drop", "lost"):
            if rule.fault == "lost":

                async def swallow(message: dict) -> None:
                    return None

                await self.app(scope, receive, swallow)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            raise ConnectionDropped(path)
        else:  # truncate
            await self._truncated(scope, receive, send)

    async def _truncated(self, scope: dict, receive: Any, send: Any) -> None:
        parts: list[dict] = []

        async def keep(message: dict) -> None:
            parts.append(message)

        await self.app(scope, receive, keep)
        start = next(m for m in parts if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in parts if m["type"] == "http.response.body")
        await send(start)
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise ConnectionDropped(scope.get("path", ""))
