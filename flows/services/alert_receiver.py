"""`opsflow alerts serve`: Alertmanager's webhook receiver, turning alerts into Prefect events.

Each alert becomes ``opsflow.alert.firing`` or ``opsflow.alert.resolved`` on the host it is
about (``opsflow.host.<hostname>``); the hosts that start firing in one notification also become
one ``opsflow.alerts.firing`` event, which the restart runbook's deployment trigger turns into
one run for exactly those hosts. An alert's ``instance`` (``10.0.0.7:9100``) is matched to a
host by address, or its ``hostname`` label by name, through the backend's inventory; an alert
with no host is reported in the answer and the log, and never acted on.

Alertmanager retries a notification it thinks failed and repeats one every
``repeat_interval``: an alert already emitted (same fingerprint, status and start) is not
emitted again. The answer comes within ``timeout`` seconds, reading the body included; a
receiver that cannot read the inventory or reach Prefect in time answers 503, so Alertmanager
tries again later.

What one notification may cost is bounded: a body over ``max_body_bytes`` (by its
Content-Length, or counted while a chunked one is read) and a notification of more than
``max_alerts`` alerts are answered 413, and Alertmanager's own ``max_alerts`` keeps it under
that. The alerts of a long notification are matched and emitted with turns of the event loop in
between, so other requests are answered meanwhile; the alerts that match no host are one log
line per notification. A request carries ``Authorization: Bearer <token>`` (the scheme in any
case) when the receiver has a token; there is no OpenAPI schema or docs page.

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
import ipaddress
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prefect.events.clients import get_events_client
from pydantic import ValidationError

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.alertmanager import WebhookAlert, WebhookMessage
from opsflow.opsapi.models import Host
from opsflow.tasks.events import alert_event, alerts_firing_event
from opsflow.tasks.wording import plural

log = logging.getLogger("opsflow.alerts")

INVENTORY_MAX_AGE = 30.0  # seconds an inventory read is reused
REMEMBERED = 10_000  # alerts remembered as already emitted
MAX_BODY_BYTES = 1 << 20  # a notification of 1000 alerts is about 300 KB
MAX_ALERTS = 1000
YIELD_EVERY = 100  # alerts matched between two turns of the event loop
NAMED_UNMAPPED = 5  # unmatched alerts named in the log line; the answer names all

Key = tuple[str, str, str]  # an alert's fingerprint, status and start: emitted once


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
        self._emit_unlocked = emit
        self._emitted: OrderedDict[Key, None] = OrderedDict()
        # Alerts a notification being processed is emitting: a retry racing its original
        # waits for it and then emits only what it did not, while other notifications go on.
        self._in_flight: dict[Key, asyncio.Event] = {}
        self._one_emit_at_a_time = asyncio.Lock()  # one events client, events in order

    async def receive(self, message: WebhookMessage) -> dict[str, Any]:
        """Emit the notification's events; the answer Alertmanager gets (see the module)."""
        await self.inventory.refresh()
        mapped: list[tuple[WebhookAlert, str]] = []
        unmapped: list[str] = []
        for number, alert in enumerate(message.alerts, 1):
            hostname = self.inventory.host_of(alert)
            if hostname is None:
                unmapped.append(alert.labels.get("instance") or alert.fingerprint)
            else:
                mapped.append((alert, hostname))
            if number % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long notification lets other requests in
        if unmapped:
            log.warning("%s", unmapped_summary(unmapped))
        keys = [(a.fingerprint, a.status, a.startsAt) for a, _ in mapped]
        claimed = await self._claim(keys)
        emitted = False
        try:
            todo: dict[Key, tuple[WebhookAlert, str]] = {}  # an alert given twice: once
            for key, pair in zip(keys, mapped, strict=True):
                if key in claimed:
                    todo.setdefault(key, pair)
            firing = await self._emit_alerts(list(todo.values()), message.groupKey)
            emitted = True
        finally:
            self._release(claimed, remember=emitted)
        return {
            "emitted": len(claimed),
            "firing": {name: hosts for name, (hosts, _) in firing.items()},
            "unmapped": unmapped,
        }

    async def _emit_alerts(
        self, alerts: list[tuple[WebhookAlert, str]], group_key: str
    ) -> dict[str, tuple[list[str], list[str]]]:
        """One event per alert, then one per alertname starting to fire; alertname -> hosts, ids."""
        firing: dict[str, tuple[list[str], list[str]]] = {}
        for alert, hostname in alerts:
            event = alert_event(alert, hostname, group_key)
            await self._emit(event)
            await asyncio.sleep(0)  # a send into a socket's buffer does not yield by itself
            if alert.status == "firing":
                hosts, ids = firing.setdefault(alert.alertname, ([], []))
                if hostname not in hosts:
                    hosts.append(hostname)
                ids.append(str(event.id))
        for alertname, (hosts, ids) in firing.items():
            await self._emit(alerts_firing_event(alertname, hosts, group_key, ids))
        return firing

    async def _emit(self, event: Any) -> None:
        async with self._one_emit_at_a_time:
            await self._emit_unlocked(event)

    async def _claim(self, keys: list[Key]) -> set[Key]:
        """The keys not emitted yet, now this notification's; all at once (no deadlock)."""
        while busy := [self._in_flight[k] for k in keys if k in self._in_flight]:
            await busy[0].wait()
        claimed = {k for k in keys if k not in self._emitted}
        for key in claimed:
            self._in_flight[key] = asyncio.Event()
        return claimed

    def _release(self, keys: set[Key], remember: bool) -> None:
        """Keys remembered only once all is emitted (else Alertmanager's retry emits them)."""
        for key in keys:
            if remember:
                self._remember(key)
            self._in_flight.pop(key).set()

    def _remember(self, key: Key) -> None:
        self._emitted[key] = None
        while len(self._emitted) > REMEMBERED:
            self._emitted.popitem(last=False)


