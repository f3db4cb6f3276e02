"""Alertmanager: the v2 API client (silences), and the body of its webhook notifications.

Example:
    >>> am = AlertmanagerClient("http://127.0.0.1:9093")
    >>> sid = am.create_silence({"instance": "10.0.0.7:9100"}, minutes=30, comment="restart")  # doctest: +SKIP
    >>> am.expire_silence(sid)                                                                  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager webhook notification."""

    # Alertmanager adds fields across versions (receivers must accept them); the fields
    # opsflow reads are required and typed.
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = Field(min_length=1)  # noqa: N815 (Alertmanager's own names)
    endsAt: str | None = None  # noqa: N815
    fingerprint: str = Field(min_length=1)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class WebhookMessage(BaseModel):
    """The body Alertmanager posts to a webhook receiver (`version` "4").

    Example:
        >>> WebhookMessage.model_validate({"version": "4", "groupKey": "{}:{alertname=\\"X\\"}",
        ...     "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "X"},
        ...     "startsAt": "2026-11-30T05:00:00Z", "fingerprint": "ab12"}]}).alerts[0].alertname
        'X'
    """

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = Field(min_length=1)  # noqa: N815
    status: Literal["firing", "resolved"]
    alerts: list[WebhookAlert] = Field(min_length=1)
    truncatedAlerts: int = 0  # noqa: N815
