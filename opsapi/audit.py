"""The audit trail: one JSON line per HTTP request, credentials redacted.

Example:
    >>> log = AuditLog("/tmp/opsflow-audit.jsonl")
    >>> session.hooks["response"].append(log.record_response)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from opsflow.opsapi.redaction import mask_secrets, redact_mapping

_BODY_LIMIT = 2000


def redact_url(url: str) -> str:
    """Drop credentials from a URL: user info and query parameters named like secrets."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(redact_mapping(dict(parse_qsl(parts.query, keep_blank_values=True))))
    return urlunsplit((parts.scheme, netloc, mask_secrets(parts.path), query, parts.fragment))


def _body(raw: bytes | str | None) -> object:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return redact_mapping(json.loads(text))
    except ValueError:
        return redact_mapping(text[:_BODY_LIMIT])


class AuditLog:
    """Appends one JSON object per request to a file (JSON lines), thread-safe.

    The file is created readable by its owner only (mode 0600): even redacted, it says what
    was done where.

    Args:
        path: the file to append to; its folder is created when missing.
        include_bodies: also record request and response bodies (redacted).
    """

    _open: dict[Path, AuditLog] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: str | Path, include_bodies: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.include_bodies = include_bodies
        self._lock = threading.Lock()

    @classmethod
    def at(cls, path: str | Path) -> AuditLog:
        """The one `AuditLog` of this process for `path`, so that every client writing to the
        same file shares one lock and no two lines interleave."""
        key = Path(path).expanduser().resolve()
        with cls._open_lock:
            if key not in cls._open:
                cls._open[key] = cls(key)
            return cls._open[key]

    def record_response(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        """A `requests` response hook: write what was asked and what came back."""
        request = response.request
        entry: dict[str, object] = {
            "time": datetime.now(timezone.utc).isoformat(),
            "method": request.method,
            "url": redact_url(request.url or ""),
            "status": response.status_code,
            "latency_ms": round(response.elapsed.total_seconds() * 1000, 1),
            "request_id": response.headers.get("X-Request-ID")
            or request.headers.get("X-Request-ID"),
            "request_headers": redact_mapping(dict(request.headers)),
        }
        if self.include_bodies:
            entry["request_body"] = _body(request.body)
            entry["response_body"] = _body(response.content[:_BODY_LIMIT])
        line = json.dumps(entry, default=str)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
