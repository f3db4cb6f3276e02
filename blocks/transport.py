"""The transport settings as blocks hold them, and the warning when TLS is off.

Example:
    >>> client_transport("ops platform", Transport()).verify
    True
"""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from pydantic import Field

from opsflow.opsapi.errors import ConfigurationError
from opsflow.opsapi.transport import Transport

logger = logging.getLogger("opsflow.transport")

TRANSPORT_DESCRIPTION = (
    "How to reach the server: timeout, TLS (CA bundle, verify), retries, backoff, "
    "connection pool, proxy and audit log."
)


def transport_field(**defaults: object) -> object:
    """The `transport` field of a block, with this block's own defaults."""
    return Field(
        default_factory=lambda: Transport(**defaults),  # type: ignore[arg-type]
        description=TRANSPORT_DESCRIPTION,
    )


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow or task run's logger (so the warning shows in the Prefect UI), else ours."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def client_transport(what: str, transport: Transport) -> Transport:
    """`transport`, checked (a missing CA bundle is refused); disabling TLS is logged loudly."""
    try:
        verify = transport.verify
    except ConfigurationError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None
    if not verify:
        _logger().warning(
            "TLS verification for %s is OFF (verify_tls=false): anyone on the path can read "
            "its credentials; set ca_cert instead",
            what,
        )
    return transport
