"""How blocks turn their TLS fields into `requests`' `verify` argument."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from opsflow.opsapi.errors import ConfigurationError

logger = logging.getLogger("opsflow.tls")


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow or task run's logger (so the warning shows in the Prefect UI), else ours."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def tls_verify(what: str, ca_cert: str | None, verify_tls: bool) -> bool | str:
    """`ca_cert` when given (it must exist), else `verify_tls`; disabling is logged loudly.

    Example:
        >>> tls_verify("ops platform", None, True)
        True
    """
    if ca_cert:
        path = Path(ca_cert).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"{what}: ca_cert {str(path)!r} does not exist; give the path of the PEM CA bundle"
            )
        return str(path)
    if not verify_tls:
        _logger().warning(
            "TLS verification for %s is OFF (verify_tls=false): anyone on the path can read "
            "its credentials; set ca_cert instead",
            what,
        )
    return verify_tls
