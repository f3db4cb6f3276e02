"""Prefect events the runbooks emit, for automations to trigger on."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter

from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from tests.conftest import wait_until

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}


def events(prefix: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_events(
            EventFilter(event=EventNameFilter(prefix=[prefix])), limit=50
        ).events


def test_restart_emits_job_host_and_abort_events(fresh_lab):
    before = {e.id for e in events("opsflow.")}
    fresh_lab.overload(8.0, "lab-web-01")
    assert restart_overloaded_hosts(RestartPolicy(**FAST), return_state=True).is_completed()
    fresh_lab.overload(8.0, "lab-web-03", "lab-web-05")
    assert restart_overloaded_hosts(
        RestartPolicy(max_hosts=1, **FAST), return_state=True
    ).is_failed()

    def new_events():
        found = [e for e in events("opsflow.") if e.id not in before]
        return (
            found
            if {e.event for e in found}
            >= {"opsflow.job.submitted", "opsflow.host.restarted", "opsflow.rollout.aborted"}
            else None
        )

    found = wait_until(new_events, 30, "the events to reach the API")
    restarted = [
        e
        for e in found
        if e.event == "opsflow.host.restarted"
        and e.resource.id == "opsflow.host.lab-web-01"
        and e.payload["load_before"] == 8.0
    ]
    assert len(restarted) == 1
    assert restarted[0].payload["load_before"] == 8.0
    # Other tests' runs (in subprocesses) may deliver their events late: look for ours.
    aborted = [
        e
        for e in found
        if e.event == "opsflow.rollout.aborted" and "blast-radius cap of 1" in e.payload["reason"]
    ]
    assert len(aborted) == 1


def test_the_readme_automation_example_is_accepted_by_the_api():
    from pydantic import SecretStr

    from examples.automation_on_aborted_rollout import aborted_rollout_automation
    from opsflow.blocks import WeComWebhook

    WeComWebhook(url="http://127.0.0.1:9", key=SecretStr("wecom-key-000000")).save(
        "oncall", overwrite=True
    )

    automation_id = aborted_rollout_automation("wecom-webhook/oncall").create().id

    with get_client(sync_client=True) as client:
        stored = client.read_automation(automation_id)
    assert stored.trigger.expect == {"opsflow.rollout.aborted"}
    assert stored.actions[0].type == "send-notification"
