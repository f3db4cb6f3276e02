"""The one HTTP engine every opsflow client uses.

A pooled `requests.Session` with urllib3 `Retry` mounted once: idempotent methods are retried
on connection errors, 429, 502, 503 and 504 with backoff, honouring `Retry-After`. POST is
never retried here; a client that sends an `Idempotency-Key` mounts a POST-retrying adapter
on exactly that endpoint (see `JSONClient.allow_post_retries`).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from opsflow.opsapi.audit import AuditLog, redact_url
from opsflow.opsapi.errors import (
    AuthFailed,
    BadResponse,
    Conflict,
    ConnectionFailed,
    InvalidInput,
    NotFound,
    RateLimited,
    RequestFailed,
    RequestTimedOut,
    ServerError,
)
from opsflow.opsapi.gc_pause import paused_gc
from opsflow.opsapi.redaction import mask_secrets
from opsflow.opsapi.transport import Transport

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = (429, 502, 503, 504)
_STATUS_ERRORS: dict[int, type[RequestFailed]] = {
    400: InvalidInput,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
    429: RateLimited,
}
_SNIPPET = 300


class LenientRetry(Retry):
    """urllib3's Retry, but a Retry-After of "1.5" is honoured (urllib3 raises on it), garbage
    falls back to the backoff instead of crashing, and no server makes a runbook sleep for
    more than `RETRY_AFTER_CAP` seconds at a time."""

    RETRY_AFTER_CAP = 60.0

    def parse_retry_after(self, retry_after: str) -> float:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                seconds = super().parse_retry_after(retry_after)
            except InvalidHeader:
                return 0.0  # 0 means "no usable header": urllib3 then sleeps the backoff
        return min(max(seconds, 0.0), self.RETRY_AFTER_CAP)

    # A refused connection is retried once (a server restarting), not `connect` times: nothing
    # listens there, and the operator waits for every backoff (about 20 s with the defaults).
    REFUSED_RETRIES = 1

    def __init__(self, *args: Any, refused: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused = refused

    def new(self, **kwargs: Any) -> LenientRetry:
        kwargs.setdefault("refused", self.refused)
        return super().new(**kwargs)  # type: ignore[return-value]

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        error = kwargs.get("error") or (args[3] if len(args) > 3 else None)
        if not _refused(error):
            return super().increment(*args, **kwargs)
        if self.refused >= self.REFUSED_RETRIES:
            pool, url = kwargs.get("_pool"), kwargs.get("url") or (args[1] if len(args) > 1 else "")
            raise MaxRetryError(pool, url, error) from error
        retry = super().increment(*args, **kwargs)
        retry.refused = self.refused + 1  # type: ignore[attr-defined]
        return retry


def _refused(error: BaseException | None) -> bool:
    """A connection refused (nothing listens), as urllib3 reports it."""
    while error is not None:
        if isinstance(error, ConnectionRefusedError):
            return True
        error = error.__cause__ or error.__context__
    return False


def connection_cause(exc: BaseException) -> str:
    """What went wrong connecting, in a few words ("connection refused", "name not found").

    Example:
        >>> connection_cause(ConnectionRefusedError(111, "Connection refused"))
        'connection refused'
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"its name does not resolve ({seen.strerror or seen})".lower()
        if isinstance(seen, ConnectionResetError):
            return "connection reset"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        if isinstance(seen, MaxRetryError) and seen.reason is not None:
            nested = seen.reason
        seen = nested or seen.__cause__ or seen.__context__
    return mask_secrets(str(exc))[:_SNIPPET]


