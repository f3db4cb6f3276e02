"""The automation that marks a run whose process died as Crashed.

A flow run whose worker machine is lost (SIGKILL, power) stays ``Running`` forever: nobody is
left to report its end. Its process sent a ``prefect.flow-run.heartbeat`` every
``PREFECT_RUNNER_HEARTBEAT_FREQUENCY`` seconds (set it on the workers); this automation marks
the run ``Crashed`` once three heartbeats in a row are missing, so `opsflow locks release
--stale` and a rerun can see that it is gone. (Its host locks free themselves: their lease
runs out.)

Example:
    >>> crashed_run_automation(heartbeat_seconds=30).trigger.within.total_seconds()
    90.0
"""

from __future__ import annotations

from datetime import timedelta

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture

NAME = "opsflow: mark runs without heartbeats as crashed"
MISSED_HEARTBEATS = 3


def crashed_run_automation(heartbeat_seconds: float = 30) -> Automation:
    """Prefect's heartbeat pattern: after a heartbeat, expect another heartbeat or a final
    state within three heartbeats; otherwise the run is Crashed."""
    return Automation(
        name=NAME,
        description=(
            f"Runs send a heartbeat every {heartbeat_seconds:g}s "
            "(PREFECT_RUNNER_HEARTBEAT_FREQUENCY on the workers)."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=(
                    f"no heartbeat for {MISSED_HEARTBEATS * heartbeat_seconds:g}s: "
                    "its process or machine is gone"
                ),
            )
        ],
    )


def ensure_crash_automation(heartbeat_seconds: float = 30) -> bool:
    """Create the automation in the server of PREFECT_API_URL, or replace an older one of the
    same name; True when it was created (not already there as asked)."""
    wanted = crashed_run_automation(heartbeat_seconds)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(NAME)
        if any(a.trigger == wanted.trigger for a in existing):
            return False
        for automation in existing:
            client.delete_automation(automation.id)
    wanted.create()
    return True
