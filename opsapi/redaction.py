"""Keeping credentials out of everything opsflow writes.

Three layers: fields and headers are redacted by name (Authorization, X-Vault-Token, anything
named like password, token or secret); every secret value opsflow has handled is masked
wherever it appears in text, exception messages included; and text that assigns a value to a
name like a secret (`DB_PASSWORD=hunter2`, `token: abc`, `--password hunter2`) keeps the name
and loses the value, so a command or its output never carries a credential into the audit
log, an artifact or a log line.

Example:
    >>> register_secret("s3cr3t-value")
    >>> mask_secrets("login with s3cr3t-value failed")
    'login with *** failed'
    >>> redact_mapping({"Authorization": "Token abc", "page": 2})
    {'Authorization': '***', 'page': 2}
    >>> mask_secrets("export DB_PASSWORD=hunter2; mysql --password 'pa ss' -u app")
    'export DB_PASSWORD=***; mysql --password *** -u app'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "***"
SENSITIVE_NAME = re.compile(
    r"authorization|password|passwd|token|secret|api[-_]?key|cookie|^key$|^sign$", re.I
)
# "Token abc", "Bearer abc" in free text, whatever registered secrets we know of.
_AUTH_SCHEME = re.compile(r"\b(Token|Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
_SECRET_WORD = r"(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
# Unquoted, a value ends at a space, a separator or a backslash (the "\n" of text inside JSON).
_VALUE = r"""(?:"[^"]*"|'[^']*'|[^\s,;&|'"\\]+)"""
# NAME=value, NAME: value, "name": "value" (assignments, env dumps, YAML, JSON in text)
_ASSIGNMENT = re.compile(rf"""(?i)(["']?\b[\w.-]*{_SECRET_WORD}[\w.-]*["']?\s*[:=]\s*){_VALUE}""")
# --password value, -p value is too ambiguous; only long flags named like secrets
_FLAG = re.compile(rf"(?i)(--[\w-]*{_SECRET_WORD}[\w-]*\s+){_VALUE}")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `mask_secrets` hides it from now on.

    Values shorter than 6 characters are not registered: masking them would mangle
    ordinary text, and no real credential is that short.
    """
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def mask_secrets(text: str) -> str:
    """Return `text` with every registered secret and `Token/Bearer <value>` masked."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _FLAG.sub(lambda m: f"{m.group(1)}{MASK}", text)


def redact_mapping(data: Any) -> Any:
    """Copy `data` (dicts, lists, scalars) with sensitive-looking keys replaced by the mask."""
    if isinstance(data, Mapping):
        return {
            key: MASK if SENSITIVE_NAME.search(str(key)) else redact_mapping(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_mapping(item) for item in data]
    if isinstance(data, str):
        return mask_secrets(data)
    return data
