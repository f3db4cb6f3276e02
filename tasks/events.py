"""Prefect events runbooks emit, for automations to trigger on.

    opsflow.job.submitted       resource: opsflow.job.<job_id>     related: opsflow.host-id.<id>
    opsflow.host.restarted      resource: opsflow.host.<hostname>  payload: load before/after
    opsflow.rollout.aborted     resource: opsflow.runbook.<name>   payload: reason

Example automation trigger (see README): match ``opsflow.rollout.aborted`` and notify.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event


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


def host_restarted(hostname: str, payload: dict[str, Any]) -> None:
    emit_event("opsflow.host.restarted", resource=_host(hostname), payload=payload)


def rollout_aborted(runbook: str, reason: str, payload: dict[str, Any]) -> None:
    emit_event(
        "opsflow.rollout.aborted",
        resource={
            "prefect.resource.id": f"opsflow.runbook.{runbook}",
            "prefect.resource.name": runbook,
        },
        payload={"reason": reason, **payload},
    )
