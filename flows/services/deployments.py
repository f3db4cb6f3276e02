"""Deployments of every runbook: schedules, typed parameters and the alert trigger, for
`opsflow serve` (run in that process) and `opsflow deploy` (run by a work pool's workers)."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from opsflow.blocks.backend import backend_block_types
from opsflow.flows.runbooks.catalog import CATALOG
from opsflow.flows.runbooks.registry import load_runbook

SCHEDULE_TIMEZONE = "UTC"  # the same as prefect.yaml's, so both deploy the same schedules
RESTART_ALERT = "HostOverloaded"  # the alert whose firing hosts the restart runbook restarts
ALERT_TRIGGERED = "restart-overloaded-hosts"
ALERT_TRIGGER_PREFIX = "restart the hosts "  # the trigger's automation is named after it


def alert_trigger(
    alertname: str = RESTART_ALERT, policy: dict[str, Any] | None = None
) -> DeploymentEventTrigger:
    """Run the restart runbook for exactly the hosts that start firing `alertname`.

    The receiver (`opsflow alerts serve`) emits one ``opsflow.alerts.firing`` event per
    notification and alert name, so the hosts Alertmanager groups into one notification make
    one run; the run's selector names those hosts, and the runbook's own threshold, cooldown,
    locks and blast-radius cap still decide what is restarted.

    Example:
        >>> alert_trigger().parameters["policy"]["selector"]
        {'hostnames': '{{ event.payload.hostnames }}'}
    """
    return DeploymentEventTrigger(
        name=f"{ALERT_TRIGGER_PREFIX}{alertname} fires for",
        description="opsflow alerts serve turns Alertmanager's notifications into these events.",
        expect={"opsflow.alerts.firing"},
        match={"prefect.resource.id": "opsflow.alert-group.*", "opsflow.alertname": alertname},
        parameters={
            "policy": {**(policy or {}), "selector": {"hostnames": "{{ event.payload.hostnames }}"}}
        },
    )


def deployments(
    names: list[str] | None = None,
    schedules: bool = True,
    blocks: dict[str, Block] | None = None,
    restart_on_alert: str | None = RESTART_ALERT,
) -> list[RunnerDeployment]:
    """One deployment per runbook (named after it), with its default cron schedule (UTC).

    Args:
        blocks: parameter name -> saved block (e.g. ``{"platform": OpsPlatform.load("prod")}``),
            the default of that parameter in every runbook that has it; scheduled runs use it,
            and the UI's run form shows it picked.
        restart_on_alert: the alert whose firing hosts the restart runbook is run for
            (`alert_trigger`); None for no trigger.
    """
    chosen = names or list(CATALOG)
    unknown = sorted(set(chosen) - set(CATALOG))
    if unknown:
        raise ValueError(f"unknown runbooks {unknown}; known: {sorted(CATALOG)}")
    backend_block_types(load=True)  # the UI's Platform picker offers the installed backends too
    made = []
    for name in chosen:
        runbook = load_runbook(name)
        defaults = {
            field: block
            for field, block in (blocks or {}).items()
            if field in runbook.params.model_fields
        }
        triggers = []
        if name == ALERT_TRIGGERED and restart_on_alert:
            named = {field: block_reference(block) for field, block in defaults.items()}
            triggers.append(alert_trigger(restart_on_alert, named))
        made.append(
            runbook.flow.to_deployment(
                name=name,
                # The installed package's module, not this file's path: any worker that has
                # opsflow installed can run it, wherever its working directory is.
                entrypoint_type=EntrypointType.MODULE_PATH,
                triggers=triggers,
                schedule=(
                    Cron(runbook.cron, timezone=SCHEDULE_TIMEZONE)
                    if schedules and runbook.cron
                    else None
                ),
                description=f"{runbook.summary} Schedule: {runbook.why_this_schedule} (UTC).",
                tags=["opsflow"],
                parameters={runbook.param_name: defaults} if defaults else None,
            )
        )
    return made


def block_reference(block: Block) -> dict[str, Any]:
    """A saved block as a deployment parameter names it (what the server validates and the
    run loads), for parameters the server renders itself, such as a trigger's."""
    if not block._block_document_id:
        raise ValueError(f"a {block.get_block_type_name()} block must be saved to be named")
    return {"$ref": {"block_document_id": str(block._block_document_id)}}


def deploy_to_pool(
    made: list[RunnerDeployment], work_pool: str, heartbeat_seconds: float = 30
) -> bool:
    """Register the deployments for a work pool's workers, with the automation that marks
    runs whose process died as Crashed; True when that automation was created now."""
    from opsflow.flows.services.crash_detection import ensure_crash_automation

    created = ensure_crash_automation(heartbeat_seconds)
    for deployment in made:
        deployment.apply(work_pool_name=work_pool)
    return created


def set_alert_triggers(enabled: bool) -> int:
    """Pause (during maintenance, say) or resume the alert triggers of the restart runbook in
    the server of PREFECT_API_URL; returns how many there are."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = [a for a in client.read_automations() if a.name.startswith(ALERT_TRIGGER_PREFIX)]
        for automation in found:
            (client.resume_automation if enabled else client.pause_automation)(automation.id)
    return len(found)
