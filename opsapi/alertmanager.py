"""Alertmanager v2 API client: silences.

Example:
    >>> am = AlertmanagerClient("http://127.0.0.1:9093")
    >>> sid = am.create_silence({"instance": "10.0.0.7:9100"}, minutes=30, comment="restart")  # doctest: +SKIP
    >>> am.expire_silence(sid)                                                                  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from opsflow.opsapi.errors import BadResponse
from opsflow.opsapi.http import JSONClient
from opsflow.opsapi.transport import Transport


class AlertmanagerClient(JSONClient):
    """Create, list and expire silences through `/api/v2/silences`."""

    name = "Alertmanager"

    def __init__(self, base_url: str, transport: Transport | None = None) -> None:
        super().__init__(base_url, transport=transport)

    def create_silence(
        self,
        matchers: dict[str, str],
        minutes: float,
        comment: str,
        created_by: str = "opsflow",
        regex: bool = False,
    ) -> str:
        """POST: /api/v2/silences — returns the silence id."""
        now = datetime.now(timezone.utc)
        body = self.request(
            "POST",
            "/api/v2/silences",
            json={
                "matchers": [
                    {"name": k, "value": v, "isRegex": regex, "isEqual": True}
                    for k, v in matchers.items()
                ],
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
                "createdBy": created_by,
                "comment": comment,
            },
        )
        if not isinstance(body, dict) or "silenceID" not in body:
            raise BadResponse(f"Alertmanager created a silence without an id: {body!r}"[:200])
        return str(body["silenceID"])

    def list_silences(self) -> list[dict[str, Any]]:
        """GET: /api/v2/silences"""
        return list(self.request("GET", "/api/v2/silences") or [])

    def expire_silence(self, silence_id: str) -> None:
        """DELETE: /api/v2/silence/{id}"""
        self.request("DELETE", f"/api/v2/silence/{silence_id}")