def unmapped_summary(unmapped: list[str]) -> str:
    """One line for the alerts that match no host, however many (a flood is one line).

    Example:
        >>> unmapped_summary(["10.9.0.1:9100", "10.9.0.2:9100"])
        '2 alerts match no host in the inventory, not acted on: 10.9.0.1:9100, 10.9.0.2:9100'
    """
    named = ", ".join(unmapped[:NAMED_UNMAPPED])
    more = len(unmapped) - NAMED_UNMAPPED
    return (
        f"{plural(len(unmapped), 'alert')} match{'es' if len(unmapped) == 1 else ''} no host "
        f"in the inventory, not acted on: {named}{f' and {more} more' if more > 0 else ''}"
    )


class BodyTooLarge(Exception):
    """A request body over the receiver's limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (`BodyTooLarge`) as soon as it is known to exceed `limit` bytes: by
    its Content-Length before reading, else (a chunked body) while reading."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def authorized(header: str, token: str) -> bool:
    """Whether an Authorization header carries the bearer token (the scheme in any case, as
    RFC 7235 has it), compared in constant time (digests: not even the length shows)."""
    scheme, _, credentials = header.strip().partition(" ")
    given = hashlib.sha256(credentials.strip().encode()).digest()
    wanted = hashlib.sha256(token.encode()).digest()
    return scheme.lower() == "bearer" and hmac.compare_digest(given, wanted)


def receiver_app(
    backend: ExecutionBackendBlock,
    token: str | None = None,
    timeout: float = 10.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_alerts: int = MAX_ALERTS,
) -> FastAPI:
    """The webhook as an ASGI app: ``POST /alerts`` (Alertmanager's body), ``GET /healthz``;
    no OpenAPI schema or docs pages (they would be served without the token).

    Args:
        backend: the inventory that alerts' instances are matched against.
        token: when set, a request must carry ``Authorization: Bearer <token>``.
        timeout: seconds within which every answer comes (503 past it), reading included.
        max_body_bytes: a larger body is refused (413) before or while it is read.
        max_alerts: a notification with more alerts is refused (413).
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
            async with asyncio.timeout(timeout):
                return await answer(request)
        except TimeoutError:
            return _refuse(503, f"not done within {timeout:g}s; Alertmanager will retry")
        except Exception as exc:  # the inventory or Prefect unreachable: let it retry
            log.warning("alert notification not processed: %s", exc)
            return _refuse(503, f"{type(exc).__name__}: {str(exc)[:200]}")

    async def answer(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, max_body_bytes)
        except BodyTooLarge:
            return _refuse(
                413,
                f"body over {max_body_bytes} bytes (the receiver's --max-body-bytes); "
                "lower max_alerts in Alertmanager's webhook_config",
            )
        try:
            message = WebhookMessage.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _refuse(
                400,
                f"not an Alertmanager webhook body (version 4): {where}: {first['msg']}",
            )
        if len(message.alerts) > max_alerts:
            return _refuse(
                413,
                f"{len(message.alerts)} alerts in one notification, over {max_alerts} (the "
                "receiver's --max-alerts); set max_alerts in Alertmanager's webhook_config",
            )
        return JSONResponse(await state["receiver"].receive(message))

    return app


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def is_loopback(host: str) -> bool:
    """Whether every address `host` stands for is this machine's loopback (so nothing beyond
    the machine reaches a receiver listening there); an unknown name raises `OSError`."""
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    return all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def serve_alerts(
    backend: ExecutionBackendBlock,
    host: str = "127.0.0.1",
    port: int = 9095,
    token: str | None = None,
    timeout: float = 10.0,
    tls: tuple[Path, Path] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_alerts: int = MAX_ALERTS,
) -> None:
    """Run the receiver until interrupted (what `opsflow alerts serve` does).

    Args:
        tls: the certificate (chain) and key files to serve HTTPS with; None: plain HTTP.

    Raises:
        ValueError: `host` is beyond loopback and there is no token.
    """
    import uvicorn

    if token is None and not is_loopback(host):
        raise ValueError(f"a receiver listening on {host} (beyond loopback) needs a token")
    cert, key = tls if tls else (None, None)
    uvicorn.run(
        receiver_app(backend, token, timeout, max_body_bytes, max_alerts),
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