def make_retry(
    retries: int,
    backoff: float,
    methods: frozenset[str],
    statuses: tuple[int, ...] = RETRY_STATUSES,
    after_sending: bool = True,
) -> Retry:
    """The retry policy: `retries` attempts on transient failures of `methods`. With
    `after_sending` false, a request is retried only when it cannot have been acted on: the
    connection failed, or the server answered one of `statuses` (it refused to act)."""
    return LenientRetry(
        total=retries,
        connect=retries,
        read=retries if after_sending else 0,
        status=retries,
        other=0,
        allowed_methods=methods,
        status_forcelist=statuses,
        backoff_factor=backoff,
        backoff_max=30,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def make_session(
    transport: Transport,
    headers: Mapping[str, str] | None = None,
    audit: bool = True,
    pool_connections: int = 4,
) -> requests.Session:
    """The one way a client gets its `requests.Session`: the transport's TLS, proxies and pool;
    urllib3 Retry on idempotent methods; the audit hook (with `audit` and an audit log).

    Only the transport's own proxy and CA count: REQUESTS_CA_BUNDLE, HTTPS_PROXY, ~/.netrc,
    VAULT_TOKEN and ~/.vault-token from the environment never change where credentials go or
    what is trusted.

    Example:
        >>> make_session(Transport(verify_tls=False)).trust_env
        False
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = transport.verify  # hvac, too, prefers the session's verify over its own
    session.proxies.update(transport.proxies)
    session.headers.update(headers or {})
    mount_retries(session, "http://", transport, IDEMPOTENT_METHODS, pool_connections)
    mount_retries(session, "https://", transport, IDEMPOTENT_METHODS, pool_connections)
    if audit and transport.audit_log:
        session.hooks["response"].append(AuditLog.at(transport.audit_log).record_response)
    return session


def mount_retries(
    session: requests.Session,
    prefix: str,
    transport: Transport,
    methods: frozenset[str],
    pool_connections: int = 1,
    statuses: tuple[int, ...] = RETRY_STATUSES,
    after_sending: bool = True,
) -> None:
    """Mount on `prefix` (a scheme, or a URL's start) a pooled adapter retrying `methods` as
    `make_retry` says; the longest matching prefix wins in requests."""
    adapter = HTTPAdapter(
        pool_connections=pool_connections,
        pool_maxsize=transport.pool_size,
        max_retries=make_retry(
            transport.retries, transport.backoff, methods, statuses, after_sending
        ),
    )
    session.mount(prefix, adapter)


def is_timeout(exc: requests.exceptions.RequestException) -> bool:
    """Whether `exc` means "no answer in time", however requests wrapped it."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    # After retries run out, requests reports a read timeout as a ConnectionError.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # (NewConnectionError, a refusal, subclasses ConnectTimeoutError in urllib3 2.)
    timed_out = isinstance(reason, ReadTimeoutError | ConnectTimeoutError)
    return timed_out and not isinstance(reason, NewConnectionError)


def _error_message(response: requests.Response) -> str:
    """The server's own words: `{"error": {"message"}}`, `{"detail"}`, or the body's start."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:_SNIPPET].strip() or response.reason or "no body"
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message", "errors"):
            if payload.get(key):
                return str(payload[key])[:_SNIPPET]
    return str(payload)[:_SNIPPET]


class JSONClient:
    """Base for a JSON-over-HTTP client: base URL, auth headers and one `Transport`.

    Args:
        base_url: the server's root, e.g. ``https://127.0.0.1:18443``.
        headers: headers sent with every request (credentials go here, never in URLs).
        transport: timeout, TLS, retries, backoff, pool size, proxy and audit log.

    Example:
        >>> client = JSONClient("https://127.0.0.1:18443", transport=Transport(timeout=5))
        >>> client.timeout
        5.0
    """

    name = "server"

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        transport = transport or Transport()
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.timeout = transport.timeout
        self.retries = transport.retries
        self.backoff = transport.backoff
        self.session = make_session(transport, {"Accept": "application/json", **(headers or {})})

    def allow_post_retries(self, path: str) -> None:
        """Retry POST on `path` too: only for endpoints that honour an Idempotency-Key."""
        methods = IDEMPOTENT_METHODS | frozenset({"POST"})
        mount_retries(self.session, self.base_url + path, self.transport, methods)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> JSONClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Send one request and return the decoded JSON body (or None for an empty body).

        Raises:
            RequestFailed: a subclass naming the status, method and URL; never a credential.
        """
        url = f"{self.base_url}{path}"
        send_headers = {"X-Request-ID": uuid.uuid4().hex, **(headers or {})}
        # urllib3 retries what fails before the body is read; requests reads the body after,
        # so an answer cut off mid-body is retried here, and only when repeating is safe.
        repeatable = method.upper() in IDEMPOTENT_METHODS or "Idempotency-Key" in send_headers
        for attempt in range(self.retries + 1):
            try:
                response = self._send(method, url, params, json, send_headers)
                break
            except requests.exceptions.ChunkedEncodingError as exc:
                if not repeatable or attempt == self.retries:
                    raise ConnectionFailed(
                        f"{self.name} closed the connection before its answer was complete "
                        f"({'not repeated: the request is not idempotent' if not repeatable else f'{attempt + 1} tries'})",
                        method,
                        redact_url(url),
                    ) from exc
                time.sleep(self.backoff * 2**attempt)
        return self._decode(response, method, url, expect_json)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str],
    ) -> requests.Response:
        started = time.monotonic()
        try:
            return self.session.request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except requests.exceptions.RetryError as exc:
            raise ServerError(
                f"{self.name} kept failing after {self.retries} retries",
                method,
                redact_url(url),
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise self._timed_out(method, url, started) from exc
        except requests.exceptions.SSLError as exc:
            raise ConnectionFailed(
                f"TLS verification of {self.name} failed: give the CA bundle that signed its "
                f"certificate ({mask_secrets(str(exc))[:_SNIPPET]})",
                method,
                redact_url(url),
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            if is_timeout(exc):
                raise self._timed_out(method, url, started) from exc
            raise ConnectionFailed(
                f"cannot connect to {self.name} at {redact_url(self.base_url)}: "
                f"{connection_cause(exc)}",
                method,
                redact_url(url.split("?", 1)[0]),
            ) from exc

    def _timed_out(self, method: str, url: str, started: float) -> RequestTimedOut:
        return RequestTimedOut(
            f"{self.name} did not answer within {self.timeout:g}s "
            f"({time.monotonic() - started:.1f}s elapsed, {self.retries} retries)",
            method,
            redact_url(url),
        )

    def _decode(self, response: requests.Response, method: str, url: str, expect_json: bool) -> Any:
        status = response.status_code
        if status >= 400:
            url = redact_url(url)  # only what goes into an error message needs redacting
            error = _STATUS_ERRORS.get(status, ServerError if status >= 500 else RequestFailed)
            message = mask_secrets(_error_message(response))
            raise error(
                f"{self.name} refused the request: {message}",
                method,
                url,
                status,
                mask_secrets(response.text[:_SNIPPET]),
            )
        if not response.content:
            return None
        try:
            with paused_gc():  # a page of hosts, a fleet's series: many objects, no cycles
                return response.json()
        except ValueError as exc:
            if not expect_json:
                return response.text
            raise BadResponse(
                f"{self.name} answered with something that is not JSON: "
                f"{mask_secrets(response.text[:80])!r}",
                method,
                redact_url(url),
                status,
            ) from exc
