"""`opsflow alerts serve`: Alertmanager's webhook receiver, turning alerts into Prefect events.

Each alert becomes ``opsflow.alert.firing`` or ``opsflow.alert.resolved`` on the host it is
about (``opsflow.host.<hostname>``); the hosts that start firing in one notification also become
one ``opsflow.alerts.firing`` event, which the restart runbook's deployment trigger turns into
one run for exactly those hosts. An alert's ``instance`` (``10.0.0.7:9100``) is matched to a
host by address, or its ``hostname`` label by name, through the backend's inventory; an alert
with no host is reported in the answer and the log, and never acted on.

Alertmanager retries a notification it thinks failed and repeats one every
``repeat_interval``: an alert already emitted (same fingerprint, status and start) is not
emitted again. The answer comes within ``timeout`` seconds; a receiver that cannot read the
inventory or reach Prefect in time answers 503, so Alertmanager tries again later.

Example (Alertmanager's side)::

    receivers:
      - name: opsflow
        webhook_configs:
          - url: http://127.0.0.1:9095/alerts
            http_config: {authorization: {credentials_file: /etc/alertmanager/opsflow.token}}
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prefect.events.clients import get_events_client
from pydantic import ValidationError

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.alertmanager import WebhookAlert, WebhookMessage
from opsflow.opsapi.models import Host
from opsflow.tasks.events import alert_event, alerts_firing_event

log = logging.getLogger("opsflow.alerts")

INVENTORY_MAX_AGE = 30.0  # seconds an inventory read is reused
REMEMBERED = 10_000  # alerts remembered as already emitted


class Inventory:
    """The backend's hosts by address and by name, re-read when older than `max_age`."""

    def __init__(self, read: Callable[[], list[Host]], max_age: float = INVENTORY_MAX_AGE):
        self._read, self._max_age = read, max_age
        self._at = -max_age
        self._by_ip: dict[str, str] = {}
        self._names: set[str] = set()

    async def refresh(self) -> None:
        if time.monotonic() - self._at < self._max_age:
            return
        hosts = await asyncio.to_thread(self._read)
        self._by_ip = {h.ip: h.hostname for h in hosts}
        self._names = {h.hostname for h in hosts}
        self._at = time.monotonic()

    def host_of(self, alert: WebhookAlert) -> str | None:
        """The host an alert is about: its `instance`'s address, else its `hostname` label."""
        address = _address(alert.labels.get("instance", ""))
        if address in self._by_ip:
            return self._by_ip[address]
        name = alert.labels.get("hostname") or address
        return name if name in self._names else None


def _address(instance: str) -> str:
    """``10.0.0.7:9100`` -> ``10.0.0.7``; ``[fd00::7]:9100`` -> ``fd00::7``; else as given."""
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    return instance.split(":", 1)[0] if instance.count(":") == 1 else instance


class AlertReceiver:
    """What the webhook does with a notification; see the module's docstring."""

    def __init__(self, inventory: Inventory, emit: Callable[[Any], Any]) -> None:
        self.inventory = inventory
        self._emit = emit
        self._emitted: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._one_at_a_time = asyncio.Lock()  # a retry racing its original emits once

    async def receive(self, message: WebhookMessage) -> dict[str, Any]:
        async with self._one_at_a_time:
            return await self._receive(message)

    async def _receive(self, message: WebhookMessage) -> dict[str, Any]:
        await self.inventory.refresh()
        unmapped: list[str] = []
        done: list[tuple[str, str, str]] = []  # remembered once all is emitted (else retried)
        firing: dict[str, tuple[list[str], list[str]]] = {}  # alertname -> hosts, event ids
        for alert in message.alerts:
            hostname = self.inventory.host_of(alert)
            if hostname is None:
                unmapped.append(alert.labels.get("instance") or alert.fingerprint)
                log.warning(
                    "alert %s (%s) matches no host in the inventory: not acted on",
                    alert.alertname,
                    alert.labels.get("instance", "no instance label"),
                )
                continue
            key = (alert.fingerprint, alert.status, alert.startsAt)
            if key in self._emitted:
                continue
            event = alert_event(alert, hostname, message.groupKey)
            await self._emit(event)
            done.append(key)
            if alert.status == "firing":
                hosts, ids = firing.setdefault(alert.alertname, ([], []))
                if hostname not in hosts:
                    hosts.append(hostname)
                ids.append(str(event.id))
        for alertname, (hosts, ids) in firing.items():
            await self._emit(alerts_firing_event(alertname, hosts, message.groupKey, ids))
        for key in done:
            self._remember(key)
        return {
            "emitted": len(done),
            "firing": {name: hosts for name, (hosts, _) in firing.items()},
            "unmapped": unmapped,
        }

    def _remember(self, key: tuple[str, str, str]) -> None:
        self._emitted[key] = None
        while len(self._emitted) > REMEMBERED:
            self._emitted.popitem(last=False)


def authorized(header: str, token: str) -> bool:
    """Whether an Authorization header carries the bearer token (the scheme in any case, as
    RFC 7235 has it), compared in constant time (digests: not even the length shows)."""
    scheme, _, credentials = header.strip().partition(" ")
    given = hashlib.sha256(credentials.strip().encode()).digest()
    wanted = hashlib.sha256(token.encode()).digest()
    return scheme.lower() == "bearer" and hmac.compare_digest(given, wanted)


def receiver_app(
    backend: ExecutionBackendBlock, token: str | None = None, timeout: float = 10.0
) -> FastAPI:
    """The webhook as an ASGI app: ``POST /alerts`` (Alertmanager's body), ``GET /healthz``;
    no OpenAPI schema or docs pages (they would be served without the token).

    Args:
        backend: the inventory that alerts' instances are matched against.
        token: when set, a request must carry ``Authorization: Bearer <token>``.
        timeout: seconds within which every answer comes (503 past it).
    """

    def read_hosts() -> list[Host]:
        with backend.get_client() as client:
            return client.list_hosts()

    state: dict[str, AlertReceiver] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with get_events_client() as events:
            state["receiver"] = AlertReceiver(Inventory(read_hosts), events.emit)
            yield

    app = FastAPI(
        title="opsflow alert receiver",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/alerts")
    async def alerts(request: Request) -> JSONResponse:
        if token is not None and not authorized(request.headers.get("authorization", ""), token):
            return _refuse(401, "missing or wrong bearer token")
        try:
            message = WebhookMessage.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _refuse(
                400,
                f"not an Alertmanager webhook body (version 4): {where}: {first['msg']}",
            )
        try:
            answer = await asyncio.wait_for(state["receiver"].receive(message), timeout)
        except TimeoutError:
            return _refuse(503, f"not done within {timeout:g}s; Alertmanager will retry")
        except Exception as exc:  # the inventory or Prefect unreachable: let it retry
            log.warning("alert notification not processed: %s", exc)
            return _refuse(503, f"{type(exc).__name__}: {str(exc)[:200]}")
        return JSONResponse(answer)

    return app


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def serve_alerts(
    backend: ExecutionBackendBlock,
    host: str = "127.0.0.1",
    port: int = 9095,
    token: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Run the receiver until interrupted (what `opsflow alerts serve` does)."""
    import uvicorn

    uvicorn.run(receiver_app(backend, token, timeout), host=host, port=port, log_level="warning")
