"""Prefect events runbooks emit, for automations to trigger on.

    opsflow.job.submitted       resource: opsflow.job.<job_id>     related: opsflow.host-id.<id>
    opsflow.host.restarted      resource: opsflow.host.<hostname>  payload: load before/after
    opsflow.host.cleaned        (disk-cleanup; any rollout: opsflow.host.<its action's past>)
    opsflow.host.flapping       resource: opsflow.host.<hostname>  payload: times, action, window
    opsflow.rollout.aborted     resource: opsflow.runbook.<name>   payload: reason
    opsflow.alert.firing        resource: opsflow.host.<hostname>  payload: the alert
    opsflow.alert.resolved      (the same, once the alert resolves)
    opsflow.alerts.firing       resource: opsflow.alert-group.<key digest>, opsflow.alertname
                                payload: hostnames (newly firing in one notification)

Example automation trigger (see README): match ``opsflow.rollout.aborted`` and notify.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from prefect.events import Event, emit_event

from opsflow.opsapi.alertmanager import WebhookAlert

# Event ids derived from what they report: the same alert notified twice is the same event.
EVENT_IDS = uuid.UUID("5f0c3a52-4d1e-4b8e-9a53-6a7c2f1d0e11")


def _host(hostname: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"opsflow.host.{hostname}",
        "prefect.resource.name": hostname,
        "prefect.resource.role": "host",
    }


def job_submitted(job_id: str, command: str, host_ids: list[str]) -> None:
    emit_event(
        "opsflow.job.submitted",
        resource={"prefect.resource.id": f"opsflow.job.{job_id}", "prefect.resource.name": command},
        related=[
            {"prefect.resource.id": f"opsflow.host-id.{h}", "prefect.resource.role": "host"}
            for h in host_ids[:50]
        ],
        payload={"command": command, "hosts": len(host_ids)},
    )


def host_acted_on(done: str, hostname: str, payload: dict[str, Any]) -> None:
    """`opsflow.host.<done>` (restarted, cleaned): a host acted on and verified."""
    emit_event(f"opsflow.host.{done}", resource=_host(hostname), payload=payload)


def host_flapping(hostname: str, payload: dict[str, Any]) -> None:
    """A host acted on `max_repeats` times within the repeat window: escalated, left alone."""
    emit_event("opsflow.host.flapping", resource=_host(hostname), payload=payload)


def rollout_aborted(runbook: str, reason: str, payload: dict[str, Any]) -> None:
    emit_event(
        "opsflow.rollout.aborted",
        resource={
            "prefect.resource.id": f"opsflow.runbook.{runbook}",
            "prefect.resource.name": runbook,
        },
        payload={"reason": reason, **payload},
    )


def alert_event(alert: WebhookAlert, hostname: str, group_key: str) -> Event:
    """`opsflow.alert.firing` or `.resolved` for the host an alert is about."""
    return Event(
        id=uuid.uuid5(EVENT_IDS, f"{alert.fingerprint}|{alert.status}|{alert.startsAt}"),
        event=f"opsflow.alert.{alert.status}",
        resource=_host(hostname),
        related=[_alert_group(group_key)],
        payload={
            "alertname": alert.alertname,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": alert.startsAt,
            "groupKey": group_key,
            "fingerprint": alert.fingerprint,
        },
    )


def alerts_firing_event(
    alertname: str, hostnames: list[str], group_key: str, alert_event_ids: list[str]
) -> Event:
    """`opsflow.alerts.firing`: the hosts that started firing `alertname` in one notification,
    so one deployment trigger (matching the resource's `opsflow.alertname`) makes one run for
    all of them."""
    return Event(
        id=uuid.uuid5(EVENT_IDS, "|".join(sorted(alert_event_ids))),
        event="opsflow.alerts.firing",
        resource={**_alert_group(group_key), "opsflow.alertname": alertname},
        related=[_host(h) for h in hostnames[:50]],
        payload={"alertname": alertname, "hostnames": hostnames, "groupKey": group_key},
    )


def alert_group_id(group_key: str) -> str:
    """The resource id of an Alertmanager group (its key can be long and full of quotes)."""
    return f"opsflow.alert-group.{hashlib.sha256(group_key.encode()).hexdigest()[:16]}"


def _alert_group(group_key: str) -> dict[str, str]:
    return {
        "prefect.resource.id": alert_group_id(group_key),
        "prefect.resource.name": group_key[:200],
        "prefect.resource.role": "alert-group",
    }
