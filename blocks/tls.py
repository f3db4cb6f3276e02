"""How blocks turn their TLS fields into `requests`' `verify` argument."""

from __future__ import annotations

import logging
from pathlib import Path

from opsapi.errors import ConfigurationError

logger = logging.getLogger("opsflow.tls")


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
        logger.warning(
            "TLS verification for %s is OFF (verify_tls=false): anyone on the path can read "
            "its credentials; set ca_cert instead",
            what,
        )
    return verify_tls
