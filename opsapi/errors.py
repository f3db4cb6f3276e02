"""One exception hierarchy for everything opsflow's clients raise.

    OpsAPIError                      base: catch this to catch everything
    ├── ConfigurationError           bad settings or parameters (names the field and the fix)
    │   ├── CommandNotAllowed        a command the allowlist refuses
    │   ├── InvalidHostRows          host rows (CSV or dicts) that cannot be registered
    │   └── UnknownHosts             hosts named explicitly that the inventory lacks
    ├── RequestFailed                an HTTP call failed; carries method, URL, status, body snippet
    │   ├── AuthFailed               401 / 403
    │   ├── NotFound                 404
    │   ├── Conflict                 409
    │   ├── InvalidInput             400 / 422
    │   ├── RateLimited              429 (after retries)
    │   ├── ServerError              5xx (after retries); a sealed Vault too
    │   ├── ConnectionFailed         refused, reset, DNS, TLS: the platform's, Prometheus', Vault's
    │   ├── RequestTimedOut          no answer within the timeout, from any server
    │   ├── BadResponse              not JSON, or not the expected shape
    │   └── VaultRefused             Vault refused a login or a read, or has no such secret
    ├── NotificationFailed           a chat webhook refused the message (errcode in a 200 answer)
    └── JobTimedOut                  a job did not finish in time

Transport failures are the same classes whichever server they come from, so one retry rule
(`opsflow.tasks.retrying.TRANSIENT`) covers them all. Runbook outcomes (`RunbookAborted`) are
not client errors: they live with the tasks, in `opsflow.tasks.runbook`.

Every argument has a default so that Prefect can pickle and unpickle the exceptions.
No message ever holds a credential: callers pass URLs without secrets and bodies are
cut to a short snippet after redaction.
"""

from __future__ import annotations

__all__ = [
    "AuthFailed",
    "BadResponse",
    "CommandNotAllowed",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "InvalidHostRows",
    "InvalidInput",
    "JobTimedOut",
    "NotFound",
    "NotificationFailed",
    "OpsAPIError",
    "RateLimited",
    "RequestFailed",
    "RequestTimedOut",
    "ServerError",
    "UnknownHosts",
    "VaultRefused",
]


class OpsAPIError(Exception):
    """Base of every opsflow error."""


class ConfigurationError(OpsAPIError, ValueError):
    """A setting or parameter is missing or invalid; the message names it and the fix."""


class CommandNotAllowed(ConfigurationError):
    """The command is not on the allowlist (or uses shell syntax an allowlist forbids)."""


class InvalidHostRows(ConfigurationError):
    """Rows that cannot be imported; the message lists every row, field and reason."""


class UnknownHosts(ConfigurationError):
    """Hosts named explicitly (a selector's `hostnames`) that the inventory lacks; the message
    names each with the closest names the inventory has."""


class RequestFailed(OpsAPIError):
    """An HTTP request failed.

    Example:
        >>> err = NotFound("host 7 not found", method="GET", url="https://ops/api/v1/hosts/7", status=404)
        >>> str(err)
        'host 7 not found (404 on GET https://ops/api/v1/hosts/7)'
    """

    def __init__(
        self,
        message: str = "request failed",
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.status = status
        self.body = body

    def __str__(self) -> str:
        where = f"{self.method} {self.url}" if self.method else self.url
        if where is None:
            return self.message
        status = f"{self.status} on " if self.status else "on "
        return f"{self.message} ({status}{where})"

    def __reduce__(self):
        return (
            self.__class__,
            (self.message, self.method, self.url, self.status, self.body),
        )


class AuthFailed(RequestFailed):
    """The server refused the credentials (401 or 403)."""


class NotFound(RequestFailed):
    """The resource does not exist (404)."""


class Conflict(RequestFailed):
    """The resource already exists or is in a conflicting state (409)."""


class InvalidInput(RequestFailed):
    """The server rejected the request body or parameters (400 or 422)."""


class RateLimited(RequestFailed):
    """The server kept answering 429 after the retries."""


class ServerError(RequestFailed):
    """The server kept failing (5xx) after the retries."""


class ConnectionFailed(RequestFailed):
    """The server could not be reached (refused, reset, name resolution or TLS)."""


class RequestTimedOut(RequestFailed):
    """The server did not answer within the timeout."""


class BadResponse(RequestFailed):
    """The answer was not JSON or did not have the expected shape."""


class VaultRefused(RequestFailed):
    """Vault refused a login or a read, or has no secret there; names the path or auth method.

    (hvac has a `VaultError` of its own; this one is named apart so neither shadows the other.)
    """


class NotificationFailed(OpsAPIError):
    """A chat webhook did not take the message; names the service and its error code."""


class JobTimedOut(OpsAPIError):
    """A job did not reach a final status within the allowed time."""
