"""Deployments of every runbook: schedules, typed parameters and the alert trigger, for
`opsflow serve` (run in that process) and `opsflow deploy` (run by a work pool's workers)."""

from __future__ import annotations

import shlex
import shutil
import sys
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
    schedules_active: bool = False,
) -> list[RunnerDeployment]:
    """One deployment per runbook (named after it), with its default cron schedule (UTC),
    paused unless `schedules_active`: deploying never starts restarting hosts by itself.

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
                    Cron(runbook.cron, timezone=SCHEDULE_TIMEZONE, active=schedules_active)
                    if schedules and runbook.cron
                    else None
                ),
                description=f"{runbook.summary} Schedule: {runbook.why_this_schedule} (UTC).",
                tags=["opsflow"],
                parameters={runbook.param_name: defaults} if defaults else None,
            )
        )
    return made


def keep_what_the_server_has(made: list[RunnerDeployment], schedules_given: bool) -> list[str]:
    """Before a redeploy: a deployment that exists keeps the parameters set on it (in the UI,
    by `prefect deploy`, by an operator) except those this deploy names (its blocks), and,
    unless `schedules_given`, whether each schedule is active. Returns what was kept, one
    line per deployment.

    Prefect's apply() replaces parameters and schedules wholesale: without this a redeploy
    would silently reset an operator's threshold, or re-arm (or pause) a schedule.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    kept = []
    with get_client(sync_client=True) as client:
        for deployment in made:
            try:
                existing = client.read_deployment_by_name(
                    f"{deployment.flow_name}/{deployment.name}"
                )
            except ObjectNotFound:
                continue
            ours = deployment.parameters or {}
            merged = _merged(existing.parameters or {}, ours)
            changed = sorted(_paths(existing.parameters or {}) - _paths(ours))
            deployment.parameters = merged
            said = []
            if changed:
                said.append(f"kept the parameters set on the server: {', '.join(changed)}")
            if not schedules_given:
                active = {getattr(s.schedule, "cron", None): s.active for s in existing.schedules}
                for schedule in deployment.schedules or []:
                    cron = getattr(schedule.schedule, "cron", None)
                    if cron in active:
                        schedule.active = active[cron]
                if existing.schedules:
                    said.append("kept each schedule active or paused as it was")
            if said:
                kept.append(f"{deployment.name}: {'; '.join(said)}")
    return kept


def armed(deployment: RunnerDeployment) -> str:
    """What a deployment will start by itself: its schedules (active or paused) and triggers.

    Example:
        >>> [d] = deployments(["load-report"])                  # doctest: +SKIP
        >>> armed(d)                                            # doctest: +SKIP
        "schedule '0 * * * *' UTC paused"
    """
    parts = []
    for schedule in deployment.schedules or []:
        cron = getattr(schedule.schedule, "cron", "?")
        state = "ACTIVE" if schedule.active else "paused"
        parts.append(f"schedule '{cron}' UTC {state}")
    for trigger in deployment.triggers or []:
        parts.append(f"armed: the trigger '{trigger.name}'")
    return "; ".join(parts) or "runs only when started"


def _merged(server: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """`server`'s parameters with `ours` over them, nested dicts merged."""
    merged = dict(server)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "$ref" not in value:
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _paths(parameters: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of the values in `parameters` (a block reference is one value)."""
    found = set()
    for key, value in parameters.items():
        if isinstance(value, dict) and value and "$ref" not in value:
            found |= _paths(value, f"{prefix}{key}.")
        else:
            found.add(f"{prefix}{key}")
    return found


def block_reference(block: Block) -> dict[str, Any]:
    """A saved block as a deployment parameter names it (what the server validates and the
    run loads), for parameters the server renders itself, such as a trigger's."""
    if not block._block_document_id:
        raise ValueError(f"a {block.get_block_type_name()} block must be saved to be named")
    return {"$ref": {"block_document_id": str(block._block_document_id)}}


def engine_job_template(python: str | None = None) -> dict[str, Any]:
    """A process pool's job template whose runs start `python -m prefect.engine` directly,
    in a session of their own (`setsid`, when the machine has it).

    Left blank, Prefect 3.9's process worker starts a workspace supervisor (a Python process
    that imports Prefect and runs the deployment's pull steps), which then execs the engine (a
    second interpreter importing Prefect again): about a second more per run on a 2-core
    machine. Started directly, the engine runs the deployment's pull steps itself, as Prefect's
    engine always could. `setsid` keeps what the supervisor gave: a run is not in its worker's
    process group, so a Ctrl-C or a group signal that stops the worker does not stop its runs
    (setsid execs in place: the worker's cancel still reaches the run's own pid). `python` is
    the workers' interpreter (default: this one).

    Example:
        >>> template = engine_job_template("/opt/opsflow/bin/python")
        >>> template["variables"]["properties"]["command"]["default"].endswith(
        ...     "/opt/opsflow/bin/python -m prefect.engine")
        True
    """
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    session = ["setsid"] if shutil.which("setsid") else []
    command = shlex.join([*session, python or sys.executable, "-m", "prefect.engine"])
    template["variables"]["properties"]["command"]["default"] = command
    return template


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
